"""Small shared helpers: heads, padding to block multiples, masks and a safe softmax.

Conventions used by every mechanism:

* activations are ``[batch, n, dim]``; per-head tensors are ``[batch, heads, n, dim_head]``;
* masks are **boolean with True = keep** (a real token, or an allowed query-key pair);
* blocked tensors are ``[..., n_blocks, block_size, d]`` (see
  [`chunk`][implementations._helpers.chunk]).

**Where the time goes**: in the block, band and bucket mechanisms the time went to materialised
score tensors and the copies around them.
[`softmax_attention`][implementations._helpers.softmax_attention] now runs torch's fused
``scaled_dot_product_attention`` over the gathered blocks, laying the leading dimensions out so that
a mask broadcasts cheaply (a ``[blocks, c, L]`` band mask that is the kernel's per-head mask runs
several times slower than one that is its per-batch mask);
[`reference_softmax_attention`][implementations._helpers.reference_softmax_attention] is the
readable form. [`masked_softmax`][implementations._helpers.masked_softmax] makes one copy of the
scores instead of three, with bitwise the same output (Nyströmformer, which uses it on ``[n, m]``
scores: 0.93x its previous forward time at n = 4096).
[`gather_positions`][implementations._helpers.gather_positions] copies whole rows by advanced
indexing (3x faster than an element-wise gather),
[`causal_linear_attention`][implementations._helpers.causal_linear_attention]'s decayed scan unbinds
its chunks once (indexing them in the loop cost a full-size zero-filled gradient buffer per chunk),
and [`heads_in_turn`][implementations._helpers.heads_in_turn] bounds the inference memory of
feature-map attention.

Examples:
    >>> from implementations._helpers import merge_heads, split_heads
    >>> import torch
    >>> x = torch.randn(2, 5, 8)
    >>> q = split_heads(x, heads=2)
    >>> q.shape
    torch.Size([2, 2, 5, 4])
    >>> torch.equal(merge_heads(q), x)
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

__all__ = [
    "HeadProjections",
    "causal_linear_attention",
    "causal_mask",
    "chunk",
    "default_mask",
    "expand_key_padding_mask",
    "gather_positions",
    "heads_in_turn",
    "key_padding_bias",
    "look_around",
    "masked_softmax",
    "merge_heads",
    "pad_to_multiple",
    "reference_softmax_attention",
    "sliding_window_blocks",
    "softmax_attention",
    "split_heads",
    "zero_padding",
]


def split_heads(x: Tensor, heads: int) -> Tensor:
    """``[b, n, h * d] -> [b, h, n, d]``.

    Examples:
        >>> import torch
        >>> from implementations._helpers import split_heads
        >>> split_heads(torch.zeros(2, 7, 12), heads=3).shape
        torch.Size([2, 3, 7, 4])
    """
    return rearrange(x, "b n (h d) -> b h n d", h=heads)


def merge_heads(x: Tensor) -> Tensor:
    """``[b, h, n, d] -> [b, n, h * d]``, the inverse of
    [`split_heads`][implementations._helpers.split_heads].

    Examples:
        >>> import torch
        >>> from implementations._helpers import merge_heads
        >>> merge_heads(torch.zeros(2, 3, 7, 4)).shape
        torch.Size([2, 7, 12])
    """
    return rearrange(x, "b h n d -> b n (h d)")


def pad_to_multiple(
    x: Tensor, multiple: int, dim: int = -2, value: float | bool = 0
) -> tuple[Tensor, int]:
    """Pad ``x`` at the end of ``dim`` so that its length is a multiple of ``multiple``.

    Works on boolean masks too (pad them with ``value=False`` so the padding is
    masked out).

    Returns:
        ``(padded, pad)``: the padded tensor and how many positions were appended;
        strip them afterwards with ``y.narrow(dim, 0, y.shape[dim] - pad)``.

    Examples:
        >>> import torch
        >>> from implementations._helpers import pad_to_multiple
        >>> y, pad = pad_to_multiple(torch.ones(1, 5, 2), 4)
        >>> y.shape, pad
        (torch.Size([1, 8, 2]), 3)
        >>> pad_to_multiple(torch.ones(1, 3, dtype=torch.bool), 2, dim=-1, value=False)[0]
        tensor([[ True,  True,  True, False]])
    """
    if multiple <= 0:
        raise ValueError(f"multiple must be positive, got {multiple}")
    dim = dim % x.dim()
    pad = -x.shape[dim] % multiple
    if pad == 0:
        return x, 0
    # F.pad lists (left, right) pairs starting from the last dimension.
    widths = [0, 0] * (x.dim() - 1 - dim) + [0, pad]
    return F.pad(x, widths, value=value), pad


def default_mask(mask: Tensor | None, x: Tensor) -> Tensor:
    """The key-padding mask ``[b, n]`` of ``x`` ``[b, n, d]``: ``mask``, or all True if None.

    Examples:
        >>> import torch
        >>> from implementations._helpers import default_mask
        >>> default_mask(None, torch.zeros(2, 3, 4))
        tensor([[True, True, True],
                [True, True, True]])
    """
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    if mask.shape != x.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool tensor of shape {tuple(x.shape[:2])}, "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    return mask


def zero_padding(x: Tensor, mask: Tensor | None) -> Tensor:
    """Zero the padded positions of ``x`` ``[b, n, d]`` (``mask`` ``[b, n]``, True = real).

    Use it before any op that mixes positions without a softmax (convolutions,
    pooling, sums), so padded values cannot leak into real positions.

    Examples:
        >>> import torch
        >>> from implementations._helpers import zero_padding
        >>> zero_padding(torch.ones(1, 3, 1), torch.tensor([[True, False, True]])).flatten()
        tensor([1., 0., 1.])
    """
    if mask is None:
        return x
    return x.masked_fill(~mask.unsqueeze(-1), 0)


def expand_key_padding_mask(mask: Tensor) -> Tensor:
    """Bool key mask ``[b, nk]`` -> ``[b, 1, 1, nk]``, broadcastable to ``[b, h, nq, nk]``.

    Examples:
        >>> import torch
        >>> from implementations._helpers import expand_key_padding_mask
        >>> expand_key_padding_mask(torch.ones(2, 5, dtype=torch.bool)).shape
        torch.Size([2, 1, 1, 5])
    """
    return mask[:, None, None, :]


def key_padding_bias(mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Additive bias ``[b, 1, 1, nk]``: 0 for real keys, the dtype's most negative value else.

    A finite value (not ``-inf``) keeps fully masked rows NaN-free; prefer
    [`masked_softmax`][implementations._helpers.masked_softmax], which also zeroes such rows.

    Examples:
        >>> import torch
        >>> from implementations._helpers import key_padding_bias
        >>> key_padding_bias(torch.tensor([[True, False]]))[0, 0, 0, 0].item()
        0.0
    """
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    bias = bias.masked_fill(~mask, torch.finfo(dtype).min)
    return expand_key_padding_mask(bias)


def causal_mask(nq: int, nk: int, device: torch.device | str | None = None) -> Tensor:
    """Bool ``[nq, nk]``, True where query ``i`` may see key ``j``.

    Queries are aligned with the *last* ``nq`` keys (keys ``0 .. nk - nq - 1`` are a
    past every query sees, e.g. a memory), so ``j <= i + (nk - nq)``.

    Examples:
        >>> from implementations._helpers import causal_mask
        >>> causal_mask(2, 3).int()
        tensor([[1, 1, 0],
                [1, 1, 1]], dtype=torch.int32)
    """
    i = torch.arange(nq, device=device)[:, None]
    j = torch.arange(nk, device=device)[None, :]
    return j <= i + (nk - nq)


def chunk(x: Tensor, size: int, dim: int = -2) -> Tensor:
    """Split ``dim`` into blocks: ``[..., n, d] -> [..., n // size, size, d]`` (for ``dim=-2``).

    ``n`` must be a multiple of ``size`` (see
    [`pad_to_multiple`][implementations._helpers.pad_to_multiple]). The inverse is
    ``x.flatten(dim, dim + 1)``.

    Examples:
        >>> import torch
        >>> from implementations._helpers import chunk
        >>> chunk(torch.zeros(2, 3, 8, 4), 2).shape
        torch.Size([2, 3, 4, 2, 4])
        >>> chunk(torch.zeros(2, 6, dtype=torch.bool), 3, dim=-1).shape
        torch.Size([2, 2, 3])
    """
    dim = dim % x.dim()
    if x.shape[dim] % size:
        raise ValueError(f"length {x.shape[dim]} is not a multiple of the block size {size}")
    return x.unflatten(dim, (x.shape[dim] // size, size))


def look_around(blocks: Tensor, before: int = 1, after: int = 0, value: float | bool = 0) -> Tensor:
    """Concatenate each block with its neighbours, for block-local attention.

    ``blocks`` is ``[..., n_blocks, size, d]`` (block axis at -3), or a blocked mask
    ``[..., n_blocks, size]`` when it is boolean. Block ``i`` of the result holds blocks
    ``i - before .. i + after`` in order; missing neighbours at the edges are filled
    with ``value`` (use ``False`` for masks, so they are never attended).

    Returns:
        ``[..., n_blocks, (before + 1 + after) * size, d]`` (or ``[..., n_blocks, w * size]``).

    Examples:
        >>> import torch
        >>> from implementations._helpers import chunk, look_around
        >>> b = chunk(torch.arange(6.0)[None, :, None], 2)  # blocks [0 1] [2 3] [4 5]
        >>> look_around(b, before=1, after=0)[0, :, :, 0]
        tensor([[0., 0., 0., 1.],
                [0., 1., 2., 3.],
                [2., 3., 4., 5.]])
    """
    is_mask = blocks.dtype == torch.bool
    block_dim = -2 if is_mask else -3
    n_blocks = blocks.shape[block_dim]
    widths = [0, 0] * (-block_dim - 1) + [before, after]
    padded = F.pad(blocks, widths, value=value)
    shifted = [padded.narrow(block_dim, s, n_blocks) for s in range(before + 1 + after)]
    return torch.cat(shifted, dim=block_dim + 1)


def masked_softmax(scores: Tensor, mask: Tensor | None = None, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` ignoring positions where ``mask`` is False.

    Computed in float32 (returned in the scores' dtype). Rows where every position is
    masked come out as all zeros, not NaN, and pass no gradient.

    Examples:
        >>> import torch
        >>> from implementations._helpers import masked_softmax
        >>> s = torch.zeros(2, 2)
        >>> masked_softmax(s, torch.tensor([[True, True], [False, False]]))
        tensor([[0.5000, 0.5000],
                [0.0000, 0.0000]])
    """
    scores32 = scores.float()
    if mask is None:
        return scores32.softmax(dim).to(scores.dtype)
    # One copy of the scores: a masked entry becomes the most negative float, whose
    # exponential underflows to exactly 0 beside any real entry (so no second masking).
    probs = torch.where(mask, scores32, torch.finfo(torch.float32).min).softmax(dim)
    has_key = mask.any(dim, keepdim=True)
    if mask.is_meta or not bool(has_key.all()):  # meta tensors hold no values to test
        # A fully masked row softmaxes to uniform over the masked entries; zero it.
        probs = probs * has_key
    return probs.to(scores.dtype)


def reference_softmax_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    scale: float | None = None,
    bias: Tensor | None = None,
) -> Tensor:
    r"""Exact attention $\mathrm{softmax}(QK^\top / \sqrt{d} + B)\,V$, scores materialised.

    The readable form of [`softmax_attention`][implementations._helpers.softmax_attention] (same
    arguments, same result up to float32 round-off): it builds the ``[..., nq, nk]`` score tensor.

    Examples:
        >>> import torch
        >>> from implementations._helpers import reference_softmax_attention, softmax_attention
        >>> q = torch.randn(2, 3, 4, 5, 8)  # e.g. [b, h, blocks, block, d]
        >>> torch.allclose(reference_softmax_attention(q, q, q), softmax_attention(q, q, q),
        ...                atol=1e-6)
        True
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = torch.einsum("...id,...jd->...ij", q, k) * scale  # [..., nq, nk]
    if bias is not None:
        scores = scores + bias
    return torch.einsum("...ij,...jd->...id", masked_softmax(scores, mask).to(v.dtype), v)


def softmax_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    scale: float | None = None,
    bias: Tensor | None = None,
    causal: bool = False,
) -> Tensor:
    r"""Exact attention $\mathrm{softmax}(QK^\top / \sqrt{d} + B)\,V$ on any leading shape.

    Runs `torch.nn.functional.scaled_dot_product_attention` (fused kernels: the
    score tensor is never stored, $O(n_q d)$ extra memory), with the leading dimensions
    flattened so that the mask broadcasts cheaply: dimensions along which ``mask`` /
    ``bias`` vary become the kernel's batch, those they broadcast over its heads
    (a mask that broadcasts over the kernel's batch but varies across its heads is
    several times slower).
    [`reference_softmax_attention`][implementations._helpers.reference_softmax_attention] is the
    same equation with the scores materialised; it is also used when ``bias`` needs a gradient (the
    fused CPU kernel cannot differentiate an additive mask).

    Args:
        q: ``[..., nq, d]``.
        k: ``[..., nk, d]``.
        v: ``[..., nk, dv]``; the leading dimensions of ``q``, ``k``, ``v`` broadcast.
        mask: bool, broadcastable to ``[..., nq, nk]``; True = may attend. A query
            with no allowed key gets a zero output (and passes no gradient).
        scale: defaults to $1 / \sqrt{d}$.
        bias: float, broadcastable to ``[..., nq, nk]``, added to the scaled scores
            (e.g. log-weights of mixed keys).
        causal: Query ``i`` sees keys ``j <= i`` (aligned at the *first* key, as the
            kernel's ``is_causal``; the kernel skips the masked half). Not combinable
            with ``mask`` or ``bias``.

    Returns:
        ``[..., nq, dv]``.

    Examples:
        >>> import torch
        >>> from implementations._helpers import reference_softmax_attention, softmax_attention
        >>> q = torch.randn(2, 3, 4, 5, 8)  # e.g. [b, h, blocks, block, d]
        >>> softmax_attention(q, q, q).shape
        torch.Size([2, 3, 4, 5, 8])
        >>> band = torch.ones(5, 5, dtype=torch.bool).tril()  # [nq, nk], same in every block
        >>> torch.allclose(softmax_attention(q, q, q, band),
        ...                reference_softmax_attention(q, q, q, band), atol=1e-6)
        True
    """
    if causal and (mask is not None or bias is not None):
        raise ValueError("causal=True cannot be combined with mask or bias")
    if bias is not None and bias.requires_grad and torch.is_grad_enabled():
        # The fused CPU kernel has no gradient for an additive mask; torch would fall back
        # to its slower math path, so take the readable form directly.
        return reference_softmax_attention(q, k, v, mask, scale, bias)
    nq = q.shape[-2]
    has_key = None
    attn: Tensor | None = None
    if mask is not None:
        has_key = mask.any(dim=-1, keepdim=True)  # [..., nq | 1, 1]
        # Meta tensors (FLOP and memory counting) hold no values to test: take the
        # general path, which is exact either way.
        if not mask.is_meta and bool(has_key.all()):
            has_key = None
        else:
            # Let a query with no key see every key (finite, no NaN); zeroed at the end.
            mask = mask | ~has_key
        attn = mask
    if bias is not None:
        attn = bias.to(q.dtype)
        if mask is not None:
            attn = attn.masked_fill(~mask, -math.inf)
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    if attn is not None:
        lead = torch.broadcast_shapes(lead, attn.shape[:-2])
        attn = attn.reshape((1,) * (len(lead) + 2 - attn.dim()) + attn.shape)
    # The kernel's batch: lead dims the mask varies along; its heads: the others.
    varies = [i for i in range(len(lead)) if attn is not None and attn.shape[i] > 1]
    shared = [i for i in range(len(lead)) if i not in varies]
    order = varies + shared
    n_var = math.prod(lead[i] for i in varies)

    def to_kernel(t: Tensor) -> Tensor:  # [..., n, d] -> [n_var, n_shared, n, d]
        t = t.expand(*lead, *t.shape[-2:]).permute(*order, len(lead), len(lead) + 1)
        t = t.reshape(n_var, -1, *t.shape[-2:])
        # The fused kernels need unit stride along d (else torch falls back to the math path).
        return t if t.stride(-1) == 1 else t.contiguous()

    if attn is not None:
        attn = attn.expand(*(lead[i] if i in varies else 1 for i in range(len(lead))), -1, -1)
        attn = attn.permute(*order, len(lead), len(lead) + 1).reshape(n_var, 1, *attn.shape[-2:])
    out = F.scaled_dot_product_attention(
        to_kernel(q), to_kernel(k), to_kernel(v), attn_mask=attn, scale=scale, is_causal=causal
    )  # [n_var, n_shared, nq, dv]
    out = out.reshape(*(lead[i] for i in order), nq, out.shape[-1])
    out = out.permute(*(order.index(i) for i in range(len(lead))), len(lead), len(lead) + 1)
    if has_key is not None:
        out = out.masked_fill(~has_key, 0)
    return out


class HeadProjections(nn.Module):
    """The standard multi-head projections $W_Q, W_K, W_V$ (no bias) and $W_O$.

    Attributes ``to_q``, ``to_k``, ``to_v`` (``dim -> heads * dim_head``) and ``to_out``
    (``heads * dim_head -> dim``) can be used individually (e.g. to project keys
    from a compressed sequence), or through
    [`qkv`][implementations._helpers.HeadProjections.qkv] and
    [`out`][implementations._helpers.HeadProjections.out].

    Args:
        dim: Model width.
        heads: Number of heads.
        dim_head: Width per head; defaults to ``dim // heads``.

    Examples:
        >>> import torch
        >>> from implementations._helpers import HeadProjections
        >>> proj = HeadProjections(dim=16, heads=4)
        >>> q, k, v = proj.qkv(torch.randn(2, 5, 16))
        >>> q.shape
        torch.Size([2, 4, 5, 4])
        >>> proj.out(v).shape
        torch.Size([2, 5, 16])
    """

    def __init__(self, dim: int, heads: int, dim_head: int | None = None) -> None:
        super().__init__()
        if dim_head is None:
            if dim % heads:
                raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
            dim_head = dim // heads
        self.heads = heads
        self.dim_head = dim_head
        inner = heads * dim_head
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def qkv(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Queries from ``x``; keys, values from ``context`` (default ``x``); ``[b, h, n, d]``."""
        context = x if context is None else context
        q = split_heads(self.to_q(x), self.heads)  # [b, h, nq, d]
        k = split_heads(self.to_k(context), self.heads)  # [b, h, nk, d]
        v = split_heads(self.to_v(context), self.heads)  # [b, h, nk, d]
        return q, k, v

    def out(self, o: Tensor) -> Tensor:
        """Merge heads ``[b, h, n, d] -> [b, n, h * d]`` and apply $W_O$ -> ``[b, n, dim]``."""
        return self.to_out(merge_heads(o))


class WindowBlocks(NamedTuple):
    """Banded (sliding-window) attention laid out as blocks; see
    [`sliding_window_blocks`][implementations._helpers.sliding_window_blocks].

    Attributes:
        q: Queries ``[..., n_blocks, c, d]``.
        k: Each block's candidate keys ``[..., n_blocks, L, d]``.
        v: Each block's candidate values ``[..., n_blocks, L, dv]``.
        allowed: Bool, broadcastable to ``[..., n_blocks, c, L]``: inside the band and a
            real key.
        offset: ``[c, L]`` key position minus query position (the same in every block),
            e.g. for relative-position terms.
    """

    q: Tensor
    k: Tensor
    v: Tensor
    allowed: Tensor
    offset: Tensor


def sliding_window_blocks(
    q: Tensor, k: Tensor, v: Tensor, before: int, after: int, mask: Tensor | None = None
) -> WindowBlocks:
    r"""Lay out banded attention (query ``i`` sees keys ``i - before .. i + after``) as blocks.

    The sequence is cut into blocks of ``c = max(before, after)`` positions; block ``t``
    gathers keys from its neighbour blocks with
    [`look_around`][implementations._helpers.look_around], so the score tensor is
    ``[..., n, L]`` with ``L <= 3c``: $O(n \cdot w)$ time and memory. A window close to ``n``
    is laid out as one block of all ``n`` positions instead, when that scores fewer keys
    than the blocks would (blocks of ``n - 1`` pad to ``2(n - 1)`` positions). Callers may
    append further key columns (e.g. global tokens) before the softmax. Merge the output
    blocks back with ``o.flatten(-3, -2)[..., :n, :]``.

    Args:
        q: ``[..., n, d]``.
        k: ``[..., n, d]``.
        v: ``[..., n, dv]``.
        before: How many positions to the left a query sees (>= 0).
        after: How many positions to the right a query sees (>= 0; 0 for causal).
        mask: Optional bool key-padding mask broadcastable to ``q.shape[:-1]``
            (e.g. ``[b, 1, n]`` for ``[b, h, n, d]`` inputs); True = real key.

    Examples:
        >>> import torch
        >>> from implementations._helpers import sliding_window_blocks, softmax_attention
        >>> x = torch.randn(1, 10, 4)
        >>> blocks = sliding_window_blocks(x, x, x, before=2, after=2)
        >>> blocks.q.shape, blocks.k.shape, blocks.allowed.shape
        (torch.Size([1, 5, 2, 4]), torch.Size([1, 5, 6, 4]), torch.Size([5, 2, 6]))
        >>> o = softmax_attention(blocks.q, blocks.k, blocks.v, blocks.allowed)
        >>> o.flatten(-3, -2)[..., :10, :].shape
        torch.Size([1, 10, 4])
    """
    if before < 0 or after < 0:
        raise ValueError(f"before and after must be >= 0, got {before} and {after}")
    n = q.shape[-2]
    c = min(max(before, after, 1), n)
    n_blocks = -(-n // c)
    span = (min(-(-before // c), n_blocks - 1) + 1 + min(-(-after // c), n_blocks - 1)) * c
    if n * n <= n_blocks * c * span:
        # A window close to the sequence's length (e.g. c = n - 1: padded to 2(n - 1)
        # positions, each scoring 2(n - 1) keys) scores fewer keys as one block of all n.
        c = n
    if mask is None:
        mask = torch.ones(q.shape[-2:-1], dtype=torch.bool, device=q.device)
    q, _ = pad_to_multiple(q, c)
    k, _ = pad_to_multiple(k, c)
    v, _ = pad_to_multiple(v, c)
    mask, _ = pad_to_multiple(mask, c, dim=-1, value=False)  # padding is never a key
    n_blocks = q.shape[-2] // c
    nb_before = min(-(-before // c), n_blocks - 1)
    nb_after = min(-(-after // c), n_blocks - 1)

    # Missing neighbours at the edges come back masked (value=False).
    keys = look_around(chunk(k, c), nb_before, nb_after)  # [..., nb, L, d]
    values = look_around(chunk(v, c), nb_before, nb_after)  # [..., nb, L, dv]
    key_ok = look_around(chunk(mask, c, dim=-1), nb_before, nb_after, value=False)  # [..., nb, L]

    length = keys.shape[-2]
    offset = (
        torch.arange(length, device=q.device)[None, :]
        - nb_before * c
        - torch.arange(c, device=q.device)[:, None]
    )  # [c, L]: key position - query position
    band = (offset >= -before) & (offset <= after)  # [c, L]
    allowed = band & key_ok.unsqueeze(-2)  # [..., nb, c, L]
    return WindowBlocks(chunk(q, c), keys, values, allowed, offset)


def causal_linear_attention(
    q: Tensor, k: Tensor, v: Tensor, log_decay: Tensor | None = None, chunk_size: int = 64
) -> Tensor:
    r"""Causal *unnormalised* linear attention by chunked prefix sums, in $O(n)$ memory.

    Computes, for every position $i$,

    $$
    o_i = \sum_{j \le i} \Big(\prod_{t = j + 1}^{i} a_t\Big)\, (q_i \cdot k_j)\, v_j ,
    \qquad \log a_t = \text{log\_decay}_t \le 0
    $$

    ($a_t = 1$ when ``log_decay`` is None: the plain prefix sum $q_i^\top \sum_{j \le i}
    k_j v_j^\top$ of kernelised attention; a decay gives gated / running-max forms).
    Append a column of ones to ``v`` to get the normaliser $q_i \cdot \sum_{j \le i} k_j$
    in the same pass.

    The sequence is cut into chunks of ``chunk_size``: inside a chunk an explicit masked
    ``[c, c]`` product, across chunks a running ``[dk, dv]`` state (the prefix sum), so
    neither an ``[n, n]`` matrix nor an ``[n, dk, dv]`` tensor of prefix sums is built.
    Every exponent is a sum of ``log_decay`` values, hence $\le 0$: no overflow.
    Computed in float32, returned in ``v``'s dtype.

    Args:
        q: ``[..., n, dk]``.
        k: ``[..., n, dk]``.
        v: ``[..., n, dv]``.
        log_decay: ``[..., n]``, $\log a_t \le 0$, or None.
        chunk_size: Positions per chunk (clipped to ``n``).

    Returns:
        ``[..., n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations._helpers import causal_linear_attention
        >>> q, k, v = torch.rand(2, 7, 3), torch.rand(2, 7, 3), torch.randn(2, 7, 4)
        >>> oracle = (q @ k.transpose(-1, -2)).tril() @ v
        >>> torch.allclose(causal_linear_attention(q, k, v, chunk_size=3), oracle, atol=1e-5)
        True
    """
    n, dtype = q.shape[-2], v.dtype
    size = max(1, min(chunk_size, n))
    q, k, v = (pad_to_multiple(t.float(), size)[0] for t in (q, k, v))
    q, k, v = chunk(q, size), chunk(k, size), chunk(v, size)  # [..., n_chunks, c, d]
    within = causal_mask(size, size, device=q.device)  # [c, c]
    scores = q @ k.transpose(-1, -2)  # [..., n_chunks, c, c]

    if log_decay is None:
        intra = scores.masked_fill(~within, 0) @ v  # [..., n_chunks, c, dv]
        kv = k.transpose(-1, -2) @ v  # [..., n_chunks, dk, dv]: each chunk's sum k_j v_j^T
        # The state a chunk starts from is the sum over the chunks before it.
        before = F.pad(kv.narrow(-3, 0, kv.shape[-3] - 1), (0, 0, 0, 0, 1, 0))
        state = before.cumsum(-3)  # [..., n_chunks, dk, dv]
        inter = q @ state  # [..., n_chunks, c, dv]
    else:
        log_decay = pad_to_multiple(log_decay.float(), size, dim=-1)[0]
        # Log decay accumulated since the chunk's start.
        cum = chunk(log_decay, size, dim=-1).cumsum(-1)  # [..., n_chunks, c]
        # Decay from key j to query i of the same chunk: exp(cum_i - cum_j), j <= i.
        rel = (cum[..., :, None] - cum[..., None, :]).masked_fill(~within, -math.inf)
        intra = (scores * rel.exp()) @ v  # [..., n_chunks, c, dv]
        # Each chunk's keys decayed to the chunk's end, and the whole chunk's decay.
        to_end = (cum[..., -1:] - cum).exp()  # [..., n_chunks, c]
        kv = (k * to_end[..., None]).transpose(-1, -2) @ v  # [..., n_chunks, dk, dv]
        across = cum[..., -1].exp()[..., None, None]  # [..., n_chunks, 1, 1]
        # A scan over chunks: state_{c+1} = a_c state_c + kv_c. Unbinding once (not
        # indexing chunk c in the loop) keeps the backward at one gradient buffer
        # instead of one full-size zero-filled buffer per chunk.
        states, state = [], torch.zeros_like(kv[..., 0, :, :])
        for a_c, kv_c in zip(across.unbind(-3), kv.unbind(-3), strict=True):
            states.append(state)
            state = a_c * state + kv_c
        state = torch.stack(states, dim=-3)  # [..., n_chunks, dk, dv]: state at chunk start
        inter = (q * cum.exp()[..., None]) @ state  # [..., n_chunks, c, dv]

    out = (intra + inter).flatten(-3, -2)  # [..., n_padded, dv]
    return out[..., :n, :].to(dtype)


def heads_in_turn(
    core: Callable[..., Tensor],
    per_head: dict[str, tuple[Tensor | None, int]],
    **shared: Any,
) -> Tensor | None:
    """Without autograd, run ``core`` one head at a time; with it (or one head), return None.

    Heads are independent, so ``core(**{name: t narrowed to head i}, **shared)`` for every
    head ``i``, concatenated along dim 1, is the same computation. Kernelised attention
    builds ``[b, h, n, m]`` feature maps with ``m`` several times the head width; one head
    at a time, only ``[b, 1, n, m]`` of them is alive, which bounds the inference peak
    memory. Under autograd every head's tensors are kept for the backward anyway, so the
    caller runs its vectorised form (signalled by None).

    Args:
        core: The attention function; called with ``per_head`` narrowed and ``shared``.
        per_head: ``name -> (tensor or None, its head dimension)``; the first entry's
            size there is the number of heads.
        **shared: Arguments passed unchanged.

    Returns:
        ``[b, h, n, dv]``, or None when autograd is on or there is a single head.

    Examples:
        >>> import torch
        >>> from implementations._helpers import heads_in_turn, softmax_attention
        >>> q = torch.randn(2, 3, 5, 4)
        >>> with torch.no_grad():
        ...     y = heads_in_turn(softmax_attention, {"q": (q, 1), "k": (q, 1), "v": (q, 1)})
        >>> torch.allclose(y, softmax_attention(q, q, q), atol=1e-6)
        True
    """
    first, dim = next(iter(per_head.values()))
    assert first is not None
    heads = first.shape[dim]
    if torch.is_grad_enabled() or heads == 1:
        return None
    outputs = []
    for i in range(heads):
        args = {name: None if t is None else t.narrow(d, i, 1) for name, (t, d) in per_head.items()}
        outputs.append(core(**args, **shared))
    return torch.cat(outputs, dim=1)


def gather_positions(x: Tensor, index: Tensor) -> Tensor:
    """Pick rows of ``x`` ``[..., n, d]`` at positions ``index`` ``[..., k]`` -> ``[..., k, d]``.

    The leading dimensions of ``x`` and ``index`` broadcast (e.g. ``x`` ``[b, h, 1, n, d]``
    with ``index`` ``[b, h, r, k]`` for ``r`` hashing rounds). The inverse of a
    permutation ``perm`` is ``perm.argsort(-1)``, so sorted rows are put back with
    ``gather_positions(sorted_rows, perm.argsort(-1))``.

    Examples:
        >>> import torch
        >>> from implementations._helpers import gather_positions
        >>> x = torch.arange(6.0).view(1, 3, 2)
        >>> gather_positions(x, torch.tensor([[2, 0]]))
        tensor([[[4., 5.],
                 [0., 1.]]])
    """
    lead = torch.broadcast_shapes(x.shape[:-2], index.shape[:-1])
    x = x.reshape((1,) * (len(lead) + 2 - x.dim()) + x.shape)  # as many dimensions as lead
    # Advanced indexing copies whole rows (about 3x faster than an element-wise gather).
    # A dimension along which x broadcasts is indexed at 0, not expanded: the backward then
    # accumulates into x's own shape. Expanding it first would make the backward zero-fill
    # and sum a gradient of the expanded shape (for routing at n = 4096 with 64 clusters,
    # three 0.5 GB tensors, 60% of a training step).
    grids = [
        torch.arange(size if x.shape[i] > 1 else 1, device=x.device).view(
            (1,) * i + (-1,) + (1,) * (len(lead) - i)
        )
        for i, size in enumerate(lead)
    ]  # one [1, .., size or 1, .., 1, 1] index per leading dimension
    return x[(*grids, index)]  # [*lead, k, d]
