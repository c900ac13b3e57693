r"""Routing Transformer: content-based sparse attention by online k-means routing.

Paper: *Efficient Content-Based Sparse Attention with Routing Transformers*, Roy, Saffar,
Vaswani and Grangier, TACL 2021 (arXiv:2003.05997).

Queries and keys are routed to $k$ learned centroids $\mu_1, \dots, \mu_k$ (one set
per head) and a query attends only to the keys routed to its own cluster:

$$
X'_i = \sum_{j \,:\, \mu(K_j) = \mu(Q_i)} A_{ij} V_j, \qquad
\mu(x) = \arg\max_c \; x^\top \mu_c ,
$$

with $A$ the softmax of $Q_i K_j^\top / \sqrt{d}$ over those keys. Queries and keys
are layer-normalised (without gain or bias) first, so they lie on a sphere of radius
$\sqrt{d}$ where the dot product ranks centroids like the Euclidean distance.

**Online k-means.** The centroids are not trained by gradient descent. During training
each forward pass moves every centroid towards the mean of the queries and keys routed
to it, by an exponential moving average with decay $\lambda$:

$$
\mu_c \leftarrow \lambda\, \mu_c + (1 - \lambda)\,
    \operatorname{mean}\{\, x \in \{Q_i\} \cup \{K_j\} : \mu(x) = \mu_c \,\},
$$

(the paper writes the update with the routed queries and keys weighted
$(1 - \lambda)/2$ each; like the authors' code we average them so the centroids stay on
the scale of the normalised vectors). A centroid no token chose keeps its value. The
update runs after the attention, under ``torch.no_grad``, and only in training mode.

**Balanced routing (``causal=False``).** Clusters found by argmax have uneven sizes, so
the paper's implementation makes them balanced: every centroid takes the $w$ queries
and the $w$ keys closest to it (top-$k$ by $x^\top \mu_c$), with the window
$w = \lceil n / k \rceil$ by default. Attention is computed inside each $w \times w$
cluster block; a query picked by several centroids gets the average of its outputs,
and a query picked by none gets 0 from this layer (the paper pairs routing heads with
local-attention heads, not reproduced here). With $k \approx \sqrt{n}$ the cost is
$O(n\,w\,d) = O(n^{1.5} d)$.

**Causal routing (``causal=True``).** The top-$k$ of a centroid over the whole sequence
depends on future tokens, which an autoregressive model may not see. For decoding,
the paper's language models share queries and keys ($K = Q$, so a token's query and key
share a cluster); here each token goes to its argmax centroid, tokens are sorted by
(cluster, position), and a query attends to the $w$ most recent tokens of its cluster
up to itself: a sliding window over the sorted order, which only involves past tokens.
It is computed on chunks of $w$ sorted tokens (each with the chunk before it), so the
score tensor is $n \times 2w$.

**Where the time goes** (``torch.profiler``, one thread, forward, n = 4096, 64 clusters,
dim 512, 8 heads, training mode): the four projections about 100 ms, the top-$w$ selection
23 ms, the two layer norms 17 ms, the gathers 17 ms, the fused attention over the $k$
cluster blocks 15 ms. Against the routing-transformer package at matched settings ours is
0.98–1.20× forward at 4k–16k: nothing in the list can be removed without changing the
algorithm. The gathers once cost more: gathering from a tensor broadcast over the clusters
made the backward zero-fill a gradient of shape $[b, h, k, n, d]$ (60% of a training step);
[`gather_positions`][implementations._helpers.gather_positions] now indexes the broadcast
dimension instead.

Hyper-parameters: ``n_clusters`` ($k$; 16 for 8k tokens in the paper's enwik8 and PG-19
models), ``window_size`` ($w$; default $\lceil n / k \rceil$, 512 at 8k tokens),
``decay`` ($\lambda$ = 0.999).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import (
    chunk,
    default_mask,
    gather_positions,
    look_around,
    merge_heads,
    pad_to_multiple,
    softmax_attention,
    split_heads,
)
from implementations._registry import Range, register

__all__ = ["RoutingTransformer", "attention", "normalize", "update_centroids"]


def normalize(x: Tensor) -> Tensor:
    r"""Layer norm without gain or bias over the last axis: $\lVert x \rVert = \sqrt{d}$.

    Examples:
        >>> import torch
        >>> from implementations.routing_transformer import normalize
        >>> normalize(torch.randn(3, 16)).norm(dim=-1).round()
        tensor([4., 4., 4.])
    """
    return F.layer_norm(x, x.shape[-1:])


def _balanced_attention(
    q: Tensor, k: Tensor, v: Tensor, centroids: Tensor, window: int, mask: Tensor
) -> Tensor:
    """Non-causal routing: each centroid gathers its top-``window`` queries and keys."""
    b, h, n, _ = q.shape
    w = min(window, n)
    real = mask[:, None, None, :]  # [b, 1, 1, n]
    # Closeness x . mu_c of every token to every centroid; padding is never close.
    near_q = torch.einsum("bhnd,hcd->bhcn", q.float(), centroids.float())  # [b, h, k, n]
    near_k = torch.einsum("bhnd,hcd->bhcn", k.float(), centroids.float())  # [b, h, k, n]
    near_q = near_q.masked_fill(~real, -math.inf)
    near_k = near_k.masked_fill(~real, -math.inf)
    # Each centroid's w closest queries / keys, in positional order.
    idx_q = near_q.topk(w, dim=-1).indices.sort(dim=-1).values  # [b, h, k, w]
    idx_k = near_k.topk(w, dim=-1).indices.sort(dim=-1).values  # [b, h, k, w]
    q_c = gather_positions(q[:, :, None], idx_q)  # [b, h, k, w, d]
    k_c = gather_positions(k[:, :, None], idx_k)  # [b, h, k, w, d]
    v_c = gather_positions(v[:, :, None], idx_k)  # [b, h, k, w, dv]
    key_real = real.expand(b, h, centroids.shape[1], n).gather(-1, idx_k)  # [b, h, k, w]
    out_c = softmax_attention(q_c, k_c, v_c, key_real[..., None, :])  # [b, h, k, w, dv]

    # Scatter back to positions; average over the clusters that picked the query.
    flat_idx = idx_q.flatten(2, 3)  # [b, h, k * w]
    out = q.new_zeros(b, h, n, v.shape[-1], dtype=torch.float32)
    out = out.scatter_add(
        2, flat_idx[..., None].expand(-1, -1, -1, v.shape[-1]), out_c.flatten(2, 3).float()
    )  # [b, h, n, dv]
    picks = q.new_zeros(b, h, n, dtype=torch.float32).scatter_add(
        2, flat_idx, torch.ones_like(flat_idx, dtype=torch.float32)
    )  # [b, h, n]: how many clusters picked each query
    return (out / picks.clamp(min=1)[..., None]).to(v.dtype)


def _causal_attention(
    q: Tensor, k: Tensor, v: Tensor, centroids: Tensor, window: int, mask: Tensor
) -> Tensor:
    """Causal routing: the ``window`` latest same-cluster tokens, by sorting (cluster, pos)."""
    b, h, n, _ = q.shape
    w = min(window, n)
    n_clusters = centroids.shape[1]
    q, _ = pad_to_multiple(q, w)
    k, _ = pad_to_multiple(k, w)
    v, _ = pad_to_multiple(v, w)
    mask, _ = pad_to_multiple(mask, w, dim=-1, value=False)
    length = q.shape[-2]
    positions = torch.arange(length, device=q.device)

    # mu(Q_i) by argmax; padding goes to an extra last cluster, sorted after real tokens.
    cluster = torch.einsum("bhnd,hcd->bhnc", q.float(), centroids.float()).argmax(-1)  # [b, h, N]
    real = mask[:, None, :].expand(b, h, length)  # [b, h, N]
    cluster = cluster.masked_fill(~real, n_clusters)  # [b, h, N]
    order = (cluster * length + positions).argsort(dim=-1)  # [b, h, N] positions by sorted idx
    undo = order.argsort(dim=-1)  # [b, h, N] sorted index of each position

    q_c = chunk(gather_positions(q, order), w)  # [b, h, C, w, d]
    k_c = look_around(chunk(gather_positions(k, order), w), before=1)  # [b, h, C, 2w, d]
    v_c = look_around(chunk(gather_positions(v, order), w), before=1)  # [b, h, C, 2w, dv]
    q_cluster = chunk(cluster.gather(-1, order), w, dim=-1)[..., :, None]  # [b, h, C, w, 1]
    k_cluster = look_around(chunk(cluster.gather(-1, order)[..., None], w), before=1)[..., 0]
    k_real = look_around(chunk(real.gather(-1, order), w, dim=-1), before=1, value=False)
    k_cluster, k_real = k_cluster[..., None, :], k_real[..., None, :]  # [b, h, C, 1, 2w]
    q_idx = chunk(positions, w, dim=-1)[:, :, None]  # [C, w, 1] sorted indices
    k_idx = look_around(chunk(positions[:, None], w), before=1)[:, None, :, 0]  # [C, 1, 2w]
    # Same cluster, real, and among the w sorted positions up to the query. Inside a
    # cluster the sorted order is positional, so these are its w latest tokens <= i.
    allowed = (k_cluster == q_cluster) & k_real & (k_idx <= q_idx) & (q_idx - k_idx < w)
    out = softmax_attention(q_c, k_c, v_c, allowed)  # allowed: [b, h, C, w, 2w]
    out = gather_positions(out.flatten(2, 3), undo)  # [b, h, N, dv] positional order
    return out[:, :, :n]


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    centroids: Tensor,
    window: int,
    causal: bool = False,
    mask: Tensor | None = None,
) -> Tensor:
    """Routing attention (module docstring) on normalised queries and keys.

    Args:
        q: ``[b, h, n, d]``, layer-normalised (see
            [`normalize`][implementations.routing_transformer.normalize]).
        k: ``[b, h, n, d]``, layer-normalised; for ``causal=True`` tokens are routed by
            their query (the paper shares queries and keys when decoding, ``k = q``).
        v: ``[b, h, n, dv]``.
        centroids: ``[h, n_clusters, d]``.
        window: $w$, tokens per cluster (clipped to ``n``).
        causal: Sliding window over the (cluster, position)-sorted order.
        mask: Bool key-padding mask ``[b, n]``, True = real token.

    Returns:
        ``[b, h, n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations.routing_transformer import attention, normalize
        >>> q = normalize(torch.randn(2, 4, 30, 8))
        >>> mu = normalize(torch.randn(4, 3, 8))
        >>> attention(q, q, q, mu, window=10).shape
        torch.Size([2, 4, 30, 8])
    """
    if mask is None:
        mask = torch.ones(q.shape[0], q.shape[2], dtype=torch.bool, device=q.device)
    routed = _causal_attention if causal else _balanced_attention
    return routed(q, k, v, centroids, window, mask)


@torch.no_grad()
def update_centroids(
    centroids: Tensor, vectors: list[Tensor], mask: Tensor, decay: float
) -> Tensor:
    r"""One online k-means step: $\mu_c \leftarrow \lambda \mu_c + (1 - \lambda)\,\bar{x}_c$.

    Args:
        centroids: ``[h, k, d]``.
        vectors: Routed vectors, each ``[b, h, n, d]`` (the queries, and the keys).
        mask: ``[b, n]``, True = real token (padding moves no centroid).
        decay: $\lambda$.

    Returns:
        The new centroids ``[h, k, d]`` (a new tensor; centroids no token chose are kept).

    Examples:
        >>> import torch
        >>> from implementations.routing_transformer import update_centroids
        >>> mu = torch.zeros(1, 2, 2)
        >>> x = torch.tensor([[[[1.0, 0.0], [3.0, 0.0]]]])  # two tokens, both near e_1
        >>> update_centroids(mu + torch.tensor([[1.0, 0], [0, 1]]), [x],
        ...                  torch.ones(1, 2, dtype=torch.bool), decay=0.5)
        tensor([[[1.5000, 0.0000],
                 [0.0000, 1.0000]]])
    """
    mu = centroids.float()
    sums, counts = torch.zeros_like(mu), mu.new_zeros(mu.shape[:2])
    for x in vectors:
        x = x.float()
        nearest = torch.einsum("bhnd,hcd->bhnc", x, mu).argmax(dim=-1)  # [b, h, n]
        onehot = F.one_hot(nearest, mu.shape[1]).float() * mask[:, None, :, None]
        sums += torch.einsum("bhnc,bhnd->hcd", onehot, x)  # [h, k, d]
        counts += onehot.sum(dim=(0, 2))  # [h, k]
    means = sums / counts.clamp(min=1)[..., None]
    moved = decay * mu + (1 - decay) * means
    return torch.where(counts[..., None] > 0, moved, mu).to(centroids.dtype)


@register("routing-transformer", kind="attention", supports_causal=True)
class RoutingTransformer(nn.Module):
    r"""Multi-head routing attention with online k-means centroids (a buffer, not trained).

    With ``causal=True`` queries and keys share one projection (the paper's decoders).

    Args:
        dim: Model width $d_{model}$.
        heads: Number of heads $h$ (each has its own centroids).
        causal: Mask the future (autoregressive routing, see the module docstring).
        n_clusters: $k$, centroids per head.
        window_size: $w$, tokens per cluster; None for $\lceil n / k \rceil$.
        decay: $\lambda$ of the centroids' moving average.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("routing-transformer", dim=32, heads=4,
        ...                               n_clusters=4)
        >>> x = torch.randn(2, 37, 32)
        >>> mask = torch.ones(2, 37, dtype=torch.bool)
        >>> mask[1, 30:] = False  # the second sequence has 30 real tokens
        >>> layer(x, mask).shape  # in training mode this also moved the centroids
        torch.Size([2, 37, 32])
    """

    # Checked by implementations.build; other integers lie in [1, 2**20].
    option_ranges: ClassVar[dict[str, Range]] = {"decay": (0.0, 1.0, "[)")}

    centroids: Tensor  # [h, k, d] buffer, updated by moving averages

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        n_clusters: int = 16,
        window_size: int | None = None,
        decay: float = 0.999,
    ) -> None:
        super().__init__()
        if n_clusters < 1:
            raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
        if window_size is not None and window_size < 1:
            raise ValueError(f"window_size must be None or >= 1, got {window_size}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.heads, self.causal = heads, causal
        self.n_clusters, self.window_size, self.decay = n_clusters, window_size, decay
        dim_head = dim // heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        # Decoders share queries and keys, so there is no key projection to train.
        self.to_k = None if causal else nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)
        # Centroids start as normalised Gaussian vectors, like the routed vectors.
        self.register_buffer("centroids", normalize(torch.randn(heads, n_clusters, dim_head)))

    def window_for(self, n: int) -> int:
        r"""Tokens per cluster at length ``n``: the option, or $\lceil n / k \rceil$."""
        return self.window_size or -(-n // self.n_clusters)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        mask = default_mask(mask, x)
        q = normalize(split_heads(self.to_q(x), self.heads))  # [b, h, n, d]
        k = q if self.to_k is None else normalize(split_heads(self.to_k(x), self.heads))
        v = split_heads(self.to_v(x), self.heads)  # [b, h, n, d]
        window = self.window_for(x.shape[1])
        o = attention(q, k, v, self.centroids, window, causal=self.causal, mask=mask)
        if self.training:
            routed = [q] if self.to_k is None else [q, k]
            # A new tensor, not an in-place edit: the graph above still needs the old one.
            self.centroids = update_centroids(self.centroids, routed, mask, self.decay)
        return self.to_out(merge_heads(o))
