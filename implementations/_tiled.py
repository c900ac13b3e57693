r"""Tiling machinery shared by the FlashAttention references (FlashAttention and FlashAttention-2).

Both papers compute exact attention $O = \mathrm{softmax}(\tau Q K^\top) V$, $\tau = 1 / \sqrt d$,
one tile of the score matrix at a time, without ever storing the $n \times n$ matrices $S$ and
$P$. What they share lives here:

* the tiles: [`block_ranges`][implementations._tiled.block_ranges] cuts a length into blocks and
  [`tile_scores`][implementations._tiled.tile_scores] computes one tile $S_{ij} = \tau Q_i
  K_j^\top$ with the masked entries at $-\infty$ (key padding, and $j > i$ under a causal mask);
* the online-softmax guard [`finite`][implementations._tiled.finite]: a row that has seen no
  key yet has running maximum $m = -\infty$, and $e^{-\infty - (-\infty)}$ is NaN; subtracting
  $0$ instead gives the right $e^{-\infty} = 0$;
* the gradient of one tile, [`tile_gradients`][implementations._tiled.tile_gradients], with
  $P_{ij}$ recomputed from the saved statistics and $D_i = \mathrm{rowsum}(dO_i \circ O_i)$
  (below);
* [`TiledAttention`][implementations._tiled.TiledAttention], the `torch.autograd.Function` that
  runs an algorithm's forward, saves only $Q, K, V, O$ and the softmax statistics (never $P$),
  and hands them to the algorithm's backward, which recomputes the tiles: the "recomputation"
  that keeps training memory $O(n)$;
* [`tiled_attention`][implementations._tiled.tiled_attention], which picks the readable
  reference or the fused kernel (``F.scaled_dot_product_attention``) by name.

The gradient of one tile (the softmax Jacobian applied row by row):

$$
dV_j \mathrel{+}= P_{ij}^\top dO_i, \quad dP_{ij} = dO_i V_j^\top, \quad
dS_{ij} = P_{ij} \circ (dP_{ij} - D_i), \quad
dQ_i \mathrel{+}= \tau\, dS_{ij} K_j, \quad dK_j \mathrel{+}= \tau\, dS_{ij}^\top Q_i .
$$

**Loops.** Each paper has two nested loops over blocks. FlashAttention runs both inside one
thread block per (batch, head): the outer loop over key blocks is sequential, and so is the
inner loop over query blocks, although its iterations touch disjoint rows. FlashAttention-2 makes
the outer loop parallel (one thread block per query block forward, per key block backward) and
keeps the inner loop sequential. Here a loop that runs in parallel, or whose iterations are
independent, is a batched tensor dimension, and only the sequential loop that carries state is a
Python loop, over ``n / block_size`` blocks: on the ``meta`` device (FLOP and memory counting)
that costs a few operators per block, never ``(n / block_size)^2``.

Precision: the statistics and the accumulators are float32 (float64 stays float64), as in the
CUDA kernels, which accumulate half-precision inputs in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

__all__ = [
    "Kernel",
    "TiledAlgorithm",
    "TiledAttention",
    "block_ranges",
    "finite",
    "tile_gradients",
    "tile_scores",
    "tiled_attention",
]

Kernel = Literal["reference", "fused"]


class TiledAlgorithm(Protocol):
    """A tiled forward and its recomputing backward (FlashAttention or FlashAttention-2)."""

    def forward(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool, block: int
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """``q, k, v`` ``[b, h, n, d]`` -> ``(O [b, h, n, d], softmax statistics)``."""
        ...

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
        """The gradients ``(dQ, dK, dV)`` from ``dO``, recomputing the tiles."""
        ...


def block_ranges(n: int, block: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each block of ``block`` positions (the last one may be shorter).

    Examples:
        >>> from implementations._tiled import block_ranges
        >>> block_ranges(10, 4)
        [(0, 4), (4, 8), (8, 10)]
    """
    return [(s, min(s + block, n)) for s in range(0, n, block)]


def finite(m: Tensor) -> Tensor:
    r"""``m`` with $-\infty$ replaced by 0: a safe subtrahend in $e^{x - m}$, $x \le m$.

    A row with no visible key has $m = -\infty$ and all its $x = -\infty$; $e^{x - 0} = 0$ is
    the right (empty) contribution where $e^{x - m}$ would be NaN.

    Examples:
        >>> import torch
        >>> from implementations._tiled import finite
        >>> m = torch.tensor([-float("inf"), 2.0])
        >>> torch.exp(torch.tensor([-float("inf"), 1.0]) - finite(m))
        tensor([0.0000, 0.3679])
    """
    return torch.where(m == -torch.inf, torch.zeros_like(m), m)


def tile_scores(
    q: Tensor,
    k: Tensor,
    scale: float,
    q_start: int,
    k_start: int,
    mask: Tensor | None,
    causal: bool,
) -> Tensor:
    r"""One tile $S_{ij} = \tau Q_i K_j^\top$, with $-\infty$ where query may not see key.

    Args:
        q: The tile's queries ``[b, h, nq, d]``, at positions ``q_start ..``.
        k: The tile's keys ``[b, h, nk, d]``, at positions ``k_start ..``.
        scale: $\tau$.
        q_start: Position of the first query.
        k_start: Position of the first key.
        mask: Key-padding mask of the tile's keys ``[b, nk]`` (True = real), or None.
        causal: Query at position $i$ sees keys at positions $j \le i$.

    Returns:
        ``[b, h, nq, nk]``.

    Examples:
        >>> import torch
        >>> from implementations._tiled import tile_scores
        >>> q = torch.ones(1, 1, 2, 4)
        >>> tile_scores(q, q, 0.5, q_start=0, k_start=0, mask=None, causal=True)[0, 0]
        tensor([[2., -inf],
                [2., 2.]])
    """
    # tau folded into the queries: an [nq, d] product instead of one over the [nq, nk] tile.
    scores = torch.einsum("bhid,bhjd->bhij", q * scale, k)  # [b, h, nq, nk]
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], -torch.inf)
    # Under a causal mask only the rows before the tile's last key can see a future key
    # (the tiles of the references are at or below the diagonal): mask those rows alone.
    rows = min(q.shape[-2], k_start + k.shape[-2] - 1 - q_start) if causal else 0
    if rows > 0:
        i = torch.arange(q_start, q_start + rows, device=q.device)[:, None]
        j = torch.arange(k_start, k_start + k.shape[-2], device=q.device)[None, :]
        scores[..., :rows, :].masked_fill_(j > i, -torch.inf)  # [b, h, rows, nk]: future keys
    return scores


def tile_gradients(
    p: Tensor, q: Tensor, k: Tensor, v: Tensor, do: Tensor, delta: Tensor, scale: float
) -> tuple[Tensor, Tensor, Tensor]:
    r"""One tile's contributions $(dQ_i, dK_j, dV_j)$ to the gradients, from $P_{ij}$.

    $dV_j = P_{ij}^\top dO_i$, $dS_{ij} = P_{ij} \circ (dO_i V_j^\top - D_i)$,
    $dQ_i = \tau\, dS_{ij} K_j$, $dK_j = \tau\, dS_{ij}^\top Q_i$ (the softmax Jacobian applied
    row by row: $D_i = \mathrm{rowsum}(dO_i \circ O_i) = \mathrm{rowsum}(P_i \circ dP_i)$).

    Args:
        p: The recomputed probabilities ``[b, h, nq, nk]``.
        q: ``[b, h, nq, d]``.
        k: ``[b, h, nk, d]``.
        v: ``[b, h, nk, dv]``.
        do: $dO_i$ ``[b, h, nq, dv]``.
        delta: $D_i$ ``[b, h, nq]``.
        scale: $\tau$.

    Returns:
        ``(dq [b, h, nq, d], dk [b, h, nk, d], dv [b, h, nk, dv])``.

    Examples:
        >>> import torch
        >>> from implementations._tiled import tile_gradients
        >>> p = torch.full((1, 1, 2, 2), 0.5)
        >>> q, do = torch.randn(1, 1, 2, 3), torch.randn(1, 1, 2, 3)
        >>> dq, dk, dv = tile_gradients(p, q, q, q, do, torch.zeros(1, 1, 2), 1.0)
        >>> torch.allclose(dv, p.transpose(-1, -2) @ do)
        True
    """
    dv = p.transpose(-1, -2) @ do  # [b, h, nk, dv]
    dp = do @ v.transpose(-1, -2)  # [b, h, nq, nk]
    ds = p * (dp - delta[..., None])  # [b, h, nq, nk]
    dq = (ds @ k) * scale  # [b, h, nq, d]
    dk = (ds.transpose(-1, -2) @ q) * scale  # [b, h, nk, d]
    return dq, dk, dv


class TiledAttention(torch.autograd.Function):
    """Exact attention by a tiled algorithm; the backward recomputes the tiles.

    ``forward(ctx, q, k, v, mask, causal, block, algorithm)``: the saved tensors are
    $Q, K, V, O$ and the algorithm's $O(n)$ softmax statistics, so the memory kept for the
    backward is linear in ``n``.
    """

    @staticmethod
    def forward(
        ctx: Any,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Tensor | None,
        causal: bool,
        block: int,
        algorithm: TiledAlgorithm,
    ) -> Tensor:
        o, stats = algorithm.forward(q, k, v, mask, causal, block)
        ctx.save_for_backward(q, k, v, o, mask, *stats)
        ctx.causal, ctx.block, ctx.algorithm = causal, block, algorithm
        return o

    @staticmethod
    def backward(ctx: Any, do: Tensor) -> tuple[Tensor | None, ...]:
        q, k, v, o, mask, *stats = ctx.saved_tensors
        dq, dk, dv = ctx.algorithm.backward(
            q, k, v, o, tuple(stats), do, mask, ctx.causal, ctx.block
        )
        return dq, dk, dv, None, None, None, None


def tiled_attention(
    algorithm: TiledAlgorithm,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    causal: bool = False,
    block: int = 128,
    kernel: Kernel = "reference",
    fused: Callable[..., Tensor] | None = None,
) -> Tensor:
    r"""Exact $\mathrm{softmax}(QK^\top / \sqrt d)\,V$ by ``algorithm``, or by the fused kernel.

    Args:
        algorithm: The tiled forward / backward of the paper.
        q: ``[b, h, n, d]``.
        k: ``[b, h, n, d]``.
        v: ``[b, h, n, dv]``.
        mask: Key-padding mask ``[b, n]`` (True = real), or None.
        causal: Query $i$ sees keys $j \le i$.
        block: Block size $B_r = B_c$ of the tiles.
        kernel: ``"reference"`` runs ``algorithm`` in PyTorch (readable, $O(n)$ memory);
            ``"fused"`` runs ``fused(q, k, v, mask=mask, causal=causal)``.
        fused: The fused exact attention for ``kernel="fused"``.

    Returns:
        ``[b, h, n, dv]`` in ``v``'s dtype; a query with no visible key gets zeros.
    """
    if kernel == "fused":
        if fused is None:
            raise ValueError("kernel='fused' needs the fused attention function")
        return fused(q, k, v, mask=mask, causal=causal)
    if kernel != "reference":
        raise ValueError(f"kernel must be 'reference' or 'fused', got {kernel!r}")
    # Accumulate in float32 at least (float64 stays float64, e.g. for gradcheck).
    work = torch.promote_types(v.dtype, torch.float32)
    o = TiledAttention.apply(
        q.to(work), k.to(work), v.to(work), mask, causal, block, algorithm
    )  # [b, h, n, dv]
    return o.to(v.dtype)
