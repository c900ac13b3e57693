r"""Longformer: sliding-window (optionally dilated) attention plus symmetric global attention.

Paper: *Longformer: The Long-Document Transformer*, Iz Beltagy, Matthew E. Peters and
Arman Cohan, 2020 (arXiv:2004.05150).

**Sliding window.** With a window of $w$ positions, token $i$ attends to the $\tfrac12 w$
tokens on each side of it. With dilation $d$ the window has gaps of $d - 1$: token $i$
sees

$$
\mathcal{W}(i) = \{\, i + d\,t \;:\; t \in \mathbb{Z},\ |t| \le \tfrac12 w \,\},
$$

so a stack of $\ell$ layers has a receptive field of $\ell \cdot d \cdot w$ at the cost of
$O(n w)$ per layer. The paper gives different heads different dilations (e.g. two
dilated heads in the upper layers of its character-level models), which
``attention_dilation`` allows with one value per head. For autoregressive language
modelling the window keeps only its left half ($t \le 0$), which is what ``causal=True``
does.

**Global attention.** A few task-chosen tokens (the classification token, the question in
QA) get *symmetric* global attention: a global token attends to every token, and every
token attends to it. Token $i$'s keys are therefore $\mathcal{W}(i) \cup \mathcal{G}$
(a global token inside the window is counted once), and a global token's keys are all
$n$ tokens. The global rows use their own projections $Q_g, K_g, V_g$, while the
window rows (including their global columns) use $Q_s, K_s, V_s$:

$$
y_i = \begin{cases}
\mathrm{softmax}\!\Big(
  \tfrac{q^s_i\,[K^s_{\mathcal{W}(i)}; K^s_{\mathcal{G}}]^\top}{\sqrt{d_k}}
\Big)\,[V^s_{\mathcal{W}(i)}; V^s_{\mathcal{G}}] & i \notin \mathcal{G}, \\[6pt]
\mathrm{softmax}\!\Big(\tfrac{q^g_i\,(K^g)^\top}{\sqrt{d_k}}\Big)\, V^g & i \in \mathcal{G}.
\end{cases}
$$

Cost: $O(n (w + g))$ time and memory for $g$ global tokens.

**Implementation.** The band is computed block by block
([`sliding_window_blocks`][implementations._helpers.sliding_window_blocks]: blocks of $\tfrac12 w$
queries each gather their neighbour blocks' keys), never as an $n \times n$ mask.
Dilation needs no strided gathers: the positions $i \equiv r \pmod d$ form a
sub-sequence on which the dilated window is an ordinary window, so the sequence is
split into its $d$ residue classes and each is processed with the plain banded kernel.
Global tokens are the first ``global_tokens`` positions of the input (e.g. a CLS token,
or a question placed before the document). With ``causal=True`` global attention is
masked like everything else: a global token sees the tokens up to itself, and a token
sees the global tokens up to itself.

Hyper-parameters:
    attention_window: $w$, the full window (both sides) in tokens; even. The paper's
        RoBERTa-based models use 512 in every layer.
    attention_dilation: $d$, one value for all heads or one per head (1 = no gaps).
    global_tokens: $g$, how many leading positions get symmetric global attention
        (0: none; then no global projections exist).

**Where the time goes**: the banded products dominate; each block of each residue class attends to
``[window keys; global keys]`` in the fused kernel
([`softmax_attention`][implementations._helpers.softmax_attention]), with the band as a small
``[blocks, c, L]`` mask, instead of materialised scores
([`reference_attention`][implementations.longformer.reference_attention]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from einops import rearrange
from torch import Tensor, nn

from implementations._helpers import (
    HeadProjections,
    WindowBlocks,
    chunk,
    default_mask,
    masked_softmax,
    pad_to_multiple,
    sliding_window_blocks,
    softmax_attention,
    split_heads,
)
from implementations._registry import Range, register

__all__ = ["Longformer", "attention", "reference_attention"]


def _dilated_windows(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor,
    half: int,
    dilation: int,
    causal: bool,
    g: int,
) -> WindowBlocks:
    """Lay out the dilated sliding window as blocks, one residue class of positions at a time.

    Args:
        q: ``[b, h, n, d]``.
        k: ``[b, h, n, d]``.
        v: ``[b, h, n, d]``.
        mask: Bool key-padding mask ``[b, n]``, True = real token.
        half: Half-width of the window, in dilated steps.
        dilation: $d$.
        causal: Left-only window.
        g: Number of global tokens (left out of the windows: they have their own columns).

    Returns:
        [`WindowBlocks`][implementations._helpers.WindowBlocks] with leading dimensions
        ``[b, h, r, nb]`` (``allowed``: ``[b, 1, r, nb, c, L]``); undo the blocking with
        ``_merge_with_global_rows``.

    Examples:
        >>> import torch
        >>> from implementations.longformer import _dilated_windows
        >>> q, mask = torch.randn(2, 4, 50, 8), torch.ones(2, 50, dtype=torch.bool)
        >>> blocks = _dilated_windows(q, q, q, mask, half=4, dilation=2, causal=False, g=3)
        >>> [tuple(t.shape) for t in (blocks.q, blocks.k, blocks.allowed)]
        [(2, 4, 2, 7, 4, 8), (2, 4, 2, 7, 12, 8), (2, 1, 2, 7, 4, 12)]
    """
    n = q.shape[-2]
    position = torch.arange(n, device=q.device)
    # Global keys are reached through their own columns; dropping them from the
    # windows keeps each counted once in the softmax.
    window_keys_ok = mask & (position >= g)  # [b, n]

    # Split into the d residue classes i = m * d + r; the dilated window is a plain window
    # of half-width `half` on each class.
    qd, _ = pad_to_multiple(q, dilation)
    kd, _ = pad_to_multiple(k, dilation)
    vd, _ = pad_to_multiple(v, dilation)
    keys_ok, _ = pad_to_multiple(window_keys_ok, dilation, dim=-1, value=False)
    # [b, h, n, d] -> [b, h, r, m, d]: residue class r holds positions r, r + d, r + 2d, ...
    qd, kd, vd = (rearrange(t, "b h (m r) e -> b h r m e", r=dilation) for t in (qd, kd, vd))
    keys_ok = rearrange(keys_ok, "b (m r) -> b 1 r m", r=dilation)  # [b, 1, r, m]
    after = 0 if causal else half
    return sliding_window_blocks(qd, kd, vd, before=half, after=after, mask=keys_ok)


def _global_keys_ok(mask: Tensor, g: int, causal: bool, dilation: int, c: int) -> Tensor:
    """Which of the ``g`` global keys each blocked query of ``_dilated_windows`` may see.

    Returns:
        Bool ``[b, 1, 1, 1, 1, g]`` (real keys), or for ``causal`` ``[b, 1, r, nb, c, g]``
        (also at most the query's position), broadcastable to ``[b, 1, r, nb, c, g]``.

    Examples:
        >>> import torch
        >>> from implementations.longformer import _global_keys_ok
        >>> ok = _global_keys_ok(torch.ones(1, 6, dtype=torch.bool), 2, True, dilation=2, c=3)
        >>> ok[0, 0, :, 0, :, 1].int()  # [r, c]: query positions 0 2 4 | 1 3 5 see key 1
        tensor([[0, 1, 1],
                [1, 1, 1]], dtype=torch.int32)
    """
    n = mask.shape[-1]
    glob_ok = mask[:, None, None, None, None, :g]  # [b, 1, 1, 1, 1, g]
    if causal:
        # Position of every blocked query, laid out like the blocked queries.
        position = torch.arange(n, device=mask.device)
        pos, _ = pad_to_multiple(position, dilation, dim=-1, value=n)
        pos = rearrange(pos, "(m r) -> r m", r=dilation)  # [r, m]
        pos = chunk(pad_to_multiple(pos, c, dim=-1, value=n)[0], c, dim=-1)  # [r, nb, c]
        glob_ok = glob_ok & (torch.arange(g, device=mask.device) <= pos[..., None])
    return glob_ok


def _merge_with_global_rows(
    out: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor,
    g: int,
    causal: bool,
    global_qkv: tuple[Tensor, Tensor, Tensor] | None,
) -> Tensor:
    """Undo the blocking of ``_dilated_windows``; then the ``g`` global rows attend to every token.

    Args:
        out: Windowed outputs ``[b, h, r, nb, c, d]``.
        q, k, v: The inputs ``[b, h, n, d]`` (for ``n``, and the global rows by default).
        mask: Bool key-padding mask ``[b, n]``.
        g: Number of global tokens (0: none).
        causal: A global row sees only the tokens up to its own position.
        global_qkv: ``(Q_g, K_g, V_g)``, or None for ``(q, k, v)``.

    Returns:
        ``[b, h, n, d]``.

    Examples:
        >>> import torch
        >>> from implementations.longformer import _merge_with_global_rows
        >>> q, mask = torch.randn(1, 2, 5, 4), torch.ones(1, 5, dtype=torch.bool)
        >>> out = torch.randn(1, 2, 2, 1, 3, 4)  # [b, h, r, nb, c, d] for dilation 2
        >>> _merge_with_global_rows(out, q, q, q, mask, g=1, causal=False, global_qkv=None).shape
        torch.Size([1, 2, 5, 4])
    """
    n, dilation = q.shape[-2], out.shape[2]
    # Undo the blocking and the residue-class split.
    m = -(-n // dilation)  # positions per residue class
    out = out.flatten(-3, -2)[..., :m, :]  # [b, h, r, m, d]
    out = rearrange(out, "b h r m e -> b h (m r) e")[:, :, :n]  # [b, h, n, d]

    if g > 0:
        # Global rows: each global token attends to every (real, and for causal earlier) token.
        position = torch.arange(n, device=q.device)
        qg, kg, vg = (q, k, v) if global_qkv is None else global_qkv
        rows_ok = mask[:, None, None, :]  # [b, 1, 1, n]
        if causal:
            rows_ok = rows_ok & (position[None, :] <= position[:g, None])  # [b, 1, g, n]
        glob_rows = softmax_attention(qg[:, :, :g], kg, vg, rows_ok)  # [b, h, g, d]
        out = torch.cat([glob_rows, out[:, :, g:]], dim=2)  # [b, h, n, d]
    return out


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    window: int,
    dilation: int = 1,
    causal: bool = False,
    mask: Tensor | None = None,
    global_tokens: int = 0,
    global_qkv: tuple[Tensor, Tensor, Tensor] | None = None,
) -> Tensor:
    r"""Longformer attention: dilated sliding window + symmetric global attention.

    The window (and global-key) part runs in the fused kernel
    ([`softmax_attention`][implementations._helpers.softmax_attention]) over each block's keys;
    [`reference_attention`][implementations.longformer.reference_attention] materialises the scores.

    Args:
        q: Queries ``[b, h, n, d]`` (the window projections $Q_s$).
        k: Keys ``[b, h, n, d]`` ($K_s$).
        v: Values ``[b, h, n, d]`` ($V_s$).
        window: $w$, the full window; each side has $\lfloor w / 2 \rfloor$ positions.
        dilation: $d$, the gap between attended positions.
        causal: Keep only the left half of the window (and causal global attention).
        mask: Bool key-padding mask ``[b, n]``, True = real token.
        global_tokens: The first ``global_tokens`` positions attend to, and are attended
            by, every position.
        global_qkv: $(Q_g, K_g, V_g)$ for the global rows: $Q_g$ ``[b, h, g', d]`` for the
            first $g' \ge g$ positions (e.g. just the global ones), $K_g, V_g$
            ``[b, h, n, d]``; defaults to ``(q, k, v)``.

    Returns:
        ``[b, h, n, d]``.

    Examples:
        >>> import torch
        >>> from implementations.longformer import attention
        >>> q = torch.randn(2, 4, 50, 8)
        >>> attention(q, q, q, window=8, dilation=2, global_tokens=3).shape
        torch.Size([2, 4, 50, 8])
    """
    b, _, n, d = q.shape
    half = window // 2
    g = min(global_tokens, n)
    scale = 1.0 / math.sqrt(d)
    if mask is None:
        mask = torch.ones(b, n, dtype=torch.bool, device=q.device)  # [b, n] bools: cheap
    blocks = _dilated_windows(q, k, v, mask, half, dilation, causal, g)
    keys, values = blocks.k, blocks.v  # [b, h, r, nb, L, d]
    allowed = blocks.allowed  # [b, 1, r, nb, c, L]

    if g > 0:
        # Every query also sees the g global keys (K_s), appended to its block's keys.
        k_glob, v_glob = k[:, :, :g], v[:, :, :g]  # [b, h, g, d]
        lead = blocks.q.shape[:-2]  # [b, h, r, nb]
        keys = torch.cat([keys, k_glob[:, :, None, None].expand(*lead, -1, -1)], dim=-2)
        values = torch.cat([values, v_glob[:, :, None, None].expand(*lead, -1, -1)], dim=-2)
        glob_ok = _global_keys_ok(mask, g, causal, dilation, blocks.q.shape[-2])
        shape = torch.broadcast_shapes(allowed.shape[:-1], glob_ok.shape[:-1])
        allowed = torch.cat(
            [allowed.expand(*shape, -1), glob_ok.expand(*shape, -1)], dim=-1
        )  # [b, 1, r, nb, c, L + g]

    # Fused softmax over [window keys; global keys] for every block of every class.
    out = softmax_attention(blocks.q, keys, values, allowed, scale=scale)  # [b, h, r, nb, c, d]

    return _merge_with_global_rows(out, q, k, v, mask, g, causal, global_qkv)


def reference_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    window: int,
    dilation: int = 1,
    causal: bool = False,
    mask: Tensor | None = None,
    global_tokens: int = 0,
    global_qkv: tuple[Tensor, Tensor, Tensor] | None = None,
) -> Tensor:
    r"""The readable form of [`attention`][implementations.longformer.attention]: scores
    materialised (same result).

    Examples:
        >>> import torch
        >>> from implementations.longformer import attention, reference_attention
        >>> q = torch.randn(2, 4, 50, 8)
        >>> torch.allclose(reference_attention(q, q, q, window=8, dilation=2, global_tokens=3),
        ...                attention(q, q, q, window=8, dilation=2, global_tokens=3), atol=1e-6)
        True
    """
    b, _, n, d = q.shape
    half = window // 2
    g = min(global_tokens, n)
    scale = 1.0 / math.sqrt(d)
    mask = torch.ones(b, n, dtype=torch.bool, device=q.device) if mask is None else mask
    blocks = _dilated_windows(q, k, v, mask, half, dilation, causal, g)
    scores = torch.einsum("...cd,...ld->...cl", blocks.q, blocks.k) * scale  # [b, h, r, nb, c, L]
    allowed = blocks.allowed  # [b, 1, r, nb, c, L]

    if g > 0:
        # Every query also scores the g global keys (K_s), in the same block layout.
        k_glob, v_glob = k[:, :, :g], v[:, :, :g]  # [b, h, g, d]
        glob_scores = torch.einsum("bhrncd,bhgd->bhrncg", blocks.q, k_glob) * scale
        glob_ok = _global_keys_ok(mask, g, causal, dilation, blocks.q.shape[-2])
        scores = torch.cat([scores, glob_scores], dim=-1)  # [b, h, r, nb, c, L + g]
        shape = torch.broadcast_shapes(allowed.shape[:-1], glob_ok.shape[:-1])
        allowed = torch.cat(
            [allowed.expand(*shape, -1), glob_ok.expand(*shape, -1)], dim=-1
        )  # [b, 1, r, nb, c, L + g]

    probs = masked_softmax(scores, allowed)
    length = blocks.k.shape[-2]
    out = torch.einsum("...cl,...ld->...cd", probs[..., :length], blocks.v)  # [b, h, r, nb, c, d]
    if g > 0:
        out = out + torch.einsum("bhrncg,bhgd->bhrncd", probs[..., length:], v_glob)

    return _merge_with_global_rows(out, q, k, v, mask, g, causal, global_qkv)


@register("longformer", kind="attention", supports_causal=True)
class Longformer(nn.Module):
    """Longformer self-attention: dilated sliding window plus symmetric global tokens.

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: Left-only window (autoregressive language modelling).
        attention_window: $w$, full window size (both sides together); must be even.
        attention_dilation: $d$, an int for all heads or a sequence with one int per head.
        global_tokens: Number of leading positions with global attention (they get
            separate projections $Q_g, K_g, V_g$).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build(
        ...     "longformer", dim=32, heads=4, attention_window=8,
        ...     attention_dilation=(1, 1, 2, 2), global_tokens=1,
        ... )
        >>> x = torch.randn(2, 50, 32)
        >>> mask = torch.ones(2, 50, dtype=torch.bool)
        >>> mask[1, 40:] = False  # the second sequence has 40 real tokens
        >>> layer(x, mask).shape
        torch.Size([2, 50, 32])
    """

    # Checked by implementations.build; other integers lie in [1, 2**20].
    option_ranges: ClassVar[dict[str, Range]] = {"global_tokens": (0, 2**20)}

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        attention_window: int = 512,
        attention_dilation: int | Sequence[int] = 1,
        global_tokens: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(attention_window, int) or attention_window < 2 or attention_window % 2:
            raise ValueError(
                f"attention_window must be a positive even int, got {attention_window!r}"
            )
        dilations = (
            (attention_dilation,) * heads
            if isinstance(attention_dilation, int)
            else tuple(attention_dilation)
        )
        if len(dilations) != heads or not all(isinstance(r, int) and r >= 1 for r in dilations):
            raise ValueError(
                "attention_dilation must be an int >= 1 or one int >= 1 per head "
                f"({heads} heads), got {attention_dilation!r}"
            )
        if not isinstance(global_tokens, int) or global_tokens < 0:
            raise ValueError(f"global_tokens must be an int >= 0, got {global_tokens!r}")
        self.causal = causal
        self.heads = heads
        self.attention_window = attention_window
        self.dilations = dilations
        self.global_tokens = global_tokens
        self.proj = HeadProjections(dim, heads)  # Q_s, K_s, V_s and the shared W_O
        if global_tokens > 0:
            inner = self.proj.heads * self.proj.dim_head
            self.to_q_global = nn.Linear(dim, inner, bias=False)  # Q_g
            self.to_k_global = nn.Linear(dim, inner, bias=False)  # K_g
            self.to_v_global = nn.Linear(dim, inner, bias=False)  # V_g

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        mask = default_mask(mask, x)
        q, k, v = self.proj.qkv(x)  # [b, h, n, d] each
        global_qkv = None
        if self.global_tokens > 0:
            g = min(self.global_tokens, x.shape[1])
            global_qkv = (
                split_heads(self.to_q_global(x[:, :g]), self.heads),  # [b, h, g, d]: global rows
                split_heads(self.to_k_global(x), self.heads),  # [b, h, n, d]
                split_heads(self.to_v_global(x), self.heads),  # [b, h, n, d]
            )
        if len(set(self.dilations)) == 1:
            o = attention(
                q,
                k,
                v,
                window=self.attention_window,
                dilation=self.dilations[0],
                causal=self.causal,
                mask=mask,
                global_tokens=self.global_tokens,
                global_qkv=global_qkv,
            )
            return self.proj.out(o)  # [b, n, dim]

        # Per-head dilations: heads that share a dilation are processed together.
        o = torch.empty_like(q)  # [b, h, n, d]
        for dilation in sorted(set(self.dilations)):
            heads = torch.tensor(
                [i for i, r in enumerate(self.dilations) if r == dilation], device=x.device
            )
            sub_qkv = None
            if global_qkv is not None:
                q_g, k_g, v_g = global_qkv
                sub_qkv = (q_g[:, heads], k_g[:, heads], v_g[:, heads])
            o[:, heads] = attention(
                q[:, heads],
                k[:, heads],
                v[:, heads],
                window=self.attention_window,
                dilation=dilation,
                causal=self.causal,
                mask=mask,
                global_tokens=self.global_tokens,
                global_qkv=sub_qkv,
            )
        return self.proj.out(o)
