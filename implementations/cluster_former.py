r"""Cluster-Former: sliding-window layers plus attention within k-means clusters.

Paper: *Cluster-Former: Clustering-based Sparse Transformer for Question Answering*,
Wang, Zhou, Gan, Chen, Fang, Sun, Cheng and Liu, Findings of ACL 2021
(arXiv:2009.06097; the arXiv title ends "... for Long-Range Dependency Encoding").

A long input is encoded by two kinds of layers, which the paper interleaves (sliding
layers first, Cluster-Former layers in the middle of the stack):

**Sliding-Window layer** (``layer_type="sliding"``). The sequence is cut into
overlapping windows of length $l$ with stride $m$,

$$
H^{(w)} = \mathrm{Attn}\big(X_{[w m,\; w m + l)}\big), \qquad w = 0, 1, \dots,
$$

each encoded independently (full attention inside the window). A token covered by
several windows gets the average of its outputs. Cost: $O(n\, l^2 / m)$.

**Cluster-Former layer** (``layer_type="cluster"``). Every hidden state $x_i$ is
assigned to its nearest of $p$ centroids $C \in \mathbb{R}^{p \times d}$,

$$
c_i = \arg\min_{j} \lVert x_i - C_j \rVert_2 ,
$$

the tokens are sorted by cluster (ties in positional order), the sorted sequence is
cut into chunks of length $l$, and attention runs inside each chunk. Tokens with
similar states, however far apart in the document, thus share a chunk. Cost:
$O(n\,p\,d)$ to assign, $O(n \log n)$ to sort, $O(n\,l)$ to attend.

**Centroids.** They are not trained by gradient. The paper stores hidden states in a
memory bank during training and periodically (e.g. every epoch) re-runs $K$-Means on
it. Here the centroids are a buffer, fixed during the forward pass (initially random
Gaussian vectors), and
[`ClusterFormer.update_centroids`][implementations.cluster_former.ClusterFormer.update_centroids]
runs Lloyd's $K$-Means ([`kmeans`][implementations.cluster_former.kmeans]) on the hidden states you
collected, warm-started from the current centroids.

Hyper-parameters: ``layer_type`` (``"cluster"`` or ``"sliding"``), ``n_clusters`` ($p$;
the paper's best Quasar-T model uses 512), ``window_size`` ($l$, also the chunk length
of the cluster layer; default 512, the input length of the RoBERTa encoder the paper
starts from) and ``stride`` ($m$, sliding layer only; default $l / 2$, half-overlapping
windows). The paper's encoder is bidirectional (question answering), so there is no
causal variant.

**Where the time goes** (``torch.profiler``, one thread, forward, n = 8192, dim 512, 8 heads:
0.46 s): the four projections 0.24 s, the fused attention inside the 16 clusters of 512 tokens
0.12 s, the gathers that sort tokens into clusters and back 0.06 s, the nearest-centroid
assignment (distances and ``argmin``) 0.02 s. Shipped benchmark (two threads): 0.22x exact
attention forward and 0.16x forward+backward at 8192.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import (
    HeadProjections,
    chunk,
    default_mask,
    gather_positions,
    pad_to_multiple,
    softmax_attention,
)
from implementations._registry import register

__all__ = [
    "LAYER_TYPES",
    "ClusterFormer",
    "assign_clusters",
    "attention",
    "kmeans",
    "sliding_window_attention",
]

LAYER_TYPES = ("cluster", "sliding")


def assign_clusters(x: Tensor, centroids: Tensor) -> Tensor:
    r"""Nearest centroid $\arg\min_j \lVert x_i - C_j \rVert$ of each row: ``[.., d] -> [..]``.

    Examples:
        >>> import torch
        >>> from implementations.cluster_former import assign_clusters
        >>> assign_clusters(torch.tensor([[0.9, 0.1], [0.0, 2.0]]),
        ...                 torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        tensor([0, 1])
    """
    x, c = x.float(), centroids.float()
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 does not change the argmin.
    return ((c * c).sum(-1) - 2 * x @ c.T).argmin(dim=-1)


def kmeans(x: Tensor, centroids: Tensor, iters: int = 10) -> Tensor:
    """Lloyd's K-Means on the rows of ``x`` ``[N, d]``, starting from ``centroids`` ``[p, d]``.

    A centroid left without points keeps its position. Returns new ``[p, d]`` centroids.

    Examples:
        >>> import torch
        >>> from implementations.cluster_former import kmeans
        >>> x = torch.tensor([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 2.0]])
        >>> kmeans(x, torch.tensor([[1.0, 1.0], [9.0, 1.0]]))
        tensor([[ 0.,  1.],
                [10.,  1.]])
    """
    c = centroids.float()
    x = x.float()
    for _ in range(iters):
        onehot = F.one_hot(assign_clusters(x, c), c.shape[0]).float()  # [N, p]
        counts = onehot.sum(0)  # [p]
        means = (onehot.T @ x) / counts.clamp(min=1)[:, None]  # [p, d]
        c = torch.where(counts[:, None] > 0, means, c)
    return c.to(centroids.dtype)


def attention(
    q: Tensor, k: Tensor, v: Tensor, clusters: Tensor, chunk_size: int, mask: Tensor | None = None
) -> Tensor:
    """Cluster-Former attention: sort by cluster, attend within chunks of ``chunk_size``.

    Args:
        q: ``[b, h, n, d]``.
        k: ``[b, h, n, d]``.
        v: ``[b, h, n, dv]``.
        clusters: ``[b, n]`` integer cluster of every token (shared by all heads).
        chunk_size: $l$ (clipped to ``n``).
        mask: Bool key-padding mask ``[b, n]``, True = real token.

    Returns:
        ``[b, h, n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations.cluster_former import attention
        >>> q = torch.randn(2, 4, 30, 8)
        >>> attention(q, q, q, torch.randint(0, 3, (2, 30)), chunk_size=8).shape
        torch.Size([2, 4, 30, 8])
    """
    b, n = q.shape[0], q.shape[2]
    size = min(chunk_size, n)
    if mask is None:
        mask = torch.ones(b, n, dtype=torch.bool, device=q.device)
    q, _ = pad_to_multiple(q, size)
    k, _ = pad_to_multiple(k, size)
    v, _ = pad_to_multiple(v, size)
    mask, _ = pad_to_multiple(mask, size, dim=-1, value=False)
    clusters, _ = pad_to_multiple(clusters, size, dim=-1)
    length = q.shape[-2]

    # Padding sorts after every cluster, so it never shifts real tokens between chunks.
    clusters = torch.where(mask, clusters, torch.iinfo(torch.int32).max)
    positions = torch.arange(length, device=q.device)
    order = (clusters * length + positions).argsort(dim=-1)[:, None, :]  # [b, 1, N]
    undo = order.argsort(dim=-1)

    q_c = chunk(gather_positions(q, order), size)  # [b, h, C, l, d]
    k_c = chunk(gather_positions(k, order), size)  # [b, h, C, l, d]
    v_c = chunk(gather_positions(v, order), size)  # [b, h, C, l, dv]
    key_real = chunk(mask[:, None, :].gather(-1, order), size, dim=-1)  # [b, 1, C, l]
    out = softmax_attention(q_c, k_c, v_c, key_real[..., None, :])  # [b, h, C, l, dv]
    out = gather_positions(out.flatten(2, 3), undo)  # [b, h, N, dv] positional order
    return out[:, :, :n]


def sliding_window_attention(
    q: Tensor, k: Tensor, v: Tensor, window: int, stride: int, mask: Tensor | None = None
) -> Tensor:
    """Full attention inside overlapping windows; outputs averaged where windows overlap.

    Args:
        q: ``[b, h, n, d]``.
        k: ``[b, h, n, d]``.
        v: ``[b, h, n, dv]``.
        window: $l$, tokens per window (clipped to ``n``).
        stride: $m$, offset between consecutive windows (clipped to $l$).
        mask: Bool key-padding mask ``[b, n]``, True = real token.

    Returns:
        ``[b, h, n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations.cluster_former import sliding_window_attention
        >>> q = torch.randn(2, 4, 30, 8)
        >>> sliding_window_attention(q, q, q, window=8, stride=6).shape
        torch.Size([2, 4, 30, 8])
    """
    b, h, n, _ = q.shape
    size = min(window, n)
    step = min(stride, size)
    n_windows = 1 + -(-(n - size) // step)
    length = size + (n_windows - 1) * step
    if mask is None:
        mask = torch.ones(b, n, dtype=torch.bool, device=q.device)
    pad = length - n
    q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    mask = F.pad(mask, (0, pad), value=False)

    # Window w holds positions w*m .. w*m + l - 1.
    q_w = q.unfold(2, size, step).transpose(-1, -2)  # [b, h, W, l, d]
    k_w = k.unfold(2, size, step).transpose(-1, -2)  # [b, h, W, l, d]
    v_w = v.unfold(2, size, step).transpose(-1, -2)  # [b, h, W, l, dv]
    key_real = mask.unfold(1, size, step)[:, None, :, None, :]  # [b, 1, W, 1, l]
    out_w = softmax_attention(q_w, k_w, v_w, key_real)  # [b, h, W, l, dv]

    # Put every window's outputs back at their positions and average the overlaps.
    where = (
        torch.arange(n_windows, device=q.device)[:, None] * step
        + torch.arange(size, device=q.device)
    ).flatten()  # [W * l]
    out = q.new_zeros(b, h, length, v.shape[-1], dtype=torch.float32)
    out = out.index_add(2, where, out_w.flatten(2, 3).float())  # [b, h, N, dv]
    covered = torch.zeros(length, device=q.device).index_add(
        0, where, torch.ones_like(where, dtype=torch.float32)
    )  # [N]: how many windows hold each position
    return (out / covered[:, None])[:, :, :n].to(v.dtype)


@register("cluster-former", kind="attention", supports_causal=False)
class ClusterFormer(nn.Module):
    """One Cluster-Former layer's attention: a Cluster-Former layer or a sliding-window layer.

    Build a stack by mixing ``layer_type="sliding"`` and ``layer_type="cluster"`` modules.
    The cluster layer's centroids (buffer ``centroids`` ``[n_clusters, dim]``) are
    refreshed by `update_centroids`, never by gradient.

    Args:
        dim: Model width $d$.
        heads: Number of heads.
        causal: Unsupported (the paper's encoder is bidirectional).
        layer_type: ``"cluster"`` or ``"sliding"``.
        n_clusters: $p$, number of centroids.
        window_size: $l$: window length (sliding) or chunk length (cluster).
        stride: $m$, offset between sliding windows; None for $l / 2$.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("cluster-former", dim=32, heads=4,
        ...                               n_clusters=4, window_size=8)
        >>> bank = torch.randn(500, 32)  # hidden states collected during training
        >>> layer.update_centroids(bank)
        >>> x = torch.randn(2, 37, 32)
        >>> mask = torch.ones(2, 37, dtype=torch.bool)
        >>> mask[1, 30:] = False  # the second sequence has 30 real tokens
        >>> layer(x, mask).shape
        torch.Size([2, 37, 32])
    """

    centroids: Tensor  # [k, dim] buffer, updated by K-Means

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        layer_type: str = "cluster",
        n_clusters: int = 512,
        window_size: int = 512,
        stride: int | None = None,
    ) -> None:
        super().__init__()
        if causal:
            raise ValueError("cluster-former has no causal variant (causal must be False)")
        if layer_type not in LAYER_TYPES:
            raise ValueError(f"layer_type must be one of {LAYER_TYPES}, got {layer_type!r}")
        if n_clusters < 1:
            raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
        if window_size < 1:
            raise ValueError(f"window_size must be >= 1, got {window_size}")
        stride = max(window_size // 2, 1) if stride is None else stride
        if not 1 <= stride <= window_size:
            # A stride longer than the window would leave tokens outside every window.
            raise ValueError(f"stride must be in [1, window_size={window_size}], got {stride}")
        self.layer_type, self.window_size, self.stride = layer_type, window_size, stride
        self.proj = HeadProjections(dim, heads)
        self.register_buffer("centroids", torch.randn(n_clusters, dim))

    @torch.no_grad()
    def update_centroids(self, hidden: Tensor, mask: Tensor | None = None, iters: int = 10) -> None:
        """Re-run K-Means on a memory bank of hidden states, warm-started from the centroids.

        Args:
            hidden: ``[..., dim]`` hidden states (the inputs this layer received).
            mask: Optional bool ``hidden.shape[:-1]``, True = a real token to use.
            iters: Lloyd iterations.
        """
        bank = hidden.reshape(-1, hidden.shape[-1])
        if mask is not None:
            bank = bank[mask.reshape(-1)]
        self.centroids = kmeans(bank.to(self.centroids), self.centroids, iters)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        mask = default_mask(mask, x)
        q, k, v = self.proj.qkv(x)  # [b, h, n, d]
        if self.layer_type == "sliding":
            o = sliding_window_attention(q, k, v, self.window_size, self.stride, mask)
        else:
            clusters = assign_clusters(x, self.centroids)  # [b, n]
            o = attention(q, k, v, clusters, self.window_size, mask)
        return self.proj.out(o)
