r"""Funnel-Transformer: attention with strided-pooled queries, halving the sequence.

Paper: *Funnel-Transformer: Filtering out Sequential Redundancy for Efficient Language
Processing*, Zihang Dai, Guokun Lai, Yiming Yang and Quoc V. Le, NeurIPS 2020
(arXiv:2006.03236).

The encoder is a stack of blocks; the first layer of every block after the first
compresses the hidden sequence $h \in \mathbb{R}^{n \times d}$ by strided mean pooling
(stride 2, window 2), and only the **queries** are pooled ("pool-query-only"): the keys
and values still see the full, unpooled sequence, so the pooled tokens can gather
information from every position:

$$
h' = \mathrm{Pooling}(h) \in \mathbb{R}^{n' \times d},\qquad
h \leftarrow \mathrm{LayerNorm}\big(h' + \text{S-Attn}(Q = h',\; KV = h)\big).
$$

This module is the attention part, $\text{S-Attn}(Q = \mathrm{Pooling}(h), KV = h)$, with
$n' = \lceil n / s \rceil$ output positions (the residual $h'$ and normalisation are
the surrounding layer's;
[`implementations.transformer.Transformer`][implementations.transformer.Transformer] adds the
average-pooled residual). Each pooling layer costs $O(n' n d)$ instead of $O(n^2 d)$, and every
later layer of the block runs on $n'$ tokens, which is where Funnel saves its FLOPs (re-invested in
depth or width). Pooling windows mix neighbouring (also future) tokens, so the mechanism is
bidirectional only.

**Decoder.** For token-level tasks the paper recovers a full-length representation from
the last compressed hidden state $h^{(M)}$ ($n / 2^{M-1}$ tokens after $M$ blocks): it
is **up-sampled by repetition**, every vector copied $2^{M-1}$ times, and added to the
full-length output of the first block $h^{(1)}$ as a residual,

$$
g = \mathrm{Upsample}(h^{(M)}) + h^{(1)},
$$

then two more Transformer layers (the decoder) process $g$.
[`FunnelUpsampler`][implementations.funnel_transformer.FunnelUpsampler] implements
$\mathrm{Upsample}(\cdot) + h^{(1)}$.

With a key-padding mask, a pooled query averages the real tokens of its window only,
padded keys get zero weight, and a pooled position is real when any token of its window
is
([`FunnelTransformer.output_mask`][implementations.funnel_transformer.FunnelTransformer.output_mask]).
Positional information (the paper uses Transformer-XL relative attention) and the paper's separate
handling of the [cls] token are outside this module.

Hyper-parameters:

* ``stride``: pooling stride and window $s$ (paper: 2).
* ``pooling``: ``"mean"`` (paper's default) or ``"max"`` (compared in the paper's
  ablation).
* ``pool_query_only``: True (paper) pools the queries only; False also pools keys and
  values (the ablation baseline).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from implementations._helpers import (
    HeadProjections,
    chunk,
    default_mask,
    pad_to_multiple,
)
from implementations._registry import register
from implementations.dense import attention as dense_attention

__all__ = ["FunnelTransformer", "FunnelUpsampler", "pool", "upsample"]


def pool(x: Tensor, mask: Tensor, stride: int, mode: str = "mean") -> tuple[Tensor, Tensor]:
    """Strided pooling over windows of ``stride`` positions, ignoring padded tokens.

    The last window is shorter when ``n`` is not a multiple of ``stride``.

    Args:
        x: ``[b, n, d]``.
        mask: Bool ``[b, n]``, True = real token.
        stride: Window and stride $s$.
        mode: ``"mean"`` (mean of the window's real tokens) or ``"max"``.

    Returns:
        ``(pooled, pooled_mask)``: ``[b, ceil(n / s), d]`` and bool ``[b, ceil(n / s)]``
        (True when the window holds a real token; windows without one pool to 0).

    Examples:
        >>> import torch
        >>> from implementations.funnel_transformer import pool
        >>> x = torch.arange(5.0).view(1, 5, 1)
        >>> y, m = pool(x, torch.ones(1, 5, dtype=torch.bool), stride=2)
        >>> y.flatten().tolist(), m.tolist()
        ([0.5, 2.5, 4.0], [[True, True, True]])
    """
    x, _ = pad_to_multiple(x, stride)  # [b, n' * s, d]
    mask, _ = pad_to_multiple(mask, stride, dim=-1, value=False)  # [b, n' * s]
    windows = chunk(x, stride)  # [b, n', s, d]
    window_mask = chunk(mask, stride, dim=-1)  # [b, n', s]
    real = window_mask.unsqueeze(-1)  # [b, n', s, 1]
    pooled_mask = window_mask.any(-1)  # [b, n']
    if mode == "mean":
        total = windows.masked_fill(~real, 0).sum(-2)  # [b, n', d]
        count = window_mask.sum(-1, keepdim=True).clamp(min=1)  # [b, n', 1]
        pooled = total / count.to(x.dtype)
    else:
        lowest = torch.finfo(x.dtype).min
        pooled = windows.masked_fill(~real, lowest).amax(-2)  # [b, n', d]
        pooled = pooled.masked_fill(~pooled_mask.unsqueeze(-1), 0)
    return pooled, pooled_mask


def upsample(h: Tensor, factor: int, length: int) -> Tensor:
    """Repeat every position ``factor`` times and keep the first ``length``: ``[b, length, d]``.

    Examples:
        >>> import torch
        >>> from implementations.funnel_transformer import upsample
        >>> upsample(torch.tensor([[[1.0], [2.0]]]), factor=2, length=3).flatten().tolist()
        [1.0, 1.0, 2.0]
    """
    if h.shape[1] * factor < length:
        raise ValueError(f"{h.shape[1]} positions x {factor} cannot cover length {length}")
    return h.repeat_interleave(factor, dim=1)[:, :length]  # [b, length, d]


class FunnelUpsampler(nn.Module):
    r"""The decoder input $g = \mathrm{Upsample}(h^{(M)}) + h^{(1)}$ (no parameters).

    Args:
        factor: Total compression of the encoder, $s^{M-1}$ for $M$ blocks with stride
            $s$ (each compressed vector covers ``factor`` full-length positions).

    Examples:
        >>> import torch
        >>> from implementations.funnel_transformer import FunnelUpsampler
        >>> up = FunnelUpsampler(factor=4)
        >>> compressed, full = torch.randn(2, 3, 8), torch.randn(2, 10, 8)
        >>> up(compressed, full).shape
        torch.Size([2, 10, 8])
    """

    def __init__(self, factor: int) -> None:
        super().__init__()
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        self.factor = factor

    def forward(self, compressed: Tensor, full: Tensor) -> Tensor:
        """``compressed`` ``[b, ceil(n / factor), d]``, ``full`` ``[b, n, d]`` -> ``[b, n, d]``."""
        return full + upsample(compressed, self.factor, full.shape[1])


@register("funnel-transformer", kind="downsample", supports_causal=False)
class FunnelTransformer(nn.Module):
    r"""Multi-head attention whose queries are the stride-$s$ pooled sequence.

    Args:
        dim: Model width $d_{model}$.
        heads: Number of heads $h$.
        causal: Must be False (pooling windows contain future tokens).
        stride: Pooling stride and window $s$; the output has $\lceil n / s \rceil$
            positions.
        pooling: ``"mean"`` or ``"max"``.
        pool_query_only: Pool the queries only (paper) or queries, keys and values.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("funnel-transformer", dim=32, heads=4)
        >>> x = torch.randn(2, 37, 32)
        >>> layer(x).shape, layer.output_length(37)
        (torch.Size([2, 19, 32]), 19)
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        stride: int = 2,
        pooling: str = "mean",
        pool_query_only: bool = True,
    ) -> None:
        super().__init__()
        if causal:
            raise ValueError("funnel-transformer does not support causal=True")
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        if pooling not in ("mean", "max"):
            raise ValueError(f"pooling must be 'mean' or 'max', got {pooling!r}")
        self.stride = stride
        self.pooling = pooling
        self.pool_query_only = pool_query_only
        self.proj = HeadProjections(dim, heads)

    def output_length(self, n: int) -> int:
        r"""$\lceil n / s \rceil$ pooled positions."""
        return math.ceil(n / self.stride)

    def output_mask(self, mask: Tensor) -> Tensor:
        """A pooled position is real when its window holds a real token: ``[b, n']``."""
        windows, _ = pad_to_multiple(mask, self.stride, dim=-1, value=False)
        return chunk(windows, self.stride, dim=-1).any(-1)

    def pool_residual(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        r"""The residual stream pooled like the queries, $h' = \mathrm{Pool}(h)$.

        A Transformer block adds the attention output to this, as the paper does, rather
        than to a generic resampling of ``x``: ``[b, n, dim] -> [b, ceil(n / s), dim]``.
        """
        return pool(x, default_mask(mask, x), self.stride, self.pooling)[0]

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` -> ``[b, ceil(n / s), dim]``."""
        mask = default_mask(mask, x)
        pooled, pooled_mask = pool(x, mask, self.stride, self.pooling)  # [b, n', dim]
        context, context_mask = (x, mask) if self.pool_query_only else (pooled, pooled_mask)
        # q [b, h, n', d]; k, v [b, h, n, d] (or n' when keys are pooled too)
        q, k, v = self.proj.qkv(pooled, context)
        o = dense_attention(q, k, v, mask=context_mask)  # [b, h, n', d]
        return self.proj.out(o)  # [b, n', dim]
