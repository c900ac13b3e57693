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
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from implementations._helpers import (
    HeadProjections,
    chunk,
    default_mask,
    masked_softmax,
    pad_to_multiple,
    split_heads,
    zero_padding,
)
from implementations._registry import register

__all__ = ["MemoryCompressed", "attention"]

MODES = ("compressed", "local", "local+compressed")


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    causal: bool = False,
    *,
    block_size: int | None = None,
    memory: tuple[Tensor, Tensor, Tensor] | None = None,
    compression: int = 3,
) -> Tensor:
    r"""Each query attends, in one softmax, to its local block and/or a compressed memory.

    Args:
        q, k, v: ``[b, h, n, d]``; ``k`` and ``v`` are the local keys and values (used
            only when ``block_size`` is given).
        mask: Bool key-padding mask ``[b, n]`` (True = real token).
        causal: Query $i$ sees local key $j \le i$ and memory slot $j$ with
            $(j + 1) s - 1 \le i$.
        block_size: Local block length $b$; None for no local part.
        memory: ``(k_mem, v_mem, mask_mem)``, the compressed keys and values
            ``[b, h, m, d]`` and their mask ``[b, m]``; slot $j$ summarises tokens
            $js \dots js + s - 1$. None for no memory part.
        compression: $s$ (only used for the causal visibility of memory slots).

    Returns:
        ``[b, h, n, d]``.

    Examples:
        >>> q = torch.randn(2, 4, 10, 8)
        >>> attention(q, q, q, block_size=4, causal=True).shape
        torch.Size([2, 4, 10, 8])
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
        visible = mask_mem[:, None, None, None, :]  # [b, 1, 1, 1, m]
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

    def _compress(self, conv: nn.Conv1d, t: Tensor, mask: Tensor) -> Tensor:
        """Compress ``[b, n, inner] -> [b, h, m, d]``, with m = ceil(n / s)."""
        # Zero padded tokens (and the alignment padding) so they cannot reach any slot.
        t, _ = pad_to_multiple(zero_padding(t, mask), self.compression)  # [b, m * s, inner]
        t = conv(t.transpose(1, 2)).transpose(1, 2)  # [b, m, inner]
        return split_heads(t, self.heads)  # [b, h, m, d]

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        mask = default_mask(mask, x)
        q = split_heads(self.proj.to_q(x), self.heads)  # [b, h, n, d]
        k_flat, v_flat = self.proj.to_k(x), self.proj.to_v(x)  # [b, n, inner]
        memory = None
        if self.compress_k is not None and self.compress_v is not None:
            k_mem = self._compress(self.compress_k, k_flat, mask)  # [b, h, m, d]
            v_mem = self._compress(self.compress_v, v_flat, mask)  # [b, h, m, d]
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
