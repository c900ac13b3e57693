r"""Poolingformer: a sliding-window level followed by a wider pooling-attention level.

Paper: *Poolingformer: Long Document Modeling with Pooling Attention*, Hang Zhang, Yeyun
Gong, Yelong Shen, Weisheng Li, Jiancheng Lv, Nan Duan and Weizhu Chen, ICML 2021
(arXiv:2105.04371).

Poolingformer replaces full self-attention by a two-level schema.

**First level: sliding-window attention.** Token $i$ attends to its neighbourhood
$\mathcal{N}(i, w_1) = \{i - \tfrac12 w_1, \dots, i + \tfrac12 w_1\}$:

$$
y_i = \sum_{j \in \mathcal{N}(i, w_1)} \mathrm{softmax}_j\!\left(
\frac{(x_i W^Q)(x_j W^K)^\top}{\sqrt{d_k}}\right) x_j W^V .
$$

**Second level: pooling attention.** The first level's output is the second level's
input. Its window $w_2 > w_1$ is much larger, so its keys and values are compressed by a
pooling $\mathcal{P}$ of kernel size $\kappa$ and stride $\xi$ before attending:

$$
z_i = \sum_{m} \mathrm{softmax}_m\!\left(\frac{(y_i W'^Q)\,\tilde k_m^\top}{\sqrt{d_k}}\right)
\tilde v_m, \qquad \tilde k = \mathcal{P}(y W'^K), \quad \tilde v = \mathcal{P}(y W'^V),
$$

over the pooled positions $m$ inside $\mathcal{N}(i, w_2)$. The layer outputs $y_i + z_i$
(the surrounding block adds the residual $x_i$). Both levels are linear in $n$:
$O(n (w_1 + w_2 / \xi))$, and the receptive field of a layer grows to about $w_2$.

**Implementation.** Pooled position $m$ summarises the tokens
$[m\xi - p,\ m\xi - p + \kappa)$ with $p = \lfloor (\kappa - \xi) / 2 \rfloor$, i.e. a
window centred on the stride cell $[m\xi, (m + 1)\xi)$; padded tokens are left out of
every pooling window (a window with no real token is never attended). A query in cell
$t = \lfloor i / \xi \rfloor$ attends to the pooled positions $|m - t| \le R$ with
$R = \lfloor w_2 / (2\xi) \rfloor$, the cells within $\tfrac12 w_2$ tokens. The $\xi$
queries of a cell share that window, so the queries are split into $\xi$ *phases*
($i \bmod \xi$), each a sequence with one query per pooled position, and every phase runs
the blockwise banded kernel
([`sliding_window_blocks`][implementations._helpers.sliding_window_blocks]); the first level uses
the same kernel. Nothing is $n \times n$.

**Pooling operators.** The paper compares several operators for $\mathcal{P}$; this
module provides ``"mean"`` and ``"max"`` pooling (no parameters) and ``"conv"``, a learned
depthwise (per-channel) convolution with kernel $\kappa$ and stride $\xi$, separate for
keys and values. The paper's *dynamic* (input-conditioned) convolution pooling is not
implemented. The paper uses Poolingformer as an encoder (for QA, and as the encoder of
its summarisation model), so ``causal=True`` is not supported.

The defaults ($w_1 = 128$, $w_2 = 512$, $\kappa = 5$, $\xi = 4$, mean pooling) are a
representative long-document setting; the paper tunes these per task.

Hyper-parameters:
    first_level_window: $w_1$, the first level's window (both sides together).
    second_level_window: $w_2$, the second level's window (both sides together).
    pooling_kernel_size: $\kappa$, tokens per pooling window.
    pooling_stride: $\xi$, the stride between pooling windows ($\kappa \ge \xi$).
    pooling: the operator: ``"mean"``, ``"max"`` or ``"conv"``.

**Where the time goes** (``torch.profiler``, one thread, forward, n = 8192, dim 512, 8 heads:
0.67 s): the eight projections of the two levels 0.38 s, the fused attention of the first
level's windows 0.07 s and of the second level's pooled windows 0.06 s, the copies and
concatenations that lay out the windows 0.09 s. Shipped benchmark (two threads): 0.32x exact
attention forward and 0.27x forward+backward at 8192.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from implementations._helpers import (
    HeadProjections,
    default_mask,
    pad_to_multiple,
    sliding_window_blocks,
    softmax_attention,
    split_heads,
)
from implementations._registry import register

__all__ = ["Poolingformer", "local_attention", "pool", "pooling_attention"]

POOLINGS = ("mean", "max", "conv")


def local_attention(q: Tensor, k: Tensor, v: Tensor, *, window: int, mask: Tensor) -> Tensor:
    """First level: query ``i`` attends to keys ``i - window // 2 .. i + window // 2``.

    Args:
        q: Queries ``[b, h, n, d]``.
        k: Keys ``[b, h, n, d]``.
        v: Values ``[b, h, n, d]``.
        window: $w_1$.
        mask: Bool key-padding mask ``[b, n]``, True = real token.

    Returns:
        ``[b, h, n, d]``.

    Examples:
        >>> import torch
        >>> from implementations.poolingformer import local_attention
        >>> q = torch.randn(2, 4, 30, 8)
        >>> local_attention(q, q, q, window=6, mask=torch.ones(2, 30, dtype=torch.bool)).shape
        torch.Size([2, 4, 30, 8])
    """
    n = q.shape[-2]
    blocks = sliding_window_blocks(q, k, v, window // 2, window // 2, mask[:, None])
    out = softmax_attention(blocks.q, blocks.k, blocks.v, blocks.allowed)  # [b, h, nb, c, d]
    return out.flatten(-3, -2)[:, :, :n]  # [b, h, n, d]


def pool(
    x: Tensor,
    mask: Tensor,
    *,
    kernel_size: int,
    stride: int,
    mode: str = "mean",
    conv: nn.Conv1d | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Pool ``x`` ``[b, n, c]`` with windows $[m\xi - p, m\xi - p + \kappa)$, ignoring padding.

    Args:
        x: ``[b, n, c]``.
        mask: Bool ``[b, n]``, True = real token; padded tokens take no part in any window.
        kernel_size: $\kappa$.
        stride: $\xi$ (at most $\kappa$).
        mode: ``"mean"``, ``"max"`` or ``"conv"``.
        conv: For ``mode="conv"``: a depthwise ``nn.Conv1d(c, c, kernel_size, groups=c)``
            whose weights are applied to each (padding-free) window.

    Returns:
        ``(pooled, pooled_mask)``: ``[b, m, c]`` and bool ``[b, m]`` (False for a window
        without real tokens), ``m = ceil(n / stride)``.

    Examples:
        >>> import torch
        >>> from implementations.poolingformer import pool
        >>> x = torch.arange(6.0).view(1, 6, 1)
        >>> pooled, ok = pool(x, torch.ones(1, 6, dtype=torch.bool), kernel_size=2, stride=2)
        >>> pooled.flatten().tolist(), ok.tolist()
        ([0.5, 2.5, 4.5], [[True, True, True]])
    """
    n = x.shape[1]
    m = -(-n // stride)
    left = (kernel_size - stride) // 2
    right = (m - 1) * stride + kernel_size - left - n  # >= 0 as kernel_size >= stride
    x = F.pad(x.masked_fill(~mask[..., None], 0), (0, 0, left, right))  # zeros are masked below
    mask = F.pad(mask, (left, right), value=False)
    windows = x.unfold(1, kernel_size, stride)  # [b, m, c, kappa]
    in_window = mask.unfold(1, kernel_size, stride)[:, :, None, :]  # [b, m, 1, kappa]
    pooled_mask = in_window.any(dim=-1).squeeze(-1)  # [b, m]
    if mode == "mean":
        count = in_window.sum(dim=-1).clamp(min=1)  # [b, m, 1]
        pooled = windows.sum(dim=-1) / count
    elif mode == "max":
        pooled = windows.masked_fill(~in_window, -math.inf).amax(dim=-1)
        pooled = pooled.masked_fill(~pooled_mask[..., None], 0)  # empty windows: 0, not -inf
    elif mode == "conv" and conv is not None:
        # A depthwise convolution over the (zero-padded) window: sum_k w[c, k] x[m, c, k] + b[c].
        pooled = torch.einsum("bmck,ck->bmc", windows, conv.weight[:, 0])
        if conv.bias is not None:
            pooled = pooled + conv.bias
    else:
        raise ValueError(f"mode must be one of {POOLINGS} (with conv= for 'conv'), got {mode!r}")
    return pooled, pooled_mask


def pooling_attention(
    q: Tensor, k: Tensor, v: Tensor, pooled_mask: Tensor, *, radius: int, stride: int
) -> Tensor:
    r"""Second level: query ``i`` attends to pooled positions $|m - \lfloor i / \xi \rfloor| \le R$.

    Args:
        q: Queries ``[b, h, n, d]``.
        k: Pooled keys ``[b, h, m, d]``, ``m = ceil(n / stride)``.
        v: Pooled values ``[b, h, m, d]``.
        pooled_mask: Bool ``[b, m]``, False for pooled positions to ignore.
        radius: $R$, in pooled positions.
        stride: $\xi$, the pooling stride (queries per pooled position).

    Returns:
        ``[b, h, n, d]``.

    Examples:
        >>> import torch
        >>> from implementations.poolingformer import pooling_attention
        >>> q, k = torch.randn(2, 4, 30, 8), torch.randn(2, 4, 10, 8)
        >>> ok = torch.ones(2, 10, dtype=torch.bool)
        >>> pooling_attention(q, k, k, ok, radius=2, stride=3).shape
        torch.Size([2, 4, 30, 8])
    """
    n = q.shape[-2]
    # Phase a holds queries a, a + xi, a + 2 xi, ...: one query per pooled position.
    q_phases = rearrange(
        pad_to_multiple(q, stride)[0], "b h (m s) d -> b h s m d", s=stride
    )  # [b, h, xi, m, d]
    blocks = sliding_window_blocks(
        q_phases, k[:, :, None], v[:, :, None], radius, radius, pooled_mask[:, None, None]
    )
    out = softmax_attention(blocks.q, blocks.k, blocks.v, blocks.allowed)  # [b, h, s, nb, c, d]
    out = out.flatten(-3, -2)[..., : q_phases.shape[-2], :]  # [b, h, s, m, d]
    return rearrange(out, "b h s m d -> b h (m s) d")[:, :, :n]  # [b, h, n, d]


@register("poolingformer", kind="attention", supports_causal=False)
class Poolingformer(nn.Module):
    r"""Poolingformer two-level attention: sliding window, then pooled wider window; returns y + z.

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: Must be False (an encoder).
        first_level_window: $w_1$.
        second_level_window: $w_2$.
        pooling_kernel_size: $\kappa$.
        pooling_stride: $\xi$.
        pooling: ``"mean"``, ``"max"`` or ``"conv"``.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build(
        ...     "poolingformer", dim=32, heads=4, first_level_window=8,
        ...     second_level_window=32, pooling_kernel_size=4, pooling_stride=2,
        ... )
        >>> x = torch.randn(2, 100, 32)
        >>> mask = torch.ones(2, 100, dtype=torch.bool)
        >>> mask[1, 70:] = False
        >>> layer(x, mask).shape
        torch.Size([2, 100, 32])
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        first_level_window: int = 128,
        second_level_window: int = 512,
        pooling_kernel_size: int = 5,
        pooling_stride: int = 4,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        if causal:
            raise ValueError("causal=True is not supported: Poolingformer is an encoder")
        for name, value in (
            ("first_level_window", first_level_window),
            ("second_level_window", second_level_window),
            ("pooling_kernel_size", pooling_kernel_size),
            ("pooling_stride", pooling_stride),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if pooling_kernel_size < pooling_stride:
            raise ValueError(
                f"pooling_kernel_size ({pooling_kernel_size}) must be >= pooling_stride "
                f"({pooling_stride}), so that every token is pooled"
            )
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.heads = heads
        self.first_level_window = first_level_window
        self.radius = second_level_window // (2 * pooling_stride)  # R, in pooled positions
        self.kernel_size = pooling_kernel_size
        self.stride = pooling_stride
        self.pooling = pooling
        self.first = HeadProjections(dim, heads)  # W^Q, W^K, W^V, W^O
        self.second = HeadProjections(dim, heads)  # W'^Q, W'^K, W'^V, W'^O
        self.key_pool = self.value_pool = None
        if pooling == "conv":
            inner = self.second.heads * self.second.dim_head
            # Depthwise: one filter per channel.
            self.key_pool = nn.Conv1d(
                inner, inner, pooling_kernel_size, stride=pooling_stride, groups=inner
            )
            self.value_pool = nn.Conv1d(
                inner, inner, pooling_kernel_size, stride=pooling_stride, groups=inner
            )

    def extra_repr(self) -> str:
        return (
            f"first_level_window={self.first_level_window}, radius={self.radius}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}, pooling={self.pooling!r}"
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        mask = default_mask(mask, x)
        # First level: y = sliding-window attention over x.
        q, k, v = self.first.qkv(x)  # [b, h, n, d] each
        y = self.first.out(local_attention(q, k, v, window=self.first_level_window, mask=mask))

        # Second level on y: pooled keys / values, a wider window.
        q2 = split_heads(self.second.to_q(y), self.heads)  # [b, h, n, d]
        k2, pooled_mask = pool(
            self.second.to_k(y),
            mask,
            kernel_size=self.kernel_size,
            stride=self.stride,
            mode=self.pooling,
            conv=self.key_pool,
        )
        v2, _ = pool(
            self.second.to_v(y),
            mask,
            kernel_size=self.kernel_size,
            stride=self.stride,
            mode=self.pooling,
            conv=self.value_pool,
        )
        k2, v2 = split_heads(k2, self.heads), split_heads(v2, self.heads)  # [b, h, m, d]
        z = pooling_attention(q2, k2, v2, pooled_mask, radius=self.radius, stride=self.stride)
        return y + self.second.out(z)
