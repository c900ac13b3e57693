r"""FlashAttention: exact attention computed in tiles, never storing the $n \times n$ matrix.

Paper: *FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness*, Tri Dao,
Daniel Y. Fu, Stefano Ermon, Atri Rudra and Christopher Ré, NeurIPS 2022 (arXiv:2205.14135).

Standard attention writes $S = \tau Q K^\top$ ($\tau = 1 / \sqrt d$) and $P = \mathrm{softmax}(S)$
to the GPU's slow high-bandwidth memory (HBM) and reads them back: $\Theta(n^2)$ memory and
$\Theta(n^2)$ HBM traffic. FlashAttention cuts $Q$ into row blocks $Q_i$ of $B_r$ queries and
$K, V$ into column blocks $K_j, V_j$ of $B_c$ keys, loads tiles into fast on-chip SRAM, and
combines the tiles' softmaxes exactly with running statistics, the row maximum $m$ and the
row sum $\ell$ of exponentials (Algorithm 1; Algorithm 2 adds masking and dropout). For every
key block $j$ (outer loop) and query block $i$ (inner loop):

$$
\tilde m_{ij} = \mathrm{rowmax}(S_{ij}), \quad
\tilde P_{ij} = \exp(S_{ij} - \tilde m_{ij}), \quad
\tilde\ell_{ij} = \mathrm{rowsum}(\tilde P_{ij}),
$$

$$
m_i^{\mathrm{new}} = \max(m_i, \tilde m_{ij}), \quad
\ell_i^{\mathrm{new}} = e^{m_i - m_i^{\mathrm{new}}} \ell_i
    + e^{\tilde m_{ij} - m_i^{\mathrm{new}}} \tilde\ell_{ij},
$$

$$
O_i \leftarrow \mathrm{diag}(\ell_i^{\mathrm{new}})^{-1}\big(
    \mathrm{diag}(\ell_i)\, e^{m_i - m_i^{\mathrm{new}}} O_i
    + e^{\tilde m_{ij} - m_i^{\mathrm{new}}} \tilde P_{ij} V_j \big).
$$

$O_i$ is kept **normalised** after every key block, and $\ell$ and $m$ are both written out.
The backward pass (Algorithm 4) does not read a stored $P$: it **recomputes** each tile
$P_{ij} = \mathrm{diag}(\ell_i)^{-1} \exp(S_{ij} - m_i)$ from $Q, K$ and the saved $\ell, m$,
with $D_i = \mathrm{rowsum}(dO_i \circ O_i)$:

$$
dV_j \mathrel{+}= P_{ij}^\top dO_i, \quad
dS_{ij} = P_{ij} \circ (dO_i V_j^\top - D_i), \quad
dQ_i \mathrel{+}= \tau\, dS_{ij} K_j, \quad dK_j \mathrel{+}= \tau\, dS_{ij}^\top Q_i .
$$

Time is still $O(n^2 d)$ FLOPs (a little more: the backward recomputes $S$), but extra memory
is $O(n)$ beyond the inputs and output, and HBM accesses fall from $\Theta(n d + n^2)$ to
$\Theta(n^2 d^2 / M)$ for an SRAM of size $M$ (the paper's Theorem 2).

**This module** is a readable PyTorch reference of Algorithms 2 and 4, exact to float32
round-off, with a ``torch.autograd.Function`` whose backward recomputes the tiles
([`TiledAttention`][implementations._tiled.TiledAttention]; it saves $Q, K, V, O, \ell, m$
only). The outer loop over key blocks is a Python loop; the inner loop over query blocks,
whose iterations touch disjoint rows, is one batched operation over all queries. Under a
causal mask a key block only updates the queries at or after its first position (FlashAttention
skips the blocks above the diagonal). It is **not** the CUDA kernel: the "SRAM" here is
ordinary memory and nothing is fused, so it shows the algorithm and its $O(n)$ memory, not
its speed.

``kernel="fused"`` instead calls ``F.scaled_dot_product_attention`` (through
[`dense.attention`][implementations.dense.attention]), which on CUDA dispatches to a fused
FlashAttention kernel (PyTorch ships FlashAttention-2's) and on CPU to a fused kernel of the
same idea. It is the fast path; the default ``"reference"`` is what the catalog's claims and
measurements describe (on the ``meta`` device used for counting, the fused call decomposes into
the unfused $n \times n$ form).

Hyper-parameters:

* ``block_size``: $B_r = B_c$. The paper sizes blocks to the SRAM ($B_c = \lceil M / 4d
  \rceil$, $B_r = \min(B_c, d)$); the released kernels use 64 to 128. Results do not depend on
  it beyond round-off.
* ``kernel``: ``"reference"`` (this algorithm in PyTorch) or ``"fused"`` (the fused kernel).

Dropout (Algorithm 2 regenerates the dropout mask from the saved RNG state in the backward)
is not reproduced: no layer of the catalog applies attention dropout.
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

__all__ = ["FlashAttention", "FlashAttention1Algorithm", "attention"]

# The normaliser is 0 only for a query that sees no key, whose accumulator is 0 too.
_TINY = torch.finfo(torch.float32).tiny


class FlashAttention1Algorithm:
    r"""FlashAttention's forward (Algorithm 2) and recomputing backward (Algorithm 4).

    The softmax statistics saved for the backward are $(\ell, m)$, each ``[b, h, n]``.

    Examples:
        >>> import torch
        >>> from implementations.dense import attention as exact
        >>> from implementations.flash_attention import FlashAttention1Algorithm
        >>> q, k, v = torch.randn(3, 1, 2, 10, 4).unbind(0)
        >>> o, (ell, m) = FlashAttention1Algorithm().forward(q, k, v, None, True, block=3)
        >>> torch.allclose(o, exact(q, k, v, causal=True), atol=1e-6), ell.shape
        (True, torch.Size([1, 2, 10]))
    """

    def forward(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool, block: int
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """``q, k, v`` ``[b, h, n, d]`` -> ``(O, (ell, m))``; see the module docstring."""
        n, scale = q.shape[-2], q.shape[-1] ** -0.5
        o = v.new_zeros(*q.shape[:-1], v.shape[-1])  # [b, h, n, dv], normalised at every step
        ell = q.new_zeros(q.shape[:-1])  # [b, h, n]: running sum of exponentials
        m = q.new_full(q.shape[:-1], -torch.inf)  # [b, h, n]: running row maximum
        for start, end in block_ranges(n, block):  # outer loop: key blocks K_j, V_j
            # Inner loop over query blocks Q_i, batched: under a causal mask the queries
            # before this key block see none of it (the blocks FlashAttention skips).
            first = start if causal else 0
            k_j, v_j = k[:, :, start:end], v[:, :, start:end]  # [b, h, Bc, d]
            mask_j = None if mask is None else mask[:, start:end]  # [b, Bc]
            s = tile_scores(q[:, :, first:], k_j, scale, first, start, mask_j, causal)
            # $\tilde m_{ij}$, $\tilde P_{ij}$, $\tilde \ell_{ij}$ of the tile
            m_tile = s.amax(-1)  # [b, h, n - first]
            p_tile = torch.exp(s - finite(m_tile)[..., None])  # [b, h, n - first, Bc]
            ell_tile = p_tile.sum(-1)  # [b, h, n - first]
            m_old, ell_old = m[..., first:], ell[..., first:]
            m_new = torch.maximum(m_old, m_tile)
            # $e^{m_i - m_i^{new}}$ and $e^{\tilde m_{ij} - m_i^{new}}$
            alpha = torch.exp(m_old - finite(m_new))
            beta = torch.exp(m_tile - finite(m_new))
            ell_new = alpha * ell_old + beta * ell_tile
            # $O_i \leftarrow diag(\ell^{new})^{-1} (diag(\ell) e^{m - m^{new}} O_i
            #                                        + e^{\tilde m - m^{new}} \tilde P V_j)$
            o_new = (alpha * ell_old)[..., None] * o[:, :, first:] + beta[..., None] * (
                p_tile @ v_j
            )  # [b, h, n - first, dv]
            o[:, :, first:] = o_new / ell_new.clamp_min(_TINY)[..., None]
            ell[..., first:] = ell_new
            m[..., first:] = m_new
        return o, (ell, m)

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
        r"""``(dQ, dK, dV)``: Algorithm 4, recomputing $P_{ij}$ from $(\ell, m)$."""
        ell, m = stats
        n, scale = q.shape[-2], q.shape[-1] ** -0.5
        delta = (do * o).sum(-1)  # [b, h, n]: $D_i = rowsum(dO_i \circ O_i)$
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        for start, end in block_ranges(n, block):  # outer loop: key blocks
            first = start if causal else 0
            k_j, v_j = k[:, :, start:end], v[:, :, start:end]  # [b, h, Bc, d]
            mask_j = None if mask is None else mask[:, start:end]
            s = tile_scores(q[:, :, first:], k_j, scale, first, start, mask_j, causal)
            # $P_{ij} = diag(\ell_i)^{-1} \exp(S_{ij} - m_i)$, recomputed
            p = torch.exp(s - finite(m[..., first:])[..., None])
            p = p / ell[..., first:].clamp_min(_TINY)[..., None]  # [b, h, n - first, Bc]
            dq_i, dk_j, dv_j = tile_gradients(
                p, q[:, :, first:], k_j, v_j, do[:, :, first:], delta[..., first:], scale
            )
            dq[:, :, first:] += dq_i  # dQ_i accumulates over the outer loop (written to HBM)
            dk[:, :, start:end] = dk_j  # dK_j, dV_j are complete after their inner loop
            dv[:, :, start:end] = dv_j
        return dq, dk, dv


_ALGORITHM = FlashAttention1Algorithm()


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    causal: bool = False,
    block_size: int = 128,
    kernel: Kernel = "reference",
) -> Tensor:
    r"""Exact $\mathrm{softmax}(QK^\top / \sqrt d)\,V$ by FlashAttention's tiles, or fused.

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
        >>> from implementations.flash_attention import attention
        >>> q = torch.randn(2, 4, 37, 8, requires_grad=True)
        >>> y = attention(q, q, q, causal=True, block_size=8)
        >>> torch.allclose(y, exact(q, q, q, causal=True), atol=1e-5)
        True
        >>> y.sum().backward()  # the backward recomputes the tiles
        >>> q.grad.shape
        torch.Size([2, 4, 37, 8])
    """
    return tiled_attention(
        _ALGORITHM, q, k, v, mask, causal, block_size, kernel, fused=fused_attention
    )


@register("flash-attention", kind="attention", supports_causal=True)
class FlashAttention(nn.Module):
    """Multi-head exact attention computed by FlashAttention's tiled algorithm.

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: Mask the future (autoregressive decoding).
        block_size: Tile size $B_r = B_c$ of the reference.
        kernel: ``"reference"`` (the tiled algorithm in PyTorch, the default) or ``"fused"``
            (``F.scaled_dot_product_attention``, a fused kernel: the fast path).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("flash-attention", dim=32, heads=4, causal=True,
        ...                               block_size=8)
        >>> fused = implementations.build("flash-attention", dim=32, heads=4, causal=True,
        ...                               kernel="fused")
        >>> _ = fused.load_state_dict(layer.state_dict())  # same weights, other kernel
        >>> x = torch.randn(2, 37, 32)
        >>> torch.allclose(layer(x), fused(x), atol=1e-5)
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
