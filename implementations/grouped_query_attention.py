r"""Grouped-query attention (GQA): groups of query heads share one key/value head.

Paper: *GQA: Training Generalized Multi-Query Transformer Models from Multi-Head Checkpoints*,
Joshua Ainslie, James Lee-Thorp, Michiel de Jong, Yury Zemlyanskiy, Federico Lebrón and Sumit
Sanghai, EMNLP 2023 (arXiv:2305.13245).

Multi-head attention has $h$ query, key and value heads; multi-query attention
([MQA][implementations.multi_query_attention], Shazeer 2019) keeps $h$ query heads but a single
key and value head. GQA interpolates: the $h$ query heads are split into $g$ groups of
$r = h / g$ consecutive heads, and group $\gamma$ shares the key and value head
$K_\gamma = X W^K_\gamma$, $V_\gamma = X W^V_\gamma$:

$$
\mathrm{head}_i = \mathrm{softmax}\!\left(\frac{Q_i K_{\gamma(i)}^\top}{\sqrt{d_k}}\right)
V_{\gamma(i)}, \qquad \gamma(i) = \lfloor i / r \rfloor, \qquad
\mathrm{GQA}(X) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h)\, W^O .
$$

$g = h$ is multi-head attention, $g = 1$ multi-query attention ("GQA-$g$" in the paper).

**The key/value cache.** The arithmetic is that of multi-head attention, $O(n^2 d)$; what
shrinks is what an autoregressive decoder stores and re-reads at every step: the keys and values
of all past positions, $2 \cdot n \cdot g \cdot d_k$ numbers per layer instead of
$2 \cdot n \cdot h \cdot d_k$ (an $h / g$-fold saving), and the memory bandwidth of loading
them, which bounds decoding speed. The layer's
[`step`][implementations.grouped_query_attention.GroupedQueryAttention.step] decodes with such a
cache: ``[b, g, t, d_k]`` keys and values after $t$ tokens, growing by one
position per step (the standard incremental decoding the papers time).

**Uptraining.** The paper converts a multi-head checkpoint by **mean-pooling** the key and value
projection matrices of the heads of each group,

$$
W^K_\gamma = \frac{1}{r} \sum_{i : \gamma(i) = \gamma} W^K_i, \qquad
W^V_\gamma = \frac{1}{r} \sum_{i : \gamma(i) = \gamma} W^V_i ,
$$

(the paper finds it better than keeping the first head of each group or a random
initialisation), and then continues pre-training for a fraction $\alpha$ of the original steps
($\alpha = 0.05$).
[`from_multi_head`][implementations.grouped_query_attention.from_multi_head] does the conversion;
the continued training is ordinary training.

Implementation: without padding, the core is the fused kernel's grouped form
(``scaled_dot_product_attention(..., enable_gqa=True)``), which reads each key/value head for
its $r$ query heads without copying it and, causal, skips the masked half. With padding, or
fewer queries than keys (decoding), the $r$ query heads of a group are stacked along the
query axis, so each group's keys and values are used by $r n$ queries without being copied
$r$ times, and the core is exact attention
([`dense.attention`][implementations.dense.attention]) under the stacked mask. Where the time
goes (n = 4096, 8 heads, one key head, two threads): the stacked form under a causal mask
takes 0.61 s, the grouped fused kernel 0.12 s, as much as dense attention's (both are
bitwise equal). The layer has no
positional encoding (as every layer of the catalog), so the paper's T5 relative-position
biases are not reproduced.

Hyper-parameters:

* ``kv_heads``: $g$, which must divide ``heads``. The paper's main model is GQA-8 (8 key/value
  heads); the default None takes $\gcd(h, 8)$, which is 8 whenever $h$ is a multiple of 8.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from implementations._helpers import HeadProjections, merge_heads, split_heads
from implementations._registry import register
from implementations.dense import attention as exact_attention

__all__ = [
    "GroupedProjections",
    "GroupedQueryAttention",
    "KVCache",
    "from_multi_head",
    "grouped_attention",
    "mean_pool_heads",
]

# The paper's GQA-8.
PAPER_KV_HEADS = 8


def grouped_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, causal: bool = False
) -> Tensor:
    r"""Exact attention of $h$ query heads over $g$ shared key/value heads.

    Query head $i$ reads key/value head $\lfloor i / (h / g) \rfloor$.

    Args:
        q: ``[b, h, nq, d]``.
        k: ``[b, g, nk, d]``, $g$ dividing $h$.
        v: ``[b, g, nk, dv]``.
        mask: Key-padding mask ``[b, nk]`` (True = real), or None.
        causal: Query $i$ sees keys $j \le i + (n_k - n_q)$ (queries aligned with the last
            keys, as [`dense.attention`][implementations.dense.attention]).

    Returns:
        ``[b, h, nq, dv]``; a query that sees no key gets zeros.

    Examples:
        >>> import torch
        >>> from implementations.dense import attention
        >>> from implementations.grouped_query_attention import grouped_attention
        >>> q, k = torch.randn(2, 6, 5, 4), torch.randn(2, 2, 5, 4)
        >>> repeated = k.repeat_interleave(3, dim=1)  # [2, 6, 5, 4]: each group's head 3 times
        >>> torch.allclose(grouped_attention(q, k, k, causal=True),
        ...                attention(q, repeated, repeated, causal=True), atol=1e-6)
        True
    """
    b, h, nq, d = q.shape
    g, nk = k.shape[1], k.shape[2]
    if h % g:
        raise ValueError(f"{g} key/value heads cannot be shared by {h} query heads evenly")
    r = h // g
    if mask is None and (not causal or nq == nk):
        # The fused kernel reads each key/value head for its r query heads itself
        # (enable_gqa), and its causal path needs no mask: the stacked form below would
        # need an [r n, n] mask under causality, which sends it to the 5x slower math path.
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    # A group's r query heads, stacked along the query axis: row (s, i) is head s, query i.
    q_stacked = q.reshape(b, g, r * nq, d)  # [b, g, r nq, d]
    # Here there is padding, or causal queries aligned with the last of more keys (decoding).
    allowed: Tensor | None = mask  # [b, nk]: key padding
    if causal:
        position = torch.arange(nq, device=q.device).repeat(r)  # [r nq]: each row's query
        keys = torch.arange(nk, device=q.device)
        allowed = (keys[None, :] <= position[:, None] + (nk - nq))[None, None]  # [1, 1, r nq, nk]
        if mask is not None:
            allowed = allowed & mask[:, None, None, :]  # [b, 1, r nq, nk]
    o = exact_attention(q_stacked, k, v, mask=allowed)  # [b, g, r nq, dv]
    return o.reshape(b, h, nq, v.shape[-1])  # [b, h, nq, dv]


def mean_pool_heads(weight: Tensor, heads: int, kv_heads: int) -> Tensor:
    r"""Mean-pool the per-head rows of a key or value projection into ``kv_heads`` heads.

    Args:
        weight: ``[heads * d_k, dim]`` (an ``nn.Linear`` weight; head $i$ owns rows
            $i d_k \dots (i + 1) d_k - 1$).
        heads: $h$.
        kv_heads: $g$, dividing $h$.

    Returns:
        ``[kv_heads * d_k, dim]``: the mean $W_\gamma = \frac{1}{r} \sum_i W_i$ over each
        group of $r = h / g$ consecutive heads $i$.

    Examples:
        >>> import torch
        >>> from implementations.grouped_query_attention import mean_pool_heads
        >>> w = torch.arange(8.0)[:, None]  # 4 heads of width 2, dim 1
        >>> mean_pool_heads(w, heads=4, kv_heads=2).flatten()
        tensor([1., 2., 5., 6.])
    """
    if heads % kv_heads:
        raise ValueError(f"kv_heads ({kv_heads}) must divide heads ({heads})")
    r = heads // kv_heads
    head_dim = weight.shape[0] // heads
    grouped = weight.reshape(kv_heads, r, head_dim, *weight.shape[1:])  # [g, r, d_k, ...]
    return grouped.mean(1).reshape(kv_heads * head_dim, *weight.shape[1:])


class KVCache(NamedTuple):
    """The decoding state: every past position's key and value, ``[b, g, t, d_k]`` each."""

    keys: Tensor
    values: Tensor


class GroupedProjections(nn.Module):
    """$W^Q$ for ``heads`` heads, $W^K, W^V$ for ``kv_heads`` heads (no bias), and $W^O$.

    The attribute names are those of [`HeadProjections`][implementations._helpers.HeadProjections],
    so with ``kv_heads == heads`` a multi-head layer's state dict loads as is.

    Args:
        dim: Model width.
        heads: Query heads $h$.
        kv_heads: Key/value heads $g$.
    """

    def __init__(self, dim: int, heads: int, kv_heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.heads, self.kv_heads, self.dim_head = heads, kv_heads, dim // heads
        self.to_q = nn.Linear(dim, heads * self.dim_head, bias=False)
        self.to_k = nn.Linear(dim, kv_heads * self.dim_head, bias=False)
        self.to_v = nn.Linear(dim, kv_heads * self.dim_head, bias=False)
        self.to_out = nn.Linear(heads * self.dim_head, dim)

    def qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``x`` ``[b, n, dim]`` -> ``q`` ``[b, h, n, d_k]``, ``k, v`` ``[b, g, n, d_k]``."""
        q = split_heads(self.to_q(x), self.heads)  # [b, h, n, d_k]
        k = split_heads(self.to_k(x), self.kv_heads)  # [b, g, n, d_k]
        v = split_heads(self.to_v(x), self.kv_heads)  # [b, g, n, d_k]
        return q, k, v

    def out(self, o: Tensor) -> Tensor:
        """``[b, h, n, d_k]`` -> ``[b, n, dim]``."""
        return self.to_out(merge_heads(o))


@register("grouped-query-attention", kind="attention", supports_causal=True)
class GroupedQueryAttention(nn.Module):
    r"""Multi-head attention whose query heads share ``kv_heads`` key/value heads in groups.

    Args:
        dim: Model width.
        heads: Query heads $h$.
        causal: Mask the future (autoregressive decoding; enables ``step``).
        kv_heads: Key/value heads $g$ (dividing ``heads``); None takes $\gcd(h, 8)$, the
            paper's GQA-8 when $h$ is a multiple of 8.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("grouped-query-attention", dim=32, heads=4,
        ...                               causal=True, kv_heads=2)
        >>> x = torch.randn(2, 9, 32)
        >>> y = layer(x)
        >>> state, steps = layer.init_state(2), []
        >>> for t in range(9):  # decoding with a key/value cache gives the same outputs
        ...     y_t, state = layer.step(x[:, t], state)
        ...     steps.append(y_t)
        >>> torch.allclose(torch.stack(steps, dim=1), y, atol=1e-5)
        True
        >>> state.keys.shape  # [b, g, t, d_k]: 2 key heads cached, not 4
        torch.Size([2, 2, 9, 8])
    """

    def __init__(
        self, dim: int, heads: int = 8, causal: bool = False, *, kv_heads: int | None = None
    ) -> None:
        super().__init__()
        kv_heads = math.gcd(heads, PAPER_KV_HEADS) if kv_heads is None else kv_heads
        if heads % kv_heads:
            raise ValueError(f"kv_heads ({kv_heads}) must divide heads ({heads})")
        self.causal = causal
        self.kv_heads = kv_heads
        self.proj = GroupedProjections(dim, heads, kv_heads)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        q, k, v = self.proj.qkv(x)  # q [b, h, n, d_k]; k, v [b, g, n, d_k]
        o = grouped_attention(q, k, v, mask=mask, causal=self.causal)  # [b, h, n, d_k]
        return self.proj.out(o)

    def init_state(
        self,
        batch: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> KVCache:
        """An empty key/value cache ``[batch, g, 0, d_k]``."""
        shape = (batch, self.kv_heads, 0, self.proj.dim_head)
        dtype = self.proj.to_k.weight.dtype if dtype is None else dtype
        device = self.proj.to_k.weight.device if device is None else device
        empty = torch.zeros(shape, device=device, dtype=dtype)
        return KVCache(empty, empty.clone())

    def step(self, x_t: Tensor, state: KVCache) -> tuple[Tensor, KVCache]:
        """Decode one position: ``x_t`` ``[b, dim]`` -> ``(y_t [b, dim], cache + 1 position)``."""
        if not self.causal:
            raise ValueError("step() decodes autoregressively; build the layer with causal=True")
        q, k, v = self.proj.qkv(x_t[:, None, :])  # q [b, h, 1, d_k]; k, v [b, g, 1, d_k]
        keys = torch.cat([state.keys, k], dim=2)  # [b, g, t + 1, d_k]
        values = torch.cat([state.values, v], dim=2)  # [b, g, t + 1, d_k]
        # The cache holds only the past and the present: every cached key is visible.
        o = grouped_attention(q, keys, values)  # [b, h, 1, d_k]
        return self.proj.out(o)[:, 0], KVCache(keys, values)


def from_multi_head(layer: nn.Module, kv_heads: int) -> GroupedQueryAttention:
    """The paper's conversion of a multi-head layer: mean-pool its key/value heads per group.

    Args:
        layer: A multi-head attention layer with ``proj``
            ([`HeadProjections`][implementations._helpers.HeadProjections], e.g. ``dense``)
            and ``causal``.
        kv_heads: $g$, dividing the layer's number of heads.

    Returns:
        A [`GroupedQueryAttention`][implementations.grouped_query_attention.GroupedQueryAttention]
        with the same query and output projections and mean-pooled key and value projections,
        ready for uptraining.

    Examples:
        >>> import torch, implementations
        >>> from implementations.grouped_query_attention import from_multi_head
        >>> mha = implementations.build("dense", dim=32, heads=4)
        >>> gqa = from_multi_head(mha, kv_heads=2)
        >>> gqa.proj.to_k.weight.shape
        torch.Size([16, 32])
    """
    proj = layer.proj
    if not isinstance(proj, HeadProjections):
        raise TypeError(
            f"expected a layer with HeadProjections as .proj, got {type(proj).__name__}"
        )
    heads, dim = proj.heads, proj.to_q.in_features
    gqa = GroupedQueryAttention(dim, heads, bool(layer.causal), kv_heads=kv_heads)
    gqa = gqa.to(device=proj.to_q.weight.device, dtype=proj.to_q.weight.dtype)
    with torch.no_grad():
        gqa.proj.to_q.weight.copy_(proj.to_q.weight)
        gqa.proj.to_out.load_state_dict(proj.to_out.state_dict())
        gqa.proj.to_k.weight.copy_(mean_pool_heads(proj.to_k.weight, heads, kv_heads))
        gqa.proj.to_v.weight.copy_(mean_pool_heads(proj.to_v.weight, heads, kv_heads))
    return gqa
