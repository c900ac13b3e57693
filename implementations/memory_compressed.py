r"""Memory-compressed attention and local attention (the T-DMCA decoder's two layer types).

Paper: *Generating Wikipedia by Summarizing Long Sequences*, Liu, Saleh, Pot, Goodrich,
Sepassi, Kaiser and Shazeer, 2018 (arXiv:1801.10198).

The paper's decoder-only Transformer with memory-compressed attention (T-DMCA) handles
inputs of thousands of tokens with two kinds of self-attention layer:

**Memory-compressed attention.** After projecting the tokens to queries, keys and values,
a strided convolution (kernel and stride $s$, the compression factor, $s = 3$ in the
paper) shrinks the keys and values from $n$ to $m = n / s$ positions; the queries keep
all $n$ positions:

$$
\tilde K = \mathrm{Conv}_{s}(K), \quad \tilde V = \mathrm{Conv}_{s}(V) \in \mathbb{R}^{m \times d},
$$

$$
\mathrm{Attention}(Q, \tilde K, \tilde V)
= \mathrm{softmax}\!\left(\frac{Q \tilde K^\top}{\sqrt d}\right)\tilde V,
$$

so the cost drops from $O(n^2)$ to $O(n^2 / s)$ while every query still sees a summary
of the whole sequence. With ``causal=True`` a query $i$ sees compressed slot $j$ (which
summarises tokens $js \dots js + s - 1$) only if the whole slot is in its past,
$js + s - 1 \le i$; the first $s - 1$ positions therefore see no slot and output zeros
(their residual connection carries them).

**Local attention.** The sequence is split into blocks of $b$ tokens (256 in the paper)
and each block attends only within itself (causally within the block in the decoder):
$O(n b)$.

The paper interleaves the two layer types (``LMLML``). This module is one layer and
``mode`` picks its type; ``"local+compressed"`` additionally lets every query attend,
in one softmax, to both its local block and the compressed memory.

Hyper-parameters:
    mode: ``"compressed"`` (memory-compressed attention), ``"local"`` (local attention)
        or ``"local+compressed"`` (both key sets in one softmax).
    compression: $s$, the kernel size and stride of the key/value convolutions (3).
    block_size: $b$, the local attention block length (256).

**Where the time goes**: the score products dominate. Each query block attends to its key set in
the fused kernel ([`softmax_attention`][implementations._helpers.softmax_attention]) instead of a
concatenated score list; without padding the causal memory-only layer needs no mask
at all ([`causal_memory_attention`][implementations.memory_compressed.causal_memory_attention], $s$
causal kernel calls over the residue classes of the queries), so memory is $O(n)$ beyond the
projections. Measured (CPU, one thread, float32, dim 512, 8 heads): at n = 4096, 0.7x dense forward
(2.3x before); at n = 8192 about 0.5x (bidirectional) and 0.7x (causal), forward and
forward+backward; [`reference_attention`][implementations.memory_compressed.reference_attention] is
the readable form.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import (
    HeadProjections,
    chunk,
    default_mask,
    masked_softmax,
    pad_to_multiple,
    softmax_attention,
    split_heads,
    zero_padding,
)
from implementations._registry import register

__all__ = ["MemoryCompressed", "attention", "causal_memory_attention", "reference_attention"]

MODES = ("compressed", "local", "local+compressed")


def causal_memory_attention(q: Tensor, k_mem: Tensor, v_mem: Tensor, compression: int) -> Tensor:
    r"""Causal memory-compressed attention without padding, by residue classes of $s$.

    Query $i = t s + r$ ($0 \le r < s$) sees slot $j$ iff $(j + 1) s - 1 \le i$, i.e.
    $j \le t$ when $r = s - 1$ and $j \le t - 1$ otherwise. So the queries of one residue
    $r$, indexed by $t$, see a causal (lower-triangular) prefix of the slots: $s$ calls
    of the fused kernel with ``is_causal=True`` (keys shifted by one for $r < s - 1$),
    which skips the invisible half and never builds an ``[n, m]`` mask ($O(n)$ memory).
    Queries $0 \dots s - 2$ see no slot and get zeros.

    Args:
        q: ``[b, h, n, d]``.
        k_mem: ``[b, h, m, d]`` with ``m = ceil(n / s)``; every slot real.
        v_mem: ``[b, h, m, dv]``.
        compression: $s$.

    Returns:
        ``[b, h, n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations._helpers import softmax_attention
        >>> from implementations.memory_compressed import causal_memory_attention
        >>> q, k = torch.randn(1, 2, 10, 8), torch.randn(1, 2, 4, 8)
        >>> slot_end = (torch.arange(4) + 1) * 3 - 1
        >>> seen = slot_end <= torch.arange(10)[:, None]  # [n, m]
        >>> torch.allclose(causal_memory_attention(q, k, k, 3),
        ...                softmax_attention(q, k, k, seen), atol=1e-6)
        True
    """
    s, n = compression, q.shape[-2]
    q_slots = chunk(pad_to_multiple(q, s)[0], s)  # [b, h, m, s, d]: query t * s + r
    m = q_slots.shape[2]
    if k_mem.shape[-2] != m:
        raise ValueError(f"expected {m} memory slots for {n} queries, got {k_mem.shape[-2]}")
    outputs = []
    for r in range(s):
        q_r = q_slots[:, :, :, r]  # [b, h, m, d]: queries t * s + r
        if r == s - 1:  # sees slots j <= t
            o_r = softmax_attention(q_r, k_mem, v_mem, causal=True)
        elif m == 1:  # sees nothing
            o_r = q_r.new_zeros(*q_r.shape[:-1], v_mem.shape[-1])
        else:  # sees slots j <= t - 1; query 0 sees none
            o_r = softmax_attention(
                q_r[:, :, 1:], k_mem[:, :, :-1], v_mem[:, :, :-1], causal=True
            )  # [b, h, m - 1, dv]
            o_r = F.pad(o_r, (0, 0, 1, 0))  # [b, h, m, dv]
        outputs.append(o_r)
    return torch.stack(outputs, dim=3).flatten(2, 3)[:, :, :n]  # [b, h, n, dv]


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    causal: bool = False,
    *,
    block_size: int | None = None,
    memory: tuple[Tensor, Tensor, Tensor | None] | None = None,
    compression: int = 3,
) -> Tensor:
    r"""Each query attends, in one softmax, to its local block and/or a compressed memory.

    Computed by the fused kernel of
    [`softmax_attention`][implementations._helpers.softmax_attention] over each query block's key
    set ``[local block; memory]``;
    [`reference_attention`][implementations.memory_compressed.reference_attention] is the same
    softmax with the scores materialised.

    Args:
        q, k, v: ``[b, h, n, d]``; ``k`` and ``v`` are the local keys and values (used
            only when ``block_size`` is given).
        mask: Bool key-padding mask ``[b, n]`` (True = real token), or None.
        causal: Query $i$ sees local key $j \le i$ and memory slot $j$ with
            $(j + 1) s - 1 \le i$.
        block_size: Local block length $b$; None for no local part.
        memory: ``(k_mem, v_mem, mask_mem)``, the compressed keys and values
            ``[b, h, m, d]`` and their mask ``[b, m]`` (None: every slot is real);
            slot $j$ summarises tokens $js \dots js + s - 1$. None for no memory part.
        compression: $s$ (only used for the causal visibility of memory slots).

    Returns:
        ``[b, h, n, d]``.

    Examples:
        >>> import torch
        >>> from implementations.memory_compressed import attention
        >>> q = torch.randn(2, 4, 10, 8)
        >>> attention(q, q, q, block_size=4, causal=True).shape
        torch.Size([2, 4, 10, 8])
    """
    if block_size is None and memory is None:
        raise ValueError("need a local block_size, a compressed memory, or both")
    b, n = q.shape[0], q.shape[-2]
    query_pos = torch.arange(n, device=q.device)  # [n]
    if block_size is None:
        # Memory only: every query sees the same m keys, one [b, h, n, m] attention.
        assert memory is not None
        k_mem, v_mem, mask_mem = memory
        if causal and mask_mem is None:
            return causal_memory_attention(q, k_mem, v_mem, compression)
        visible = None if mask_mem is None else mask_mem[:, None, None, :]  # [b, 1, 1, m]
        if causal:
            slot_end = (torch.arange(k_mem.shape[-2], device=q.device) + 1) * compression - 1
            seen = slot_end <= query_pos[:, None]  # [n, m]
            visible = seen if visible is None else visible & seen
        return softmax_attention(q, k_mem, v_mem, visible)  # [b, h, n, d]

    size = block_size
    if mask is None and n % size:
        mask = torch.ones(b, n, dtype=torch.bool, device=q.device)  # the alignment padding
    q_blocks = chunk(pad_to_multiple(q, size)[0], size)  # [b, h, nb, size, d]
    keys = [chunk(pad_to_multiple(k, size)[0], size)]  # [b, h, nb, size, d]
    values = [chunk(pad_to_multiple(v, size)[0], size)]
    n_blocks = q_blocks.shape[2]
    grid = (b, 1, n_blocks, size)  # [b, 1, nb, size (query)]: a mask's leading shape
    local = None
    if mask is not None:
        mask_blocks = chunk(pad_to_multiple(mask, size, -1, False)[0], size, -1)  # [b, nb, size]
        local = mask_blocks[:, None, :, None, :]  # [b, 1, nb, 1, size]
    if causal:
        tril = torch.ones(size, size, dtype=torch.bool, device=q.device).tril()
        local = tril if local is None else local & tril
    if memory is None:
        out = softmax_attention(q_blocks, keys[0], values[0], local)  # [b, h, nb, size, d]
        return out.flatten(2, 3)[:, :, :n]

    k_mem, v_mem, mask_mem = memory
    m = k_mem.shape[-2]
    # Each block's keys: [its local block; the m memory slots] -> [b, h, nb, size + m, d].
    keys.append(k_mem[:, :, None].expand(-1, -1, n_blocks, -1, -1))
    values.append(v_mem[:, :, None].expand(-1, -1, n_blocks, -1, -1))
    visible = None if mask_mem is None else mask_mem[:, None, None, None, :]  # [b, 1, 1, 1, m]
    if causal:
        slot_end = (torch.arange(m, device=q.device) + 1) * compression - 1
        block_pos = torch.arange(n_blocks * size, device=q.device).view(n_blocks, size)
        seen = slot_end <= block_pos[..., None]  # [nb, size, m]
        visible = seen if visible is None else visible & seen
    allowed = None
    if local is not None or visible is not None:
        ones = torch.ones((), dtype=torch.bool, device=q.device)
        allowed = torch.cat(
            [
                (ones if local is None else local).expand(*grid, size),
                (ones if visible is None else visible).expand(*grid, m),
            ],
            dim=-1,
        )  # [b, 1, nb, size, size + m]
    out = softmax_attention(q_blocks, torch.cat(keys, -2), torch.cat(values, -2), allowed)
    return out.flatten(2, 3)[:, :, :n]  # [b, h, n, d]


def reference_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    causal: bool = False,
    *,
    block_size: int | None = None,
    memory: tuple[Tensor, Tensor, Tensor | None] | None = None,
    compression: int = 3,
) -> Tensor:
    r"""The readable form of [`attention`][implementations.memory_compressed.attention]: scores
    materialised, one masked softmax.

    Same arguments and result (up to float32 round-off); it builds the
    ``[b, h, n_blocks, size, size + m]`` scores and their mask.

    Examples:
        >>> import torch
        >>> from implementations.memory_compressed import attention, reference_attention
        >>> q = torch.randn(2, 4, 10, 8)
        >>> torch.allclose(reference_attention(q, q, q, block_size=4, causal=True),
        ...                attention(q, q, q, block_size=4, causal=True), atol=1e-6)
        True
    """
    if block_size is None and memory is None:
        raise ValueError("need a local block_size, a compressed memory, or both")
    n = q.shape[-2]
    mask = torch.ones(q.shape[0], n, dtype=torch.bool, device=q.device) if mask is None else mask
    # Without a local part the queries form a single block.
    size = n if block_size is None else block_size
    q_padded, pad = pad_to_multiple(q, size)
    q_blocks = chunk(q_padded, size)  # [b, h, nb, size, d]
    n_blocks = q_blocks.shape[2]
    query_pos = torch.arange(n + pad, device=q.device).view(n_blocks, size)  # [nb, size]
    scale = 1.0 / math.sqrt(q.shape[-1])

    scores: list[Tensor] = []
    allowed: list[Tensor] = []
    if block_size is not None:
        k_blocks = chunk(pad_to_multiple(k, size)[0], size)  # [b, h, nb, size, d]
        mask_blocks = chunk(pad_to_multiple(mask, size, -1, False)[0], size, -1)  # [b, nb, size]
        scores.append(torch.einsum("bhnid,bhnjd->bhnij", q_blocks, k_blocks) * scale)
        local = mask_blocks[:, None, :, None, :]  # [b, 1, nb, 1, size]
        if causal:
            local = local & torch.ones(size, size, dtype=torch.bool, device=q.device).tril()
        allowed.append(local)
    if memory is not None:
        k_mem, _, mask_mem = memory
        scores.append(torch.einsum("bhnid,bhjd->bhnij", q_blocks, k_mem) * scale)
        if mask_mem is None:
            mask_mem = torch.ones(k_mem.shape[0], k_mem.shape[-2], dtype=torch.bool)
        visible = mask_mem.to(q.device)[:, None, None, None, :]  # [b, 1, 1, 1, m]
        if causal:
            slot_end = (torch.arange(k_mem.shape[-2], device=q.device) + 1) * compression - 1
            visible = visible & (slot_end <= query_pos[..., None])  # [.., nb, size, m]
        allowed.append(visible)

    # One softmax over the concatenated key sets: [b, h, nb, size, size + m].
    shape = (q.shape[0], 1, n_blocks, size)
    allowed_all = torch.cat(
        [a.expand(*shape, s.shape[-1]) for a, s in zip(allowed, scores, strict=True)], dim=-1
    )
    probs = masked_softmax(torch.cat(scores, dim=-1), allowed_all)

    out = torch.zeros_like(q_blocks)
    if block_size is not None:
        v_blocks = chunk(pad_to_multiple(v, size)[0], size)  # [b, h, nb, size, d]
        out = out + torch.einsum("bhnij,bhnjd->bhnid", probs[..., :size], v_blocks)
    if memory is not None:
        p_mem = probs[..., -memory[0].shape[-2] :]  # [b, h, nb, size, m]
        out = out + torch.einsum("bhnij,bhjd->bhnid", p_mem, memory[1])
    return out.flatten(2, 3)[:, :, :n]  # [b, h, n, d]


@register("memory-compressed", kind="attention", supports_causal=True)
class MemoryCompressed(nn.Module):
    """Memory-compressed attention (strided-convolution keys/values), local attention, or both.

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: Decoder masking (T-DMCA is a decoder).
        mode: ``"compressed"``, ``"local"`` or ``"local+compressed"``.
        compression: Kernel size and stride $s$ of the key/value convolutions.
        block_size: Local attention block length.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("memory-compressed", dim=32, heads=4, causal=True)
        >>> layer(torch.randn(2, 37, 32)).shape
        torch.Size([2, 37, 32])
        >>> local = implementations.build("memory-compressed", dim=32, heads=4,
        ...                               mode="local+compressed", block_size=8)
        >>> local(torch.randn(2, 37, 32)).shape
        torch.Size([2, 37, 32])
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        mode: str = "compressed",
        compression: int = 3,
        block_size: int = 256,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if compression < 1:
            raise ValueError(f"compression must be a positive integer, got {compression}")
        if block_size < 1:
            raise ValueError(f"block_size must be a positive integer, got {block_size}")
        self.causal = causal
        self.mode = mode
        self.compression = compression
        self.block_size = block_size
        self.heads = heads
        self.proj = HeadProjections(dim, heads)
        self.compress_k: nn.Conv1d | None = None
        self.compress_v: nn.Conv1d | None = None
        if mode != "local":
            inner = self.proj.heads * self.proj.dim_head
            # Kernel = stride = s: slot j summarises exactly tokens js .. js + s - 1.
            self.compress_k = nn.Conv1d(inner, inner, compression, stride=compression)
            self.compress_v = nn.Conv1d(inner, inner, compression, stride=compression)

    def _compress(self, conv: nn.Conv1d, t: Tensor, mask: Tensor | None) -> Tensor:
        """Compress ``[b, n, inner] -> [b, h, m, d]``, with m = ceil(n / s)."""
        # Zero padded tokens (and the alignment padding) so they cannot reach any slot.
        t, _ = pad_to_multiple(zero_padding(t, mask), self.compression)  # [b, m * s, inner]
        t = conv(t.transpose(1, 2)).transpose(1, 2)  # [b, m, inner]
        return split_heads(t, self.heads)  # [b, h, m, d]

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        if mask is not None:
            mask = default_mask(mask, x)  # validates it; None means no padding
        q = split_heads(self.proj.to_q(x), self.heads)  # [b, h, n, d]
        k_flat, v_flat = self.proj.to_k(x), self.proj.to_v(x)  # [b, n, inner]
        memory = None
        if self.compress_k is not None and self.compress_v is not None:
            k_mem = self._compress(self.compress_k, k_flat, mask)  # [b, h, m, d]
            v_mem = self._compress(self.compress_v, v_flat, mask)  # [b, h, m, d]
            mask_mem = None  # without padding every slot holds a real token
            if mask is not None:
                # A slot is real when any token of its window is (padding was zeroed).
                padded_mask, _ = pad_to_multiple(mask, self.compression, dim=-1, value=False)
                mask_mem = chunk(padded_mask, self.compression, dim=-1).any(-1)  # [b, m]
            memory = (k_mem, v_mem, mask_mem)
        o = attention(
            q,
            split_heads(k_flat, self.heads),  # [b, h, n, d]
            split_heads(v_flat, self.heads),  # [b, h, n, d]
            mask,
            self.causal,
            block_size=None if self.mode == "compressed" else self.block_size,
            memory=memory,
            compression=self.compression,
        )
        return self.proj.out(o)
