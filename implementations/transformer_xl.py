r"""Transformer-XL: segment-level recurrence with relative positional attention.

Paper: *Transformer-XL: Attentive Language Models beyond a Fixed-Length Context*, Dai,
Yang, Yang, Carbonell, Le and Salakhutdinov, ACL 2019 (arXiv:1901.02860).

A long sequence is processed segment by segment. Each layer caches the hidden states
it received for the previous segment(s) as a memory $\mathbf{m}$ and attends over the
concatenation of that memory and the current segment $\mathbf{h}$, with the memory
under a stop-gradient $\mathrm{SG}$ (it is a constant for the current segment):

$$
\tilde{\mathbf{h}} = [\,\mathrm{SG}(\mathbf{m}) \circ \mathbf{h}\,], \qquad
\mathbf{q} = \mathbf{h} W_q, \quad
\mathbf{k} = \tilde{\mathbf{h}} W_{k,E}, \quad
\mathbf{v} = \tilde{\mathbf{h}} W_v .
$$

Absolute positions would be ambiguous across segments, so the score between query $i$
and key $j$ only sees their distance $i - j$, through a sinusoid
$R_{i-j}$ (not learned) and two learned global biases $u$ and $v$ (per head):

$$
A_{i,j} = \underbrace{q_i^\top k_j}_{(a)}
        + \underbrace{q_i^\top W_{k,R} R_{i-j}}_{(b)}
        + \underbrace{u^\top k_j}_{(c)}
        + \underbrace{v^\top W_{k,R} R_{i-j}}_{(d)}
        = (q_i + u)^\top k_j + (q_i + v)^\top W_{k,R} R_{i-j},
$$

$$
R_{t} = \big[\sin(t\,\omega_1), \dots, \sin(t\,\omega_{d/2}),\;
             \cos(t\,\omega_1), \dots, \cos(t\,\omega_{d/2})\big],
\qquad \omega_k = 10000^{-2(k-1)/d}.
$$

Terms (b) + (d) are computed for every query against the *list* of distances (one
matrix product, $O(n\,(m + n))$) and then re-indexed from "distance" to "key" columns
with the **relative shift trick** ([`rel_shift`][implementations.transformer_xl.rel_shift]): pad one
zero column, reshape, drop a row, reshape back. This is a pure view/copy, no gather.

After the segment, the memory is rolled: the last ``mem_len`` states of
$[\mathbf{m} \circ \mathbf{h}]$ become the next segment's memory, detached.

Hyper-parameters:

* ``mem_len``: $M$, how many past hidden states a layer keeps (the paper uses the
  segment length at training time, e.g. 512 on enwik8, and longer at evaluation).
* ``causal``: the paper's language model masks the future inside the segment (query
  $i$ sees the whole memory and positions $\le i$); ``causal=False`` lets every query
  of the segment see the whole segment (distances then range over negative values
  too, which the shift trick handles the same way).

The cost per segment of length $n$ is $O(n\,(n + M))$ time and memory.

**Where the time goes**: the time goes to the two $n \times (n + M)$ score products and, under
autograd, to the position-term tensors (the pad/shift copies and their gradients).
Without autograd the content term and the softmax run in the fused kernel with the
shifted position scores as its additive bias
([`rel_shift_view`][implementations.transformer_xl.rel_shift_view] shifts without a copy): 3.6x
dense forward at n = 4096 with a 512-state memory. The fused CPU kernel cannot differentiate an
additive bias, so training runs
[`reference_relative_attention`][implementations.transformer_xl.reference_relative_attention] (6.5x
dense forward+backward, as before): the query-dependent relative-position term has to be
materialised by any exact implementation, and this layer is $O(n (n + M))$, not sub-quadratic.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import (
    HeadProjections,
    causal_mask,
    masked_softmax,
    softmax_attention,
    split_heads,
)
from implementations._registry import Range, register

__all__ = [
    "RelativeSegmentAttention",
    "TransformerXL",
    "reference_relative_attention",
    "rel_shift",
    "rel_shift_view",
    "relative_attention",
    "sinusoid_embedding",
]


def sinusoid_embedding(distances: Tensor, dim: int) -> Tensor:
    r"""The sinusoid $R_t = [\sin(t\,\omega), \cos(t\,\omega)]$ of each distance $t$.

    Args:
        distances: ``[L]`` (float or int) relative distances $i - j$.
        dim: Embedding width $d$; an odd width drops the last cosine.

    Returns:
        ``[L, dim]`` float32.

    Examples:
        >>> import torch
        >>> from implementations.transformer_xl import sinusoid_embedding
        >>> r = sinusoid_embedding(torch.tensor([2.0, 1.0, 0.0]), dim=4)
        >>> r.shape, r[2].tolist()  # distance 0: sin 0 = 0, cos 0 = 1
        (torch.Size([3, 4]), [0.0, 0.0, 1.0, 1.0])
    """
    half = (dim + 1) // 2
    inv_freq = 1.0 / (10000 ** (torch.arange(half, device=distances.device) * 2.0 / dim))
    angles = distances.float()[:, None] * inv_freq[None, :]  # [L, half]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)[:, :dim]


def rel_shift(scores: Tensor, n_keys: int) -> Tensor:
    r"""Re-index position scores from "distance" columns to "key" columns.

    ``scores[..., i, c]`` holds query ``i``'s score for the distance of column ``c``,
    where the distances run from ``n_keys - 1`` (column 0) downwards, one per column.
    Queries are the last ``n_q`` of ``n_keys`` positions, so query ``i`` and key ``j``
    are ``n_keys - n_q + i - j`` apart, i.e. column ``c = n_q - 1 - i + j``. The result
    is ``out[..., i, j] = scores[..., i, n_q - 1 - i + j]``, built without a gather:

    1. pad a zero column on the left: ``[n_q, L + 1]``;
    2. view as ``[L + 1, n_q]`` and drop the first row (``n_q`` elements);
    3. view as ``[n_q, L]`` and keep the first ``n_keys`` columns.

    Row ``i`` of the flat buffer is then read ``n_q - 1 - i`` places further right. The
    shifted entries are exact wherever ``n_q - 1 - i + j < L``: everywhere when the
    distances include the negative ones (``L = n_keys + n_q - 1``), and for ``j`` up to
    query ``i``'s own position when they stop at 0 (``L = n_keys``, the causal case,
    whose remaining entries are masked anyway).

    Args:
        scores: ``[..., n_q, L]``.
        n_keys: Number of keys, ``<= L``.

    Returns:
        ``[..., n_q, n_keys]``.

    Examples:
        >>> import torch
        >>> from implementations.transformer_xl import rel_shift
        >>> s = torch.arange(6.0).view(2, 3)  # distances 2, 1, 0 for n_q = 2, n_keys = 3
        >>> rel_shift(s, 3)  # query 0 at position 1: keys 0, 1 are 1, 0 apart
        tensor([[1., 2., 0.],
                [3., 4., 5.]])
    """
    *lead, n_q, length = scores.shape
    padded = F.pad(scores, (1, 0))  # [..., n_q, L + 1]
    shifted = padded.reshape(*lead, length + 1, n_q)[..., 1:, :]  # [..., L, n_q]
    return shifted.reshape(*lead, n_q, length)[..., :n_keys]  # [..., n_q, n_keys]


def rel_shift_view(scores: Tensor, n_keys: int) -> Tensor:
    r"""[`rel_shift`][implementations.transformer_xl.rel_shift] as a strided view:
    ``out[..., i, j] = scores[..., i, n_q - 1 - i + j]``.

    In a contiguous ``[n_q, L]`` buffer that element sits at flat offset
    $(n_q - 1) + i (L - 1) + j$, so the shift is a view with row stride $L - 1$ and
    storage offset $n_q - 1$: no copy (the padded buffer of
    [`rel_shift`][implementations.transformer_xl.rel_shift] is the same trick, written with a pad
    and two reshapes). Entries are exact wherever
    [`rel_shift`][implementations.transformer_xl.rel_shift]'s are; the others (above the causal
    diagonal when ``L = n_keys``) read other rows and must be masked.

    Args:
        scores: ``[..., n_q, L]``, made contiguous if it is not.
        n_keys: Number of keys, ``<= L``.

    Returns:
        ``[..., n_q, n_keys]``, a view of ``scores``.

    Examples:
        >>> import torch
        >>> from implementations.transformer_xl import rel_shift, rel_shift_view
        >>> s = torch.arange(6.0).view(2, 3)
        >>> rel_shift_view(s, 3)[1], rel_shift(s, 3)[1]
        (tensor([3., 4., 5.]), tensor([3., 4., 5.]))
    """
    scores = scores.contiguous()
    *lead, n_q, length = scores.shape
    lead_strides = scores.stride()[:-2]
    return scores.as_strided(
        (*lead, n_q, n_keys),
        (*lead_strides, length - 1, 1),
        scores.storage_offset() + n_q - 1,
    )


def relative_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    r: Tensor,
    u: Tensor,
    v_bias: Tensor,
    causal: bool = True,
) -> Tensor:
    r"""Attention with Transformer-XL's relative scores $A_{ij}$ (module docstring).

    Without autograd, only the position term (b) + (d) is materialised, as the
    additive bias of the fused kernel
    ([`softmax_attention`][implementations._helpers.softmax_attention]), which computes the content
    term (a) + (c) and the softmax without storing scores. The fused CPU kernel has no gradient for
    that bias, so when one is needed this runs
    [`reference_relative_attention`][implementations.transformer_xl.reference_relative_attention],
    which builds every term explicitly.

    Queries are the last ``n_q`` of the ``n_k`` key positions (the keys before them are
    the memory, always visible).

    Args:
        q: ``[b, h, n_q, d]``.
        k: ``[b, h, n_k, d]``.
        v: ``[b, h, n_k, dv]``.
        r: ``[h, L, d]``, the projected sinusoids $W_{k,R} R_t$ for distances
            $t = n_k - 1, n_k - 2, \dots$ down to $0$ (``L = n_k``, causal) or to
            $-(n_q - 1)$ (``L = n_k + n_q - 1``).
        u: ``[h, d]``, the content bias $u$.
        v_bias: ``[h, d]``, the position bias $v$.
        causal: Query ``i`` sees the memory and segment positions ``<= i``.

    Returns:
        ``[b, h, n_q, dv]``.

    Examples:
        >>> import torch
        >>> from implementations.transformer_xl import relative_attention
        >>> q, k = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 5, 4)
        >>> r, u = torch.randn(2, 5, 4), torch.zeros(2, 4)
        >>> relative_attention(q, k, k, r, u, u).shape
        torch.Size([1, 2, 3, 4])
    """
    n_q, n_k = q.shape[-2], k.shape[-2]
    expected = n_k if causal else n_k + n_q - 1
    if r.shape[-2] != expected:
        raise ValueError(f"r must hold {expected} distances, got {r.shape[-2]}")
    if torch.is_grad_enabled() and any(t.requires_grad for t in (q, r, u, v_bias)):
        # The fused kernel cannot differentiate its additive bias (the position term).
        return reference_relative_attention(q, k, v, r, u, v_bias, causal)
    scale = 1.0 / math.sqrt(q.shape[-1])
    # (b) + (d), pre-scaled: one score per (query, distance), shifted to key columns.
    position = torch.einsum("bhid,hld->bhil", (q + v_bias[:, None, :]) * scale, r)  # [.., L]
    bias = rel_shift_view(position, n_k)  # [b, h, n_q, n_k], a view: no copy
    allowed = causal_mask(n_q, n_k, device=q.device) if causal else None
    # (a) + (c) inside the fused kernel: softmax((q + u) k^T / sqrt(d) + bias) v.
    return softmax_attention(q + u[:, None, :], k, v, allowed, scale=scale, bias=bias)


def reference_relative_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    r: Tensor,
    u: Tensor,
    v_bias: Tensor,
    causal: bool = True,
) -> Tensor:
    r"""The readable form of
    [`relative_attention`][implementations.transformer_xl.relative_attention] (same arguments and
    result).

    Builds the content scores (a) + (c) and the shifted position scores (b) + (d) as
    separate ``[b, h, n_q, n_k]`` tensors, adds them and applies one masked softmax.

    Examples:
        >>> import torch
        >>> from implementations.transformer_xl import (
        ...     reference_relative_attention,
        ...     relative_attention,
        ... )
        >>> q, k = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 5, 4)
        >>> r, u = torch.randn(2, 5, 4), torch.zeros(2, 4)
        >>> torch.allclose(reference_relative_attention(q, k, k, r, u, u),
        ...                relative_attention(q, k, k, r, u, u), atol=1e-6)
        True
    """
    n_q, n_k = q.shape[-2], k.shape[-2]
    expected = n_k if causal else n_k + n_q - 1
    if r.shape[-2] != expected:
        raise ValueError(f"r must hold {expected} distances, got {r.shape[-2]}")
    # (a) + (c): content score with the global content bias u.
    content = torch.einsum("bhid,bhjd->bhij", q + u[:, None, :], k)  # [b, h, n_q, n_k]
    # (b) + (d): one score per (query, distance), then shifted to key columns.
    position = torch.einsum("bhid,hld->bhil", q + v_bias[:, None, :], r)  # [b, h, n_q, L]
    scores = (content + rel_shift(position, n_k)) / math.sqrt(q.shape[-1])
    allowed = causal_mask(n_q, n_k, device=q.device) if causal else None
    return torch.einsum("bhij,bhjd->bhid", masked_softmax(scores, allowed), v)


class RelativeSegmentAttention(nn.Module):
    """Transformer-XL's relative attention of a segment over ``[context; segment]``.

    The part shared by the memory mechanisms:
    [`TransformerXL`][implementations.transformer_xl.TransformerXL] (one FIFO memory) and
    [`CompressiveTransformer`][implementations.compressive_transformer.CompressiveTransformer] (a
    memory plus a compressed memory) subclass it and add their own ``forward`` and memory type.

    Args:
        dim: Model width $d$.
        heads: Number of heads $h$.
        causal: Mask the future within the segment.
        mem_len: $M$, how many past hidden states to keep (0 disables the memory).
    """

    def __init__(self, dim: int, heads: int, causal: bool = False, *, mem_len: int = 512) -> None:
        super().__init__()
        if mem_len < 0:
            raise ValueError(f"mem_len must be >= 0, got {mem_len}")
        self.dim, self.heads, self.causal, self.mem_len = dim, heads, causal, mem_len
        self.proj = HeadProjections(dim, heads)  # W_q, W_{k,E}, W_v and W_o
        dim_head = self.proj.dim_head
        # W_{k,R}: projects the (fixed) sinusoids to per-head position keys.
        self.to_r = nn.Linear(dim, heads * dim_head, bias=False)
        self.u = nn.Parameter(torch.randn(heads, dim_head) * 0.02)
        self.v = nn.Parameter(torch.randn(heads, dim_head) * 0.02)

    def attend(self, x: Tensor, context: Tensor) -> Tensor:
        """Queries from ``x`` ``[b, n, dim]`` over keys ``[context; x]`` -> ``[b, n, dim]``.

        ``context`` ``[b, m, dim]`` (the memories, oldest first) is treated as the ``m``
        positions right before the segment.
        """
        n, n_k = x.shape[1], context.shape[1] + x.shape[1]
        q, k, v = self.proj.qkv(x, torch.cat([context, x], dim=1))  # [b, h, n | n_k, d]
        # Distances n_k - 1, ..., 0 (causal) or further down to -(n - 1).
        lowest = 0 if self.causal else -(n - 1)
        distances = torch.arange(n_k - 1, lowest - 1, -1, device=x.device)  # [L]
        sinusoids = sinusoid_embedding(distances, self.dim).to(x.dtype)  # [L, dim]
        r = split_heads(self.to_r(sinusoids)[None], self.heads)[0]  # [h, L, d]
        o = relative_attention(q, k, v, r, self.u, self.v, causal=self.causal)
        return self.proj.out(o)

    def check_memory(self, memory: Tensor | None, x: Tensor) -> Tensor:
        """The detached memory ``[b, m, dim]`` (empty when None), validated against ``x``."""
        if memory is None:
            return x.new_zeros(x.shape[0], 0, x.shape[2])
        if memory.dim() != 3 or memory.shape[0] != x.shape[0] or memory.shape[2] != x.shape[2]:
            raise ValueError(
                f"memory must be [batch={x.shape[0]}, m, dim={x.shape[2]}], "
                f"got {tuple(memory.shape)}"
            )
        # SG(m): the memory is a constant for this segment.
        return memory.detach().to(x.dtype)


@register("transformer-xl", kind="memory", supports_causal=True)
class TransformerXL(RelativeSegmentAttention):
    """Multi-head attention over ``[memory; segment]`` with relative positions.

    ``forward(x, memory=None) -> (y, memory)``: ``memory`` is the previous call's
    returned memory (``[batch, <= mem_len, dim]``, the hidden states this layer saw
    last), or None for the first segment. The returned memory is detached, so no
    gradient flows from one segment into the previous one.

    Args:
        dim: Model width $d$.
        heads: Number of heads $h$.
        causal: Mask the future within the segment (the paper's language model).
        mem_len: $M$, how many past hidden states to keep (0 disables the memory).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("transformer-xl", dim=32, heads=4, causal=True,
        ...                               mem_len=16)
        >>> y, memory = layer(torch.randn(2, 10, 32))
        >>> y, memory = layer(torch.randn(2, 10, 32), memory=memory)
        >>> y.shape, memory.shape  # 20 states seen, the last 16 kept
        (torch.Size([2, 10, 32]), torch.Size([2, 16, 32]))
    """

    # Checked by implementations.build; other integers lie in [1, 2**20].
    option_ranges: ClassVar[dict[str, Range]] = {"mem_len": (0, 2**20)}

    def forward(self, x: Tensor, memory: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` ``[b, n, dim]``, ``memory`` ``[b, m, dim]`` or None -> ``(y, new memory)``."""
        memory = self.check_memory(memory, x)
        y = self.attend(x, memory)
        # Keep the last mem_len states of [m; h] for the next segment.
        seen = torch.cat([memory, x], dim=1)  # [b, m + n, dim]
        new_memory = seen[:, seen.shape[1] - min(self.mem_len, seen.shape[1]) :].detach()
        return y, new_memory
