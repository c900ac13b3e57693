r"""Native Sparse Attention (NSA): compressed, selected and sliding-window branches, gated.

Paper: *Native Sparse Attention: Hardware-Aligned and Natively Trainable Sparse Attention*,
Jingyang Yuan, Huazuo Gao, Damai Dai, Junyu Luo, Liang Zhao, Zhengyan Zhang, Zhenda Xie,
Y. X. Wei, Lean Wang, Zhiping Xiao, Yuqing Wang, Chong Ruan, Ming Zhang, Wenfeng Liang and
Wangding Zeng, ACL 2025 (arXiv:2502.11089).

Each query $q_t$ attends to three small key sets instead of all keys, and the three results are
mixed by gates computed from the input:

$$
o_t = \sum_{c \in \{\mathrm{cmp}, \mathrm{slc}, \mathrm{win}\}} g^c_t\,
      \mathrm{Attn}\big(q_t, \tilde K^c_t, \tilde V^c_t\big),
\qquad g^c_t = \sigma(w_c^\top x_t + b_c) \in [0, 1] ,
$$

each branch with its own key and value projections.

**Compression.** Keys are cut into blocks of length $l$ with stride $s$; a learned MLP $\varphi$
(with a learned intra-block position embedding) maps each block to one key,
$\tilde K^{cmp}_t = \{\varphi(k_{is : is + l}) : is + l - 1 \le t\}$ (the blocks that are
complete at $t$), and likewise for values. The compressed branch is ordinary attention over these
$\approx t / s$ keys: coarse, global context. It is the one part that grows with $n$ per query,
$O(n^2 d / s)$ in all.

**Selection.** The compressed attention weights $p^{cmp}_t = \mathrm{softmax}(q_t^\top
\tilde K^{cmp}_t / \sqrt{d})$ also score the blocks of length $l'$ of the original keys: the
importance of a selection block is the sum of $p^{cmp}_t$ over the compression blocks that overlap
it (the paper derives this from the blocks' spatial relation; with $l' = l = s$ it is $p^{cmp}_t$
itself). The $k$ highest-scoring blocks are kept; the first block and the two most recent ones
(the block of $t$ and the one before it) are always among them, as in the paper. The selected
branch is exact attention over the $k\,l'$ tokens of those blocks (causal inside the block of
$t$). With ``share_selection`` the importances are summed over the heads first, so all heads pick
the same blocks (the paper shares the selection within a grouped-query-attention group; this
layer has one key/value head per query head, so the option shares it across all heads).

**Sliding window.** Exact attention over the last $w$ tokens: local context, so the other branches
need not learn it.

Cost: $O(n (n / s + k l' + w) d)$ time; the compressed scores, needed for the selection, are
computed for chunks of queries, so memory is $O(n (k l' + w) + c\, n / s)$ for a chunk of $c$
queries. The paper's kernels (blockwise loading of the selected keys for a whole GQA group in
SRAM) are what make NSA fast on GPUs; this reference shows the arithmetic only, and the selection
is not differentiable (top-$k$), as in the paper, where the gradient reaches the compression
through the compressed branch.

**Where the time goes** (``torch.profiler``, one thread, forward, n = 8192, dim 512, 8 heads,
the benchmark's sizes $s = 4$, $l' = 16$, $k = 4$, $w = 32$: 4.2 s, causal 4.3 s): the
compressed branch about 1.5 s, its scores ``[b, h, 512, n / s]`` materialised per chunk of
queries (the two products 0.8 s, the softmax 0.3 s, scaling, masking and the selection sums
0.6 s), because the selection needs the probabilities $p^{cmp}$, which the fused kernel does
not return; the gathers of every query's selected blocks 1.2 s (``aten::index``: $k l'$ keys
and values copied per query and head, one float moved per multiply-add); the selected
attention itself (fused) 0.35 s; the projections 0.4 s; the window under 0.1 s. The layer does
0.48x exact attention's FLOPs at 8192 but at 40 GFLOP/s against the fused kernel's 150, so it
is 1.8x exact attention forward (causal 2.7x): the paper's speed comes from loading each
selected block once per query group into on-chip memory, which per-query gathers on a CPU
cannot reproduce without changing what is selected.

**Causality.** The paper's model is causal (``causal=True``). ``causal=False`` is our
bidirectional form: every complete compression block, every selection block and a window of $w$
tokens on both sides are candidates; the always-selected blocks are the first one, the query's
own and the one before it.

Hyper-parameters (the paper's): ``compress_block`` $l$ = 32, ``compress_stride`` $s$ = 16,
``select_block`` $l'$ = 64, ``selected_blocks`` $k$ = 16 and ``window_size`` $w$ = 512;
``share_selection`` (default False).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import (
    chunk,
    default_mask,
    gather_positions,
    masked_softmax,
    merge_heads,
    pad_to_multiple,
    sliding_window_blocks,
    softmax_attention,
    split_heads,
    zero_padding,
)
from implementations._registry import register

__all__ = ["NativeSparseAttention", "compression_blocks", "selection_scores"]

# Queries handled together in the compressed and selected branches.
_QUERY_CHUNK = 512


def compression_blocks(x: Tensor, length: int, stride: int) -> Tensor:
    """The complete blocks ``x[i s : i s + l]``: ``[..., n, d] -> [..., n_blocks, l, d]``.

    ``n_blocks = (n - l) // s + 1`` (0 when ``n < l``).

    Examples:
        >>> import torch
        >>> from implementations.native_sparse_attention import compression_blocks
        >>> compression_blocks(torch.arange(7.0)[:, None], length=4, stride=2)[..., 0]
        tensor([[0., 1., 2., 3.],
                [2., 3., 4., 5.]])
    """
    if x.shape[-2] < length:
        return x.new_zeros(*x.shape[:-2], 0, length, x.shape[-1])
    return x.unfold(-2, length, stride).transpose(-1, -2)  # [..., n_blocks, l, d]


def selection_scores(p_cmp: Tensor, n_select: int, length: int, stride: int, block: int) -> Tensor:
    r"""Importance of each selection block: the sum of $p^{cmp}$ over overlapping blocks.

    Compression block $i$ covers positions $[i s, i s + l)$ and selection block $j$ covers
    $[j l', (j + 1) l')$; they overlap for $i \in [j r - l / s + 1, (j + 1) r - 1]$ with
    $r = l' / s$ (``block`` and ``length`` multiples of ``stride``).

    Args:
        p_cmp: ``[..., n_cmp]`` compressed attention weights.
        n_select: Number of selection blocks.
        length: $l$.
        stride: $s$.
        block: $l'$.

    Returns:
        ``[..., n_select]``.

    Examples:
        >>> import torch
        >>> from implementations.native_sparse_attention import selection_scores
        >>> p = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0])  # l = 4, s = 2: blocks at 0, 2, .., 8
        >>> selection_scores(p, n_select=3, length=4, stride=2, block=4)  # l' = 4
        tensor([ 3., 14., 24.])
    """
    ratio, reach = block // stride, length // stride - 1
    size = ratio + reach  # compression blocks overlapping one selection block
    needed = (n_select - 1) * ratio + size
    right = max(0, needed - reach - p_cmp.shape[-1])
    padded = F.pad(p_cmp, (reach, right))  # [..., reach + n_cmp + right]
    windows = padded.unfold(-1, size, ratio)[..., :n_select, :]  # [..., n_select, size]
    return windows.sum(-1)


class _BlockMLP(nn.Module):
    r"""$\varphi$: a block of $l$ keys (plus a learned position embedding) to one key."""

    def __init__(self, length: int, dim_head: int) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.randn(length, dim_head) * 0.02)
        self.hidden = nn.Linear(length * dim_head, dim_head)
        self.out = nn.Linear(dim_head, dim_head)

    def forward(self, blocks: Tensor) -> Tensor:
        """``[..., n_blocks, l, d] -> [..., n_blocks, d]``."""
        flat = (blocks + self.pos).flatten(-2)  # [..., n_blocks, l * d]
        return self.out(F.gelu(self.hidden(flat)))


@register("native-sparse-attention", kind="attention", supports_causal=True)
class NativeSparseAttention(nn.Module):
    r"""NSA: gated sum of compressed, top-$k$ selected and sliding-window attention.

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: The paper's decoder (only complete past blocks, past tokens).
        compress_block: $l$, keys per compression block.
        compress_stride: $s$, the stride between compression blocks (divides $l$ and $l'$).
        select_block: $l'$, keys per selection block.
        selected_blocks: $k$, blocks selected per query (the first and the two most recent
            included).
        window_size: $w$, tokens of the sliding-window branch.
        share_selection: Sum the block importances over heads, so all heads select alike.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("native-sparse-attention", dim=32, heads=4,
        ...                               causal=True, compress_block=8, compress_stride=4,
        ...                               select_block=8, selected_blocks=4, window_size=8)
        >>> mask = torch.ones(2, 50, dtype=torch.bool)
        >>> mask[1, 40:] = False
        >>> layer(torch.randn(2, 50, 32), mask).shape
        torch.Size([2, 50, 32])
    """

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        causal: bool = False,
        *,
        compress_block: int = 32,
        compress_stride: int = 16,
        select_block: int = 64,
        selected_blocks: int = 16,
        window_size: int = 512,
        share_selection: bool = False,
    ) -> None:
        super().__init__()
        sizes = {
            "compress_block": compress_block,
            "compress_stride": compress_stride,
            "select_block": select_block,
            "selected_blocks": selected_blocks,
            "window_size": window_size,
        }
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if compress_block % compress_stride or select_block % compress_stride:
            raise ValueError(
                f"compress_stride ({compress_stride}) must divide compress_block "
                f"({compress_block}) and select_block ({select_block})"
            )
        self.heads, self.causal = heads, causal
        self.length, self.stride, self.block = compress_block, compress_stride, select_block
        self.n_top, self.window, self.share = selected_blocks, window_size, share_selection
        dim_head = dim // heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        # Independent keys and values for the three branches: cmp, slc, win.
        self.to_kv = nn.Linear(dim, 6 * dim, bias=False)
        self.compress_k = _BlockMLP(compress_block, dim_head)
        self.compress_v = _BlockMLP(compress_block, dim_head)
        self.to_gates = nn.Linear(dim, 3 * heads)
        self.to_out = nn.Linear(dim, dim)

    def compressed_kv(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        r"""$\varphi$ of every complete block: ``[b, h, n, d] -> [b, h, n_cmp, d]`` (twice)."""
        k_blocks = compression_blocks(k, self.length, self.stride)  # [b, h, n_cmp, l, d]
        v_blocks = compression_blocks(v, self.length, self.stride)
        return self.compress_k(k_blocks), self.compress_v(v_blocks)

    def sparse_branches(
        self, q: Tensor, kv_cmp: tuple[Tensor, Tensor], kv_slc: tuple[Tensor, Tensor], mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The compressed and selected branches, for chunks of queries: two ``[b, h, n, d]``."""
        b, h, n, d = q.shape
        scale = 1.0 / math.sqrt(d)
        k_cmp, v_cmp = kv_cmp
        n_cmp = k_cmp.shape[-2]
        cmp_end = torch.arange(n_cmp, device=q.device) * self.stride + self.length - 1  # [n_cmp]
        # Selection blocks of the branch's own keys, padded to whole blocks.
        k_slc, _ = pad_to_multiple(kv_slc[0], self.block)
        v_slc, _ = pad_to_multiple(kv_slc[1], self.block)
        real, _ = pad_to_multiple(mask, self.block, dim=-1, value=False)
        n_sel = k_slc.shape[-2] // self.block
        k_sel_blocks = chunk(k_slc, self.block).flatten(-2)  # [b, h, n_sel, l' * d]
        v_sel_blocks = chunk(v_slc, self.block).flatten(-2)
        n_top = min(self.n_top, n_sel)
        offsets = torch.arange(self.block, device=q.device)  # [l']

        out_cmp, out_slc = [], []
        for start in range(0, n, _QUERY_CHUNK):
            q_c = q[..., start : start + _QUERY_CHUNK, :]  # [b, h, c, d]
            t = torch.arange(start, start + q_c.shape[-2], device=q.device)  # [c] positions
            # Compressed branch: p_cmp = softmax(q K_cmp^T / sqrt(d)) over complete past blocks.
            visible = (cmp_end[None, :] <= t[:, None]) if self.causal else None  # [c, n_cmp]
            scores = q_c.float() @ k_cmp.float().transpose(-1, -2) * scale  # [b, h, c, n_cmp]
            p_cmp = masked_softmax(scores, visible)  # [b, h, c, n_cmp]
            out_cmp.append((p_cmp @ v_cmp.float()).to(q.dtype))

            # Selection: block importances, the forced blocks, the top-k.
            p_sel = selection_scores(p_cmp, n_sel, self.length, self.stride, self.block)
            if self.share:
                p_sel = p_sel.sum(1, keepdim=True).expand(b, h, -1, -1)  # [b, h, c, n_sel]
            j = torch.arange(n_sel, device=q.device)[None, :]  # [1, n_sel]
            own = (t // self.block)[:, None]  # [c, 1]
            forced = (j == 0) | (j == own) | (j == own - 1)  # [c, n_sel]
            p_sel = p_sel.masked_fill(forced, math.inf)
            if self.causal:
                p_sel = p_sel.masked_fill(j > own, -math.inf)  # blocks wholly in the future
            top = p_sel.topk(n_top, dim=-1)  # [b, h, c, k]
            chosen = top.values > -math.inf  # [b, h, c, k]: fewer past blocks than k
            k_top = gather_positions(k_sel_blocks[:, :, None], top.indices)  # [b, h, c, k, l'd]
            v_top = gather_positions(v_sel_blocks[:, :, None], top.indices)
            k_top = k_top.unflatten(-1, (self.block, d)).flatten(-3, -2)  # [b, h, c, k l', d]
            v_top = v_top.unflatten(-1, (self.block, d)).flatten(-3, -2)
            pos = top.indices[..., None] * self.block + offsets  # [b, h, c, k, l']
            key_real = real[:, None, None, :].expand(b, h, q_c.shape[-2], -1)  # [b, h, c, N]
            allowed = chosen[..., None] & key_real.gather(-1, pos.flatten(-2)).view(pos.shape)
            if self.causal:
                allowed = allowed & (pos <= t[:, None, None])
            allowed = allowed.flatten(-2)[..., None, :]  # [b, h, c, 1, k l']
            o = softmax_attention(q_c[..., None, :], k_top, v_top, allowed)  # [b, h, c, 1, d]
            out_slc.append(o[..., 0, :])
        return torch.cat(out_cmp, dim=-2), torch.cat(out_slc, dim=-2)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        mask = default_mask(mask, x)
        h, n = self.heads, x.shape[1]
        q = split_heads(self.to_q(x), h)  # [b, h, n, d]
        # Padding is zeroed before it is compressed, so its values cannot leak into a block.
        kv = [split_heads(t, h) for t in zero_padding(self.to_kv(x), mask).chunk(6, dim=-1)]
        k_cmp, v_cmp = self.compressed_kv(kv[0], kv[1])  # [b, h, n_cmp, d]
        o_cmp, o_slc = self.sparse_branches(q, (k_cmp, v_cmp), (kv[2], kv[3]), mask)
        blocks = sliding_window_blocks(
            q,
            kv[4],
            kv[5],
            before=self.window - 1,
            after=0 if self.causal else self.window - 1,
            mask=mask[:, None, :],
        )
        o_win = softmax_attention(blocks.q, blocks.k, blocks.v, blocks.allowed)
        o_win = o_win.flatten(-3, -2)[..., :n, :]  # [b, h, n, d]
        gates = torch.sigmoid(self.to_gates(x)).view(x.shape[0], n, h, 3)  # [b, n, h, 3]
        g = gates.permute(3, 0, 2, 1)[..., None].to(q.dtype)  # [3, b, h, n, 1]
        o = g[0] * o_cmp + g[1] * o_slc + g[2] * o_win  # o_t = sum_c g^c_t Attn^c
        return self.to_out(merge_heads(o))
