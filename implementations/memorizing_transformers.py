r"""Memorizing Transformers: local attention plus kNN retrieval from a memory of past keys.

Paper: *Memorizing Transformers*, Yuhuai Wu, Markus N. Rabe, DeLesley Hutchins and Christian
Szegedy, ICLR 2022 (arXiv:2203.08913).

A language model reads a long document segment by segment. One attention layer (the
*kNN-augmented* layer) keeps an external memory of the (key, value) pairs of the segments it has
already seen, up to $M$ of them (first in, first out). For a segment, every head computes

* **local attention** over nearby positions of the segment:
  $V_c = \mathrm{softmax}(\tau\, \hat Q \hat K^\top)\, V$ (here a sliding window of the last $w$
  positions, the previous segment's last positions included, see below);
* **memory attention** over the $k$ memory entries whose keys have the largest dot product with
  the query, found by an exact top-$k$ search:
  $V_m = \sum_{j \in \mathrm{top}_k(q)} \mathrm{softmax}_j(\tau\, \hat q^\top \hat k_j)\, v_j$;

and combines them with a learned gate per head,

$$
g = \sigma(b_g), \qquad V_a = V_m \odot g + V_c \odot (1 - g).
$$

Queries and keys are L2-normalised ($\hat q = q / \lVert q \rVert$), which the paper uses so
that keys stored many steps ago stay on the same scale as new ones; the logits are scaled by a
learned per-head temperature $\tau$ (initialised here to $\sqrt{d}$, so that at the start the
logits have the spread of $q^\top k / \sqrt{d}$ for vectors of norm $\sqrt{d}$).

The memory is **not differentiable**: after the segment, its normalised keys and values are
appended (detached) and the oldest entries beyond $M$ dropped. No gradient flows into past
segments; the gate, the temperature and the projections of the current queries learn from the
retrieved entries.

**Local attention.** The authors' layer attends, within windows of 512 tokens, to the window and
the previous one (a Transformer-XL cache). Here each position attends to the last $w$ positions
(itself included; ``causal=False``: $w$ on each side), and the first positions of a segment see the
last $w$ entries of the memory, which are the previous segment's last positions. A segment longer
than $w$ is thus not quadratic: $O(n w d)$.

Retrieval reads the memory as it was before the segment, so a segment's own keys are found by
retrieval only in later segments (the authors update the memory after each training step).
When the memory is empty (the first segment), the layer's output is the local attention alone.

Cost for a segment of $n$ tokens: $O(n (w + M) d)$ time (the exact search scores every query
against the $M$ memory keys, in chunks of queries, so only a chunk of scores is alive at a time;
the paper uses approximate search on TPU for large memories) and $O(n w + M d)$ memory.

Hyper-parameters: ``mem_len`` $M$ = 8192 (the authors' ``external_memory_8k`` configuration; the
paper scales it up to 262K), ``topk`` $k$ = 128 (``memory_num_neighbors`` in the authors'
configuration) and ``window_size`` $w$ = 512.

**Where the time goes** (``torch.profiler``, one thread, causal forward at n = 8192 after one
warm segment, as the benchmark runs it, so the memory holds $M$ = 8192 entries: 6.4 s): the
top-$k$ selection 3.3 s (``aten::topk``, $k$ = 128 of 8192 scores per query and head) and the
exact search's score products 1.8 s, against 0.3 s for the local window and 0.25 s for the
projections. With $M = n$ the search scores as many query-key pairs as exact attention does
and then ranks them, so exact search cannot beat the fused exact kernel at this length
(shipped benchmark, two threads: 3.84x forward and 1.79x forward+backward at 8192; 2.48x and
1.10x at 16384, where $M$ stays 8192); the paper's approximate search is
what makes a large memory cheap, and it is another algorithm than the exact one this
reference states. In training the backward of the top-$k$ writes a dense ``[chunk, M]``
gradient per chunk of queries, one more score-sized product. The weighted sum of the
retrieved values used to gather a ``[b, h, n, k, d]`` tensor (3.7 s of a 9.7 s forward, 2 GiB);
it is an embedding bag now (``F.embedding_bag`` with per-sample weights): 22x faster forward
and 7x faster forward+backward for that step, with the same result.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import (
    HeadProjections,
    sliding_window_blocks,
    softmax_attention,
)
from implementations._registry import register

__all__ = ["KNNMemory", "MemorizingTransformer", "knn_attention", "topk_retrieval"]

# Scores of this many (query, memory key) pairs are alive at a time during the search.
_SEARCH_BUDGET = 2**22


class KNNMemory(NamedTuple):
    """A layer's external memory, oldest entry first.

    Attributes:
        keys: ``[batch, heads, <= mem_len, dim_head]``, L2-normalised keys.
        values: ``[batch, heads, <= mem_len, dim_head]``.
    """

    keys: Tensor
    values: Tensor


def topk_retrieval(q: Tensor, keys: Tensor, k: int) -> tuple[Tensor, Tensor]:
    r"""Exact top-``k`` inner-product search: each query's best keys, best first.

    Args:
        q: ``[b, h, n, d]``.
        keys: ``[b, h, m, d]`` with ``m >= k``.
        k: Neighbours per query.

    Returns:
        ``(scores, indices)``, both ``[b, h, n, k]``: $q^\top k_j$ and $j$.

    Examples:
        >>> import torch
        >>> from implementations.memorizing_transformers import topk_retrieval
        >>> keys = torch.eye(3)[None, None]  # [1, 1, 3, 3]
        >>> q = torch.tensor([[[[0.1, 0.9, 0.5]]]])
        >>> topk_retrieval(q, keys, 2)[1].tolist()
        [[[[1, 2]]]]
    """
    # Chunks of queries bound the [chunk, m] score tensor that is alive at once.
    size = max(64, _SEARCH_BUDGET // max(keys.shape[-2], 1))
    scores, indices = [], []
    for q_c in q.split(size, dim=-2):
        top = (q_c @ keys.transpose(-1, -2)).topk(k, dim=-1)  # [b, h, c, k]
        scores.append(top.values)
        indices.append(top.indices)
    return torch.cat(scores, dim=-2), torch.cat(indices, dim=-2)


def knn_attention(q: Tensor, keys: Tensor, values: Tensor, k: int, scale: Tensor) -> Tensor:
    r"""Attention of each query over its ``k`` nearest memory entries.

    $V_m = \sum_{j \in \mathrm{top}_k} \mathrm{softmax}_j(\tau\, q^\top k_j)\, v_j$.

    Args:
        q: ``[b, h, n, d]`` (normalised) queries.
        keys: ``[b, h, m, d]`` (normalised) memory keys.
        values: ``[b, h, m, dv]`` memory values.
        k: Neighbours per query (clipped to ``m``).
        scale: ``[h]`` the temperatures $\tau$.

    Returns:
        ``[b, h, n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations.memorizing_transformers import knn_attention
        >>> q, mem = torch.randn(1, 2, 5, 4), torch.randn(1, 2, 9, 4)
        >>> knn_attention(q, mem, mem, k=3, scale=torch.ones(2)).shape
        torch.Size([1, 2, 5, 4])
    """
    scores, idx = topk_retrieval(q, keys, min(k, keys.shape[-2]))  # [b, h, n, k]
    # The softmax in float32 at least (float64 stays float64, for the gradient checks).
    work = torch.promote_types(scores.dtype, torch.float32)
    weights = (scores.to(work) * scale.to(work)[:, None, None]).softmax(-1)  # [b, h, n, k]
    # sum_j w_j v_j over the picked rows is an embedding bag over the memory's rows: each
    # picked value is read once, never copied into a [b, h, n, k, dv] tensor (2 GiB at
    # n = m = 8192; gathering it took 22x the forward and 7x the forward+backward time).
    b, h, m, dv = values.shape
    rows = idx + torch.arange(b * h, device=idx.device).view(b, h, 1, 1) * m  # [b, h, n, k]
    out = F.embedding_bag(
        rows.flatten(0, 2),  # [b h n, k]: rows of the flattened memory
        values.reshape(b * h * m, dv),
        per_sample_weights=weights.to(values.dtype).flatten(0, 2),  # [b h n, k]
        mode="sum",
    )  # [b h n, dv]
    return out.view(b, h, -1, dv)  # [b, h, n, dv]


@register("memorizing-transformers", kind="memory", supports_causal=True)
class MemorizingTransformer(nn.Module):
    r"""A kNN-augmented attention layer: local attention and top-$k$ memory attention, gated.

    ``forward(x, memory=None) -> (y, memory)``: ``memory`` is the previous call's
    [`KNNMemory`][implementations.memorizing_transformers.KNNMemory] (None for the first segment
    of a document); the returned one holds the last ``mem_len`` keys and values, detached.

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: Local attention sees only the past (the paper's language model).
        mem_len: $M$, memory entries kept per head.
        topk: $k$, entries retrieved per query.
        window_size: $w$, positions of local attention.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("memorizing-transformers", dim=32, heads=4,
        ...                               causal=True, mem_len=24, topk=4, window_size=8)
        >>> y, memory = layer(torch.randn(2, 16, 32))
        >>> y, memory = layer(torch.randn(2, 16, 32), memory=memory)
        >>> y.shape, memory.keys.shape  # 32 pairs seen, the last 24 kept
        (torch.Size([2, 16, 32]), torch.Size([2, 4, 24, 8]))
    """

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        causal: bool = False,
        *,
        mem_len: int = 8192,
        topk: int = 128,
        window_size: int = 512,
    ) -> None:
        super().__init__()
        for name, value in (("mem_len", mem_len), ("topk", topk), ("window_size", window_size)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.heads, self.causal = heads, causal
        self.mem_len, self.topk, self.window_size = mem_len, topk, window_size
        self.proj = HeadProjections(dim, heads)
        dim_head = self.proj.dim_head
        self.log_scale = nn.Parameter(torch.full((heads,), 0.5 * math.log(dim_head)))
        # b_g: 0 gives g = 0.5, an even mix at the start.
        self.gate_bias = nn.Parameter(torch.zeros(heads))

    def check_memory(self, memory: KNNMemory | None, x: Tensor) -> KNNMemory:
        """The detached memory (empty when None), validated against ``x``."""
        b, d = x.shape[0], self.proj.dim_head
        if memory is None:
            empty = x.new_zeros(b, self.heads, 0, d)
            return KNNMemory(empty, empty)
        keys, values = memory
        expected = (b, self.heads)
        if keys.shape[:2] != expected or keys.shape != values.shape or keys.shape[-1] != d:
            raise ValueError(
                f"memory keys and values must be [batch={b}, heads={self.heads}, m, {d}], "
                f"got {tuple(keys.shape)} and {tuple(values.shape)}"
            )
        return KNNMemory(keys.detach().to(x.dtype), values.detach().to(x.dtype))

    def local_attention(self, q: Tensor, k: Tensor, v: Tensor, past: KNNMemory) -> Tensor:
        """Sliding-window attention over ``[last w memory entries; segment]``: ``[b, h, n, d]``."""
        n, w = q.shape[-2], self.window_size
        tail = min(w, past.keys.shape[-2])
        keys = torch.cat([past.keys[..., past.keys.shape[-2] - tail :, :], k], dim=-2)
        values = torch.cat([past.values[..., past.values.shape[-2] - tail :, :], v], dim=-2)
        queries = F.pad(q, (0, 0, tail, 0))  # [b, h, tail + n, d]: the tail asks nothing
        blocks = sliding_window_blocks(
            queries, keys, values, before=w - 1, after=0 if self.causal else w - 1
        )
        o = softmax_attention(blocks.q, blocks.k, blocks.v, blocks.allowed, scale=1.0)
        return o.flatten(-3, -2)[..., tail : tail + n, :]  # [b, h, n, d]

    def forward(self, x: Tensor, memory: KNNMemory | None = None) -> tuple[Tensor, KNNMemory]:
        """``x`` ``[b, n, dim]`` and the previous memory -> ``(y, new memory)``."""
        past = self.check_memory(memory, x)
        q, k, v = self.proj.qkv(x)  # [b, h, n, d]
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        scale = self.log_scale.exp()  # [h]: tau
        # tau q^T k, with tau folded into the queries.
        local = self.local_attention(q * scale[:, None, None].to(q.dtype), k, v, past)
        if past.keys.shape[-2] == 0:  # nothing to retrieve yet
            o = local
        else:
            retrieved = knn_attention(q, past.keys, past.values, self.topk, scale)
            g = torch.sigmoid(self.gate_bias)[:, None, None].to(q.dtype)  # [h, 1, 1]
            o = retrieved * g + local * (1 - g)  # V_a = V_m g + V_c (1 - g)
        keys = torch.cat([past.keys, k.detach()], dim=-2)
        values = torch.cat([past.values, v.detach()], dim=-2)
        keep = min(self.mem_len, keys.shape[-2])
        new = KNNMemory(
            keys[..., keys.shape[-2] - keep :, :], values[..., values.shape[-2] - keep :, :]
        )
        return self.proj.out(o), new
