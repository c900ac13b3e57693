r"""FlashAttention-2: FlashAttention with fewer non-matmul operations and queries in the outer loop.

Paper: *FlashAttention-2: Faster Attention with Better Parallelism and Work Partitioning*,
Tri Dao, ICLR 2024 (arXiv:2307.08691).

FlashAttention-2 computes the same exact attention $O = \mathrm{softmax}(\tau Q K^\top) V$,
$\tau = 1 / \sqrt d$, in the same tiles as
[FlashAttention][implementations.flash_attention] (same $O(n^2 d)$ FLOPs, $O(n)$ extra
memory), and changes three things of the algorithm (Section 3.1 and Algorithm 1):

1. **No rescaling inside the loop.** The output accumulator $\tilde O_i$ is kept
   *unnormalised*; each key block only multiplies it by $e^{m^{(j-1)} - m^{(j)}}$, and the
   division by the softmax denominator $\ell$ happens once, at the end:

$$
m_i^{(j)} = \max\big(m_i^{(j-1)}, \mathrm{rowmax}(S_{ij})\big), \quad
\tilde P_{ij} = \exp\big(S_{ij} - m_i^{(j)}\big),
$$

$$
\ell_i^{(j)} = e^{m_i^{(j-1)} - m_i^{(j)}} \ell_i^{(j-1)} + \mathrm{rowsum}(\tilde P_{ij}),
\qquad
\tilde O_i^{(j)} = \mathrm{diag}\big(e^{m_i^{(j-1)} - m_i^{(j)}}\big) \tilde O_i^{(j-1)}
    + \tilde P_{ij} V_j,
$$

$$
O_i = \mathrm{diag}\big(\ell_i^{(T_c)}\big)^{-1} \tilde O_i^{(T_c)} .
$$

2. **Only the log-sum-exp is saved.** Instead of both $m$ and $\ell$, the forward stores
   $L_i = m_i^{(T_c)} + \log \ell_i^{(T_c)}$, and the backward recomputes
   $P_{ij} = \exp(S_{ij} - L_i)$ (Algorithm 2).

3. **Loop order and parallelism.** The forward's outer loop runs over query blocks $Q_i$ and
   is parallel (one thread block per query block, so a long sequence fills the GPU even at
   small batch × heads); the inner loop over key blocks $K_j, V_j$ is sequential. The
   backward keeps key blocks in the outer, parallel loop (each owns $dK_j, dV_j$) and query
   blocks in the inner loop, with $dQ_i$ accumulated across key blocks (atomic adds on the
   GPU). The split of work between warps inside a block ("split-Q" instead of "split-K")
   has no counterpart outside a kernel.

**This module** is a readable PyTorch reference of Algorithms 1 and 2, exact to float32
round-off, sharing its tiles and its recomputing ``torch.autograd.Function`` with
FlashAttention ([`_tiled`][implementations._tiled.TiledAttention]; it saves $Q, K, V, O, L$
only). The parallel outer loops are batched tensor dimensions and the sequential inner loops
are Python loops over blocks: the forward loops over key blocks with every query block at
once, the backward over query blocks with every key block at once. Under a causal mask a
key block only updates the queries at or after its first position, and a query block's
backward only reaches the keys up to its last position (the blocks above the diagonal are
skipped, as FlashAttention-2 does). It is **not** the CUDA kernel: it shows the algorithm and
its $O(n)$ memory, not its speed.

``kernel="fused"`` calls ``F.scaled_dot_product_attention`` (through
[`dense.attention`][implementations.dense.attention]), which on CUDA dispatches to PyTorch's
build of the FlashAttention-2 kernel and on CPU to a fused kernel of the same idea: the fast
path. The default ``"reference"`` is what the catalog's claims and measurements describe (on
the ``meta`` device used for counting, the fused call decomposes into the unfused $n \times n$
form).

Hyper-parameters:

* ``block_size``: $B_r = B_c$ (the paper's kernels use blocks of 64 or 128, tuned per head
  dimension and shared-memory size). Results do not depend on it beyond round-off.
* ``kernel``: ``"reference"`` (this algorithm in PyTorch) or ``"fused"`` (the fused kernel).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from implementations._helpers import HeadProjections
from implementations._registry import Range, register
from implementations._tiled import (
    Kernel,
    block_ranges,
    finite,
    tile_gradients,
    tile_scores,
    tiled_attention,
)
from implementations.dense import attention as fused_attention

__all__ = ["FlashAttention2", "FlashAttention2Algorithm", "attention"]

# The normaliser is 0 only for a query that sees no key, whose accumulator is 0 too.
_TINY = torch.finfo(torch.float32).tiny


class FlashAttention2Algorithm:
    r"""FlashAttention-2's forward (Algorithm 1) and recomputing backward (Algorithm 2).

    The one softmax statistic saved for the backward is the log-sum-exp $L$ ``[b, h, n]``
    ($-\infty$ for a query that sees no key).

    Examples:
        >>> import torch
        >>> from implementations.flash_attention_2 import FlashAttention2Algorithm
        >>> q, k, v = torch.randn(3, 1, 2, 10, 4).unbind(0)
        >>> o, (lse,) = FlashAttention2Algorithm().forward(q, k, v, None, False, block=3)
        >>> scores = q @ k.transpose(-1, -2) / 2  # tau = 1 / sqrt(4)
        >>> torch.allclose(lse, scores.logsumexp(-1), atol=1e-6)
        True
    """

    def forward(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool, block: int
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """``q, k, v`` ``[b, h, n, d]`` -> ``(O, (L,))``; see the module docstring."""
        n, scale = q.shape[-2], q.shape[-1] ** -0.5
        # The outer loop over query blocks is parallel: every query block at once.
        acc = v.new_zeros(*q.shape[:-1], v.shape[-1])  # [b, h, n, dv]: unnormalised O~
        ell = q.new_zeros(q.shape[:-1])  # [b, h, n]
        m = q.new_full(q.shape[:-1], -torch.inf)  # [b, h, n]
        for start, end in block_ranges(n, block):  # inner, sequential loop: key blocks
            first = start if causal else 0  # earlier queries see none of this block
            k_j, v_j = k[:, :, start:end], v[:, :, start:end]  # [b, h, Bc, d]
            mask_j = None if mask is None else mask[:, start:end]
            s = tile_scores(q[:, :, first:], k_j, scale, first, start, mask_j, causal)
            m_old = m[..., first:]
            m_new = torch.maximum(m_old, s.amax(-1))  # $m^{(j)}$ [b, h, n - first]
            p = torch.exp(s - finite(m_new)[..., None])  # $\tilde P_{ij}$, one exponential
            rescale = torch.exp(m_old - finite(m_new))  # $e^{m^{(j-1)} - m^{(j)}}$
            ell[..., first:] = rescale * ell[..., first:] + p.sum(-1)
            # No division here: O~ stays unnormalised until the loop ends.
            acc[:, :, first:] = rescale[..., None] * acc[:, :, first:] + p @ v_j
            m[..., first:] = m_new
        o = acc / ell.clamp_min(_TINY)[..., None]  # $O_i = diag(\ell_i)^{-1} \tilde O_i$
        lse = m + torch.log(ell)  # $L_i = m_i + \log \ell_i$ (-inf + -inf for an empty row)
        return o, (lse,)

    def backward(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        o: Tensor,
        stats: tuple[Tensor, ...],
        do: Tensor,
        mask: Tensor | None,
        causal: bool,
        block: int,
    ) -> tuple[Tensor, Tensor, Tensor]:
        r"""``(dQ, dK, dV)``: Algorithm 2, recomputing $P_{ij} = \exp(S_{ij} - L_i)$."""
        (lse,) = stats
        n, scale = q.shape[-2], q.shape[-1] ** -0.5
        delta = (do * o).sum(-1)  # [b, h, n]: $D = rowsum(dO \circ O)$, computed up front
        # The outer loop over key blocks is parallel: every key block at once, each
        # accumulating its own dK_j, dV_j.
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        for start, end in block_ranges(n, block):  # inner, sequential loop: query blocks
            last = end if causal else n  # later keys are invisible to this query block
            q_i, do_i = q[:, :, start:end], do[:, :, start:end]  # [b, h, Br, d]
            k_seen, v_seen = k[:, :, :last], v[:, :, :last]  # [b, h, last, d]
            mask_seen = None if mask is None else mask[:, :last]
            s = tile_scores(q_i, k_seen, scale, start, 0, mask_seen, causal)  # [b, h, Br, last]
            p = torch.exp(s - finite(lse[..., start:end])[..., None])  # $P_{ij}$
            dq_i, dk_part, dv_part = tile_gradients(
                p, q_i, k_seen, v_seen, do_i, delta[..., start:end], scale
            )
            dq[:, :, start:end] = dq_i  # the sum over key blocks (atomic adds on a GPU)
            dk[:, :, :last] += dk_part
            dv[:, :, :last] += dv_part
        return dq, dk, dv


_ALGORITHM = FlashAttention2Algorithm()


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    causal: bool = False,
    block_size: int = 128,
    kernel: Kernel = "reference",
) -> Tensor:
    r"""Exact $\mathrm{softmax}(QK^\top / \sqrt d)\,V$ by FlashAttention-2's tiles, or fused.

    Args:
        q: ``[b, h, n, d]``.
        k: ``[b, h, n, d]``.
        v: ``[b, h, n, dv]``.
        mask: Key-padding mask ``[b, n]`` (True = real).
        causal: Query $i$ sees keys $j \le i$.
        block_size: $B_r = B_c$.
        kernel: ``"reference"`` or ``"fused"`` (see the module docstring).

    Returns:
        ``[b, h, n, dv]``; a query that sees no key gets zeros (and passes no gradient).

    Examples:
        >>> import torch
        >>> from implementations.dense import attention as exact
        >>> from implementations.flash_attention_2 import attention
        >>> q = torch.randn(2, 4, 37, 8, requires_grad=True)
        >>> y = attention(q, q, q, causal=True, block_size=8)
        >>> torch.allclose(y, exact(q, q, q, causal=True), atol=1e-5)
        True
        >>> y.sum().backward()  # the backward recomputes P from the log-sum-exp
        >>> q.grad.shape
        torch.Size([2, 4, 37, 8])
    """
    return tiled_attention(
        _ALGORITHM, q, k, v, mask, causal, block_size, kernel, fused=fused_attention
    )


@register("flash-attention-2", kind="attention", supports_causal=True)
class FlashAttention2(nn.Module):
    """Multi-head exact attention computed by FlashAttention-2's tiled algorithm.

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: Mask the future (autoregressive decoding).
        block_size: Tile size $B_r = B_c$ of the reference.
        kernel: ``"reference"`` (the tiled algorithm in PyTorch, the default) or ``"fused"``
            (``F.scaled_dot_product_attention``, a fused kernel: the fast path).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("flash-attention-2", dim=32, heads=4, block_size=8)
        >>> dense = implementations.build("dense", dim=32, heads=4)
        >>> _ = dense.load_state_dict(layer.state_dict())  # the same projections
        >>> x = torch.randn(2, 37, 32)
        >>> mask = torch.ones(2, 37, dtype=torch.bool)
        >>> mask[1, 30:] = False
        >>> torch.allclose(layer(x, mask), dense(x, mask), atol=1e-5)
        True
    """

    # Block sizes beyond a few thousand only make the reference's tiles big.
    option_ranges: ClassVar[dict[str, Range]] = {"block_size": (1, 2**16)}

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        causal: bool = False,
        *,
        block_size: int = 128,
        kernel: Kernel = "reference",
    ) -> None:
        super().__init__()
        self.causal = causal
        self.block_size = block_size
        self.kernel: Kernel = kernel
        self.proj = HeadProjections(dim, heads)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        q, k, v = self.proj.qkv(x)  # [b, h, n, d] each
        o = attention(q, k, v, mask, self.causal, self.block_size, self.kernel)  # [b, h, n, d]
        return self.proj.out(o)
