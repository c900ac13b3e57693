r"""Long-Short Transformer: short-term window attention + long-range dynamic projection, DualLN.

Paper: *Long-Short Transformer: Efficient Transformers for Language and Vision*, Chen Zhu,
Wei Ping, Chaowei Xiao, Mohammad Shoeybi, Tom Goldstein, Anima Anandkumar and Bryan
Catanzaro, NeurIPS 2021 (arXiv:2107.02192).

Each query attends, under **one** softmax, to two sets of keys and values.

**Short-term attention (segment-wise sliding window).** The sequence is cut into
segments of $w$ tokens; every query of segment $s$ attends to its own segment plus
$\tfrac12 w$ tokens on each side, i.e. keys $\tilde K_s = K_{[sw - w/2,\ (s+1)w + w/2)}$
($2w$ keys, zero-padded at the ends). Sharing the window across a segment makes it a
dense block product: $O(n w)$.

**Long-range attention (dynamic projection).** Instead of Linformer's fixed projection,
the $n$ keys and values are compressed to $r$ by an input-dependent projection

$$
P = \mathrm{softmax}\big(X W^P\big) \in \mathbb{R}^{n \times r}, \qquad
\bar K = P^\top X W^K, \qquad \bar V = P^\top X W^V \in \mathbb{R}^{r \times d},
$$

with the softmax over the $n$ positions (each of the $r$ columns of $P$ is a weighting of
the sequence; $W^P$ is per head). This costs $O(n r)$.

**Aggregation with DualLN.** The window's keys are raw projections while $\bar K$ are
weighted sums of $n$ of them, so their norms differ in scale; two layer norms align them
before the joint softmax:

$$
\mathrm{Attn}(Q) = \mathrm{softmax}\!\left(\frac{Q\,[\mathrm{LN}_L(\tilde K);\,
\mathrm{LN}_G(\bar K)]^\top}{\sqrt{d_k}}\right)[\mathrm{LN}_L(\tilde V);\, \mathrm{LN}_G(\bar V)].
$$

**Autoregressive variant** (``causal=True``). A projection over the whole sequence would
see the future, so the dynamic projection is applied *segment-wise*: the sequence is cut
into segments of $l$ tokens and segment $s$ is compressed on its own,
$\bar K_s = P_s^\top K_s$ with $P_s = \mathrm{softmax}(X_s W^P)$ over the segment's
positions. A query in segment $s$ attends to $\bar K_{s'}, \bar V_{s'}$ of the earlier
segments $s' < s$ only, and the short-term part becomes a causal sliding window over the
$w$ most recent tokens (itself included), as in the authors' language models. The
long-range part then costs $O(n \cdot \tfrac{n}{l} r)$, a $\tfrac{r}{l}$ fraction of full
attention.

Implementation notes: the window is gathered blockwise (``Tensor.unfold`` /
[`sliding_window_blocks`][implementations._helpers.sliding_window_blocks]), never as an $n \times n$
mask; $W^P$ has no bias (a per-column constant cancels in the softmax over positions); the two
layer norms act on the concatenated heads, as in the authors' code. Padded positions get
zero weight in $P$, and a causal segment with no real token is never attended.

``None`` picks the paper's setting for the mode (bidirectional or causal).

Hyper-parameters:
    window_size: $w$; bidirectional: the segment length (8 in the paper's Long Range
        Arena models), causal: the sliding window length (512 in its enwik8/text8 models).
    rank: $r$, the number of projected keys (32 on Long Range Arena; 1 per segment for
        the causal language models).
    segment_size: $l$, the segment length of the causal dynamic projection (16 in the
        paper's language models; unused when bidirectional).

**Where the time goes**: the window and projected-key products dominate; each block of queries
attends to ``[window keys; projected keys]`` in the fused kernel
([`softmax_attention`][implementations._helpers.softmax_attention]) instead of a materialised
``[n, L + r]`` score tensor
([`reference_attention`][implementations.long_short_transformer.reference_attention]). Measured
(CPU, one thread, float32, dim 512, 8 heads): causal at n = 8192, 0.8x dense forward and 0.7x
forward+backward (slower than dense before).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from implementations._helpers import (
    HeadProjections,
    chunk,
    default_mask,
    masked_softmax,
    merge_heads,
    pad_to_multiple,
    sliding_window_blocks,
    softmax_attention,
    split_heads,
)
from implementations._registry import register

__all__ = ["LongShortTransformer", "attention", "reference_attention"]


def _segment_windows(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor, window_size: int, causal: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""Gather the short-term window of every block of queries.

    Bidirectional: segments of $w$ queries, each seeing its own segment and $\tfrac12 w$ keys on
    each side (``Tensor.unfold``). Causal: the $w$ most recent keys
    ([`sliding_window_blocks`][implementations._helpers.sliding_window_blocks]).

    Args:
        q: Queries ``[b, h, n, d]``.
        k: Window keys ``[b, h, n, d]``.
        v: Window values ``[b, h, n, d]``.
        mask: Bool key-padding mask ``[b, n]``, True = real token.
        window_size: $w$ (see [`attention`][implementations.long_short_transformer.attention]).
        causal: Causal sliding window instead of segments.

    Returns:
        ``(q_blocks, k_win, v_win, win_ok)``: queries ``[b, h, nb, c, d]``, their window keys
        and values ``[b, h, nb, L, d]``, and ``win_ok``, bool, broadcastable to
        ``[b, 1, nb, c, L]`` (inside the window and a real key).

    Examples:
        >>> import torch
        >>> from implementations.long_short_transformer import _segment_windows
        >>> q, mask = torch.randn(2, 4, 50, 8), torch.ones(2, 50, dtype=torch.bool)
        >>> [tuple(t.shape) for t in _segment_windows(q, q, q, mask, 8, causal=False)]
        [(2, 4, 7, 8, 8), (2, 4, 7, 16, 8), (2, 4, 7, 16, 8), (2, 1, 7, 1, 16)]
    """
    if causal:
        blocks = sliding_window_blocks(q, k, v, window_size - 1, 0, mask[:, None])
        return blocks.q, blocks.k, blocks.v, blocks.allowed
    # Segment s (queries s*w .. s*w + w - 1) sees keys s*w - e .. (s+1)*w + e - 1.
    w, e = window_size, window_size // 2
    q_blocks = chunk(pad_to_multiple(q, w)[0], w)  # [b, h, nb, w, d]
    k_pad = F.pad(pad_to_multiple(k, w)[0], (0, 0, e, e))  # [b, h, nb * w + 2e, d]
    v_pad = F.pad(pad_to_multiple(v, w)[0], (0, 0, e, e))
    m_pad = F.pad(pad_to_multiple(mask, w, dim=-1, value=False)[0], (e, e), value=False)
    k_win = k_pad.unfold(-2, w + 2 * e, w).transpose(-1, -2)  # [b, h, nb, w + 2e, d]
    v_win = v_pad.unfold(-2, w + 2 * e, w).transpose(-1, -2)  # [b, h, nb, w + 2e, d]
    win_ok = m_pad.unfold(-1, w + 2 * e, w)[:, None, :, None, :]  # [b, 1, nb, 1, w + 2e]
    return q_blocks, k_win, v_win, win_ok


def _projected_keys_ok(
    k_bar: Tensor,
    bar_mask: Tensor | None,
    causal: bool,
    bar_segment: Tensor | None,
    segment_size: int,
    n_blocks: int,
    c: int,
) -> Tensor:
    """Which projected keys each blocked query may see: real ones, and causally earlier segments.

    Returns:
        Bool, broadcastable to ``[b, 1, nb, c, n_bar]``: ``bar_mask`` (if given), and for
        ``causal`` only keys with ``bar_segment[e] < t // segment_size`` at position ``t``.

    Examples:
        >>> import torch
        >>> from implementations.long_short_transformer import _projected_keys_ok
        >>> ok = _projected_keys_ok(torch.zeros(1, 1, 2, 4), None, True, torch.tensor([0, 1]),
        ...                         segment_size=2, n_blocks=2, c=2)
        >>> ok.int()  # [nb, c, n_bar]: positions 2, 3 (segment 1) see segment 0
        tensor([[[0, 0],
                 [0, 0]],
        <BLANKLINE>
                [[1, 0],
                 [1, 0]]], dtype=torch.int32)
    """
    bar_ok = torch.ones(k_bar.shape[-2], dtype=torch.bool, device=k_bar.device)
    if bar_mask is not None:
        bar_ok = bar_mask[:, None, None, None, :]  # [b, 1, 1, 1, n_bar]
    if causal:
        if bar_segment is None:
            raise ValueError("causal attention needs bar_segment")
        position = torch.arange(n_blocks * c, device=k_bar.device).view(n_blocks, c)  # [nb, c]
        earlier = bar_segment.to(k_bar.device) < (position // segment_size)[..., None]
        bar_ok = bar_ok & earlier  # [nb, c, n_bar]
    return bar_ok


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    k_bar: Tensor,
    v_bar: Tensor,
    *,
    window_size: int,
    mask: Tensor | None = None,
    bar_mask: Tensor | None = None,
    causal: bool = False,
    segment_size: int = 1,
    bar_segment: Tensor | None = None,
) -> Tensor:
    r"""One softmax over the short-term window keys and the projected (long-range) keys.

    Each block of queries attends to ``[its window keys; the projected keys]`` in the
    fused kernel ([`softmax_attention`][implementations._helpers.softmax_attention]);
    [`reference_attention`][implementations.long_short_transformer.reference_attention] materialises
    the scores.

    Args:
        q: Queries ``[b, h, n, d]``.
        k: Window keys ``[b, h, n, d]`` (already $\mathrm{LN}_L$-normalised).
        v: Window values ``[b, h, n, d]``.
        k_bar: Projected keys ``[b, h, n_bar, d]`` (already $\mathrm{LN}_G$-normalised).
        v_bar: Projected values ``[b, h, n_bar, d]``.
        window_size: $w$: the segment length (bidirectional; keys reach $\tfrac12 w$
            beyond each side), or the causal window length (keys ``t - w + 1 .. t``).
        mask: Bool key-padding mask ``[b, n]``, True = real token.
        bar_mask: Bool ``[b, n_bar]``, False for projected keys to ignore.
        causal: Causal window; projected key ``e`` is seen from position ``t`` only if
            ``bar_segment[e] < t // segment_size``.
        segment_size: $l$, the causal projection's segment length.
        bar_segment: ``[n_bar]`` long, the segment each projected key summarises (causal).

    Returns:
        ``[b, h, n, d]``.

    Examples:
        >>> import torch
        >>> from implementations.long_short_transformer import attention
        >>> q = torch.randn(2, 4, 50, 8)
        >>> k_bar = torch.randn(2, 4, 6, 8)
        >>> attention(q, q, q, k_bar, k_bar, window_size=8).shape
        torch.Size([2, 4, 50, 8])
    """
    b, _, n, d = q.shape
    scale = 1.0 / math.sqrt(d)
    mask = torch.ones(b, n, dtype=torch.bool, device=q.device) if mask is None else mask

    q_blocks, k_win, v_win, win_ok = _segment_windows(q, k, v, mask, window_size, causal)
    n_blocks, c = q_blocks.shape[-3:-1]
    bar_ok = _projected_keys_ok(k_bar, bar_mask, causal, bar_segment, segment_size, n_blocks, c)

    shape = (b, 1, n_blocks, c)
    allowed = torch.cat([win_ok.expand(*shape, -1), bar_ok.expand(*shape, -1)], dim=-1)
    # allowed: [b, 1, nb, c, L + n_bar]; every block's keys: [window; projected].
    keys = torch.cat([k_win, k_bar[:, :, None].expand(-1, -1, n_blocks, -1, -1)], dim=-2)
    values = torch.cat([v_win, v_bar[:, :, None].expand(-1, -1, n_blocks, -1, -1)], dim=-2)
    out = softmax_attention(q_blocks, keys, values, allowed, scale=scale)  # [b, h, nb, c, d]
    return out.flatten(-3, -2)[:, :, :n]  # [b, h, n, d]


def reference_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    k_bar: Tensor,
    v_bar: Tensor,
    *,
    window_size: int,
    mask: Tensor | None = None,
    bar_mask: Tensor | None = None,
    causal: bool = False,
    segment_size: int = 1,
    bar_segment: Tensor | None = None,
) -> Tensor:
    r"""The readable form of [`attention`][implementations.long_short_transformer.attention]: scores
    materialised (same result).

    Examples:
        >>> import torch
        >>> from implementations.long_short_transformer import attention, reference_attention
        >>> q, k_bar = torch.randn(2, 4, 50, 8), torch.randn(2, 4, 6, 8)
        >>> torch.allclose(reference_attention(q, q, q, k_bar, k_bar, window_size=8),
        ...                attention(q, q, q, k_bar, k_bar, window_size=8), atol=1e-6)
        True
    """
    b, _, n, d = q.shape
    scale = 1.0 / math.sqrt(d)
    mask = torch.ones(b, n, dtype=torch.bool, device=q.device) if mask is None else mask

    q_blocks, k_win, v_win, win_ok = _segment_windows(q, k, v, mask, window_size, causal)
    n_blocks, c = q_blocks.shape[-3:-1]
    scores_win = torch.einsum("...cd,...ld->...cl", q_blocks, k_win)  # [b, h, nb, c, L]
    scores_bar = torch.einsum("bhncd,bhed->bhnce", q_blocks, k_bar)  # [b, h, nb, c, n_bar]
    bar_ok = _projected_keys_ok(k_bar, bar_mask, causal, bar_segment, segment_size, n_blocks, c)

    shape = (b, 1, n_blocks, c)
    scores = torch.cat([scores_win, scores_bar], dim=-1) * scale  # [b, h, nb, c, L + n_bar]
    allowed = torch.cat([win_ok.expand(*shape, -1), bar_ok.expand(*shape, -1)], dim=-1)
    probs = masked_softmax(scores, allowed)
    length = k_win.shape[-2]
    out = probs[..., :length] @ v_win + probs[..., length:] @ v_bar[:, :, None]  # [b, h, nb, c, d]
    return out.flatten(-3, -2)[:, :, :n]  # [b, h, n, d]


@register("long-short-transformer", kind="attention", supports_causal=True)
class LongShortTransformer(nn.Module):
    """Transformer-LS attention: segment-wise window + dynamic low-rank projection, with DualLN.

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: Autoregressive variant (causal window, segment-wise dynamic projection).
        window_size: $w$ (default 8 bidirectional, 512 causal).
        rank: $r$ (default 32 bidirectional, 1 per segment causal).
        segment_size: $l$, segment length of the causal dynamic projection.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build(
        ...     "long-short-transformer", dim=32, heads=4, causal=True,
        ...     window_size=16, rank=2, segment_size=8,
        ... )
        >>> x = torch.randn(2, 100, 32)
        >>> layer(x).shape
        torch.Size([2, 100, 32])
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        window_size: int | None = None,
        rank: int | None = None,
        segment_size: int = 16,
    ) -> None:
        super().__init__()
        window_size = (512 if causal else 8) if window_size is None else window_size
        rank = (1 if causal else 32) if rank is None else rank
        for name, value in (
            ("window_size", window_size),
            ("rank", rank),
            ("segment_size", segment_size),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.causal = causal
        self.heads = heads
        self.window_size = window_size
        self.rank = rank
        self.segment_size = segment_size
        self.proj = HeadProjections(dim, heads)
        inner = self.proj.heads * self.proj.dim_head
        self.to_p = nn.Linear(dim, heads * rank, bias=False)  # W^P, one r-column block per head
        self.norm_local = nn.LayerNorm(inner)  # LN_L (window keys / values)
        self.norm_global = nn.LayerNorm(inner)  # LN_G (projected keys / values)

    def extra_repr(self) -> str:
        return f"window_size={self.window_size}, rank={self.rank}, segment_size={self.segment_size}"

    def layer_norm_heads(self, norm: nn.LayerNorm, t: Tensor) -> Tensor:
        """A layer norm over the concatenated heads of ``t`` ``[b, h, m, d]``."""
        return split_heads(norm(merge_heads(t)), self.heads)  # [b, h, m, d]

    def project(
        self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        r"""The dynamic projection $\bar K = P^\top K$, $\bar V = P^\top V$ (before the LN_G).

        Returns ``(k_bar, v_bar, bar_mask, bar_segment)``: ``[b, h, n_bar, d]`` twice, the
        ``[b, n_bar]`` validity, and (causal) the ``[n_bar]`` segment of each entry;
        ``n_bar = r`` bidirectional, ``ceil(n / l) * r`` causal.
        """
        b = x.shape[0]
        if not self.causal:
            logits = rearrange(self.to_p(x), "b n (h r) -> b h r n", h=self.heads)  # [b, h, r, n]
            p = masked_softmax(logits, mask[:, None, None, :])  # [b, h, r, n], rows sum to 1
            bar_mask = mask.any(dim=-1, keepdim=True).expand(b, self.rank)  # [b, r]
            return p @ k, p @ v, bar_mask, None  # [b, h, r, d] each

        seg = self.segment_size
        x_pad, _ = pad_to_multiple(x, seg)
        mask_seg = chunk(
            pad_to_multiple(mask, seg, dim=-1, value=False)[0], seg, dim=-1
        )  # [b, s, l]
        # [b, s * l, h * r] -> [b, h, s, r, l]: per segment, r weightings of its l positions
        logits = rearrange(self.to_p(x_pad), "b (s l) (h r) -> b h s r l", l=seg, h=self.heads)
        p = masked_softmax(logits, mask_seg[:, None, :, None, :])  # [b, h, s, r, l]: P_s^T
        k_bar = p @ chunk(pad_to_multiple(k, seg)[0], seg)  # [b, h, s, r, d]
        v_bar = p @ chunk(pad_to_multiple(v, seg)[0], seg)  # [b, h, s, r, d]
        n_segments = mask_seg.shape[1]
        bar_mask = mask_seg.any(dim=-1).repeat_interleave(self.rank, dim=1)  # [b, s * r]
        bar_segment = torch.arange(n_segments, device=x.device).repeat_interleave(self.rank)
        # [b, h, s, r, d] -> [b, h, s * r, d], ordered by segment
        return k_bar.flatten(2, 3), v_bar.flatten(2, 3), bar_mask, bar_segment

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        mask = default_mask(mask, x)
        q, k, v = self.proj.qkv(x)  # [b, h, n, d] each
        k_bar, v_bar, bar_mask, bar_segment = self.project(x, k, v, mask)  # long-range
        o = attention(
            q,
            self.layer_norm_heads(self.norm_local, k),  # LN_L
            self.layer_norm_heads(self.norm_local, v),
            self.layer_norm_heads(self.norm_global, k_bar),  # LN_G
            self.layer_norm_heads(self.norm_global, v_bar),
            window_size=self.window_size,
            mask=mask,
            bar_mask=bar_mask,
            causal=self.causal,
            segment_size=self.segment_size,
            bar_segment=bar_segment,
        )  # [b, h, n, d]
        return self.proj.out(o)
