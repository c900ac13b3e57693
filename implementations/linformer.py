r"""Linformer: keys and values projected along the sequence to a fixed length $k$.

Paper: *Linformer: Self-Attention with Linear Complexity*, Sinong Wang, Belinda Z. Li,
Madian Khabsa, Han Fang and Hao Ma, 2020 (arXiv:2006.04768).

The paper observes that the context mapping matrix $P = \mathrm{softmax}(QK^\top /
\sqrt{d})$ is approximately low rank, and shows (via Johnson–Lindenstrauss) that
projecting keys and values along the **sequence** axis to a fixed length $k$ preserves
attention up to $\epsilon$ error (Theorem 2) for
$k = \min\{\Theta(9 d \log d / \epsilon^2),\ 5\Theta(\log n / \epsilon^2)\}$: with the first
term, independent of $n$. Each head $i$ gets two learned $k \times n$ projections $E_i$,
$F_i$:

$$
\overline{\mathrm{head}}_i
= \mathrm{softmax}\!\left(\frac{Q W_i^Q\, (E_i K W_i^K)^\top}{\sqrt{d_k}}\right)
  F_i V W_i^V ,
$$

an $n \times k$ attention: $O(nk)$ time and memory. The projections have a fixed
number of columns, so the model is built for a maximum length ``max_seq_len``; a
shorter input uses the first $n$ columns, i.e. $E_{:, :n}$ (exactly what zero-padding
the input to ``max_seq_len`` would give). Padded keys and values are zeroed *before*
the projection so that padding contributes nothing to the $k$ mixed positions.

Mixing all positions into each projected key also mixes the future into the past, so
Linformer has no causal (decoder) form.

Parameter sharing (the paper's "additional efficiency techniques"):

* ``"none"``: $E_i, F_i$ per head (the equation above);
* ``"headwise"``: one $E$ and one $F$ shared by all heads of the layer;
* ``"key-value"``: additionally $E = F$;
* ``"layerwise"``: one matrix for keys and values of all heads *and all layers*: build
  each layer with ``sharing="layerwise"`` and call
  [`Linformer.tie_projection`][implementations.linformer.Linformer.tie_projection] on every layer
  with the first one.

Following the paper's analysis (its $E = \delta R$ with $R_{ij} \sim \mathcal{N}(0,
1/k)$), the projections are initialised with i.i.d. $\mathcal{N}(0, 1/k)$ entries and
then learned.

Hyper-parameters:

* ``k``: projected length (the paper's experiments use 128 and 256 for $n = 512$).
* ``max_seq_len``: $n$, the number of columns of $E$ and $F$ (the longest input).
* ``sharing``: ``"none"``, ``"headwise"``, ``"key-value"`` or ``"layerwise"``.

**Where the time goes** (``torch.profiler``, one thread, forward, n = 8192, $k$ = 256, dim 512,
8 heads: 0.35 s): the projections 0.21 s, the two length projections $E K$ and $F V$ 0.06 s,
the fused attention over the 256 projected keys 0.07 s. Shipped benchmark (two threads): 0.19x
exact attention forward and 0.14x forward+backward at 8192; 0.71x the linformer package's
forward time and 0.45x its peak memory.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from implementations._helpers import HeadProjections, softmax_attention
from implementations._registry import register

__all__ = ["Linformer", "attention"]

Sharing = Literal["none", "headwise", "key-value", "layerwise"]
_SHARING = ("none", "headwise", "key-value", "layerwise")


def attention(
    q: Tensor, k: Tensor, v: Tensor, e: Tensor, f: Tensor, mask: Tensor | None = None
) -> Tensor:
    r"""$\mathrm{softmax}(Q (E K)^\top / \sqrt{d})\, F V$.

    Args:
        q: ``[b, h, n, d]``.
        k: ``[b, h, n, d]``.
        v: ``[b, h, n, dv]``.
        e: Key projection ``[h, k, n]`` (or ``[1, k, n]``, shared by heads).
        f: Value projection ``[h, k, n]`` (or ``[1, k, n]``).
        mask: Key-padding mask ``[b, n]``, True = real; padded keys and values are
            zeroed before the projection.

    Returns:
        ``[b, h, n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations.linformer import attention
        >>> q = torch.randn(2, 4, 10, 8)
        >>> e = torch.randn(4, 3, 10)
        >>> attention(q, q, q, e, e).shape
        torch.Size([2, 4, 10, 8])
    """
    if mask is not None:
        real = mask[:, None, :, None]  # [b, 1, n, 1]
        k, v = k.masked_fill(~real, 0), v.masked_fill(~real, 0)
    k_proj = torch.einsum("hkn,bhnd->bhkd", e.to(k.dtype), k)  # [b, h, k, d]: E K
    v_proj = torch.einsum("hkn,bhnd->bhkd", f.to(v.dtype), v)  # [b, h, k, dv]: F V
    return softmax_attention(q, k_proj, v_proj)  # [b, h, n, dv]


@register("linformer", kind="attention", supports_causal=False)
class Linformer(nn.Module):
    r"""Multi-head attention over keys and values projected to length $k$.

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: Must be False (Linformer cannot mask the future).
        k: Projected length.
        max_seq_len: Longest input; the projections have this many columns.
        sharing: ``"none"``, ``"headwise"``, ``"key-value"`` or ``"layerwise"``.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("linformer", dim=32, heads=4, k=16, max_seq_len=64)
        >>> x = torch.randn(2, 37, 32)
        >>> mask = torch.ones(2, 37, dtype=torch.bool)
        >>> mask[1, 30:] = False  # the second sequence has 30 real tokens
        >>> layer(x, mask).shape
        torch.Size([2, 37, 32])
        >>> # Layer-wise sharing: one projection for every layer.
        >>> layers = [
        ...     implementations.build(
        ...         "linformer", dim=32, heads=4, k=16, max_seq_len=64, sharing="layerwise"
        ...     )
        ...     for _ in range(3)
        ... ]
        >>> for other in layers[1:]:
        ...     other.tie_projection(layers[0])
        >>> layers[2].projection is layers[0].projection
        True
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        k: int = 256,
        max_seq_len: int = 512,
        sharing: Sharing = "none",
    ) -> None:
        super().__init__()
        if causal:
            raise ValueError("linformer does not support causal=True")
        if k < 1:
            raise ValueError(f"k must be a positive integer, got {k}")
        if max_seq_len < 1:
            raise ValueError(f"max_seq_len must be a positive integer, got {max_seq_len}")
        if sharing not in _SHARING:
            raise ValueError(f"sharing must be one of {_SHARING}, got {sharing!r}")
        self.max_seq_len = max_seq_len
        self.sharing = sharing
        self.proj = HeadProjections(dim, heads)
        # [matrices, heads, k, max_seq_len]: matrices = 2 (E, F) or 1 (E = F);
        # heads = h (one per head) or 1 (shared by the heads).
        matrices = 2 if sharing in ("none", "headwise") else 1
        per_head = heads if sharing == "none" else 1
        self.projection = nn.Parameter(torch.randn(matrices, per_head, k, max_seq_len) * k**-0.5)

    def tie_projection(self, other: Linformer) -> None:
        """Layer-wise sharing: use ``other``'s projection (the same parameter) from now on."""
        if self.sharing != "layerwise" or other.sharing != "layerwise":
            raise ValueError("tie_projection needs sharing='layerwise' on both layers")
        if other.projection.shape != self.projection.shape:
            raise ValueError(
                f"projection shapes differ: {tuple(other.projection.shape)} "
                f"vs {tuple(self.projection.shape)}"
            )
        self.projection = other.projection

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        n = x.shape[1]
        if n > self.max_seq_len:
            raise ValueError(
                f"sequence length {n} exceeds max_seq_len={self.max_seq_len}; "
                "build the layer with a larger max_seq_len"
            )
        q, k, v = self.proj.qkv(x)  # [b, h, n, d] each
        # The first n columns: the projection of the sequence zero-padded to max_seq_len.
        columns = self.projection if n == self.max_seq_len else self.projection[..., :n]
        # unbind, not two indexings: each index's backward would zero-fill a gradient of the
        # whole parameter (10% of a training step at n = 4096); unbind's stacks the two.
        e, *rest = columns.unbind(0)  # [h or 1, k, n] each
        f = rest[0] if rest else e  # the same matrix as E if shared
        o = attention(q, k, v, e, f, mask=mask)  # [b, h, n, d]
        return self.proj.out(o)
