r"""ETC: global-local attention between a few global tokens and a long, locally attending input.

Paper: *ETC: Encoding Long and Structured Inputs in Transformers*, Joshua Ainslie,
Santiago Ontañón, Chris Alberti, Vaclav Cvicek, Zachary Fisher, Philip Pham, Anirudh
Ravula, Sumit Sanghai, Qifan Wang and Li Yang, EMNLP 2020 (arXiv:2004.08483).

ETC's input has two parts: a *global input* $x^g$ of $n_g$ tokens and a *long input*
$x^l$ of $n_l \gg n_g$ tokens. Attention is split into four pieces:

* **g2g**, **g2l**: a global token attends to every global and every long token;
* **l2g**: a long token attends to every global token;
* **l2l**: a long token attends only to the long tokens within a radius $r$,
  $|i - j| \le r$.

The pieces that share a query are fused under one softmax, so a long token's output is

$$
y^l_i = \sum_{j \in \mathcal{G} \,\cup\, \{j : |i - j| \le r\}}
\mathrm{softmax}_j\!\left(\frac{q_i \cdot (k_j + a^K_{\ell(i, j)}) + \beta_{\ell(i, j)}}
{\sqrt{d_k}}\right) v_j ,
$$

and a global token's output is the same sum over all $n_g + n_l$ tokens. Information
flows between distant long tokens through the global tokens, and the cost is
$O(n_g^2 + n_g n_l + n_l r)$ instead of $O(n^2)$. With $r \ge n_l$ (and no relative
terms) this is exactly full attention over the concatenation $[x^g; x^l]$.

**Relative positions** replace absolute ones (Shaw et al., 2018): the pair $(i, j)$ gets
a learned vector $a^K_\ell$ and bias $\beta_\ell$ (per head) for the label
$\ell(i, j) = \mathrm{clip}(j - i, -k, k)$ within the long input and within the global
input. ETC uses further labels to encode structure between the two inputs (which
sentence a token belongs to); without such structure every long-global pair here gets
one extra label. Queries, keys and values use one set of projections for all four
pieces (ETC's default sharing); the global and long outputs have separate output
projections.

**How the global input is formed.** This layer keeps the library's single-sequence
interface: the **first** ``global_tokens`` positions of ``x`` are the global input and the
rest is the long input. The caller places the global tokens there (e.g. one summary token
per sentence or paragraph, or a CLS token); their states are carried from layer to layer
like the long tokens', as in ETC. The output keeps that layout. The l2l band is computed
block by block ([`sliding_window_blocks`][implementations._helpers.sliding_window_blocks]), never as
an $n \times n$ mask. ETC is an encoder, so ``causal=True`` is not supported. The paper's
CPC pre-training objective is a training loss, not part of the layer.

Hyper-parameters:
    global_tokens: $n_g$, how many leading positions form the global input (if the input
        is shorter, all of it is global).
    local_radius: $r$, how many long tokens to each side a long token attends to
        (84 in the paper's models).
    relative_max_distance: $k$, the clipping distance of the relative position labels
        (12 in the paper); ``None`` disables relative position terms.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from implementations._helpers import (
    HeadProjections,
    chunk,
    default_mask,
    masked_softmax,
    merge_heads,
    pad_to_multiple,
    sliding_window_blocks,
)
from implementations._registry import Range, register

__all__ = ["ETC", "attention"]


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    global_tokens: int,
    local_radius: int,
    mask: Tensor | None = None,
    relative: tuple[Tensor, Tensor] | None = None,
    max_distance: int = 0,
) -> Tensor:
    r"""Fused global-local attention: g2g + g2l for global rows, l2l (radius $r$) + l2g else.

    Args:
        q: Queries ``[b, h, n, d]``; the first ``global_tokens`` positions are global.
        k: Keys ``[b, h, n, d]``.
        v: Values ``[b, h, n, d]``.
        global_tokens: $n_g$.
        local_radius: $r$.
        mask: Bool key-padding mask ``[b, n]``, True = real token.
        relative: Optional ``(a, beta)``: relative key vectors ``[2k + 2, h, d]`` and biases
            ``[2k + 2, h]``; labels ``0 .. 2k`` are the clipped offsets $j - i + k$,
            label ``2k + 1`` marks long-global pairs.
        max_distance: $k$, the clipping distance (used with ``relative``).

    Returns:
        ``[b, h, n, d]`` (global rows first, as in the input).

    Examples:
        >>> import torch
        >>> from implementations.etc import attention
        >>> q = torch.randn(2, 4, 50, 8)
        >>> attention(q, q, q, global_tokens=3, local_radius=4).shape
        torch.Size([2, 4, 50, 8])
    """
    b, h, n, d = q.shape
    g = min(global_tokens, n)
    scale = 1.0 / math.sqrt(d)
    mask = torch.ones(b, n, dtype=torch.bool, device=q.device) if mask is None else mask
    cross = 2 * max_distance + 1  # the long-global label

    rel_scores = None
    if relative is not None:
        # q_i . a_l + beta_l for every query and label: [b, h, n, 2k + 2]; pairs gather theirs.
        a, beta = relative
        rel_scores = torch.einsum("bhnd,lhd->bhnl", q, a) + beta.t()[None, :, None, :]

    outputs = []
    if g > 0:
        # g2g + g2l: each global token attends to all n tokens.
        scores = torch.einsum("bhid,bhjd->bhij", q[:, :, :g], k)  # [b, h, g, n]
        if rel_scores is not None:
            i = torch.arange(g, device=q.device)[:, None]
            j = torch.arange(n, device=q.device)[None, :]
            label = torch.where(
                j < g, (j - i).clamp(-max_distance, max_distance) + max_distance, cross
            )  # [g, n]
            scores = scores + rel_scores[:, :, :g].gather(-1, label.expand(b, h, g, n))
        probs = masked_softmax(scores * scale, mask[:, None, None, :])
        outputs.append(probs @ v)  # [b, h, g, d]

    if n > g:
        # l2l within radius r, fused with l2g over the global tokens.
        n_long = n - g
        blocks = sliding_window_blocks(
            q[:, :, g:], k[:, :, g:], v[:, :, g:], local_radius, local_radius, mask[:, None, g:]
        )
        c = blocks.q.shape[-2]
        local = torch.einsum("...cd,...ld->...cl", blocks.q, blocks.k)  # [b, h, nb, c, L]
        to_global = torch.einsum("bhncd,bhgd->bhncg", blocks.q, k[:, :, :g])  # [b, h, nb, c, g]
        if rel_scores is not None:
            rel_long = chunk(pad_to_multiple(rel_scores[:, :, g:], c)[0], c)  # [b, h, nb, c, 2k+2]
            label = blocks.offset.clamp(-max_distance, max_distance) + max_distance  # [c, L]
            local = local + rel_long.gather(-1, label.expand(*local.shape))
            to_global = to_global + rel_long[..., cross : cross + 1]
        scores = torch.cat([local, to_global], dim=-1) * scale  # [b, h, nb, c, L + g]
        shape = (b, 1, *local.shape[2:4])
        allowed = torch.cat(
            [
                blocks.allowed.expand(*shape, -1),
                mask[:, None, None, None, :g].expand(*shape, -1),
            ],
            dim=-1,
        )  # [b, 1, nb, c, L + g]
        probs = masked_softmax(scores, allowed)
        length = local.shape[-1]
        out = probs[..., :length] @ blocks.v + probs[..., length:] @ v[:, :, None, :g]
        outputs.append(out.flatten(-3, -2)[:, :, :n_long])  # [b, h, n_l, d]
    return torch.cat(outputs, dim=2)


@register("etc", kind="attention", supports_causal=False)
class ETC(nn.Module):
    """ETC global-local attention; the first ``global_tokens`` positions are the global input.

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: Must be False (ETC is an encoder).
        global_tokens: $n_g$, number of leading positions that form the global input.
        local_radius: $r$, the l2l attention radius.
        relative_max_distance: $k$, clipping distance of relative position labels, or
            ``None`` for no relative position terms.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build(
        ...     "etc", dim=32, heads=4, global_tokens=4, local_radius=3
        ... )
        >>> x = torch.randn(2, 60, 32)  # 4 global tokens, then 56 long tokens
        >>> mask = torch.ones(2, 60, dtype=torch.bool)
        >>> mask[1, 50:] = False
        >>> layer(x, mask).shape
        torch.Size([2, 60, 32])
    """

    # Checked by implementations.build; other integers lie in [1, 2**20].
    option_ranges: ClassVar[dict[str, Range]] = {"global_tokens": (0, 2**20)}

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        global_tokens: int = 1,
        local_radius: int = 84,
        relative_max_distance: int | None = 12,
    ) -> None:
        super().__init__()
        if causal:
            raise ValueError("causal=True is not supported: ETC is an encoder")
        if not isinstance(global_tokens, int) or global_tokens < 0:
            raise ValueError(f"global_tokens must be an int >= 0, got {global_tokens!r}")
        if not isinstance(local_radius, int) or local_radius < 1:
            raise ValueError(f"local_radius must be an int >= 1, got {local_radius!r}")
        if relative_max_distance is not None and (
            not isinstance(relative_max_distance, int) or relative_max_distance < 1
        ):
            raise ValueError(
                f"relative_max_distance must be None or an int >= 1, got {relative_max_distance!r}"
            )
        self.global_tokens = global_tokens
        self.local_radius = local_radius
        self.relative_max_distance = relative_max_distance
        # One W_Q, W_K, W_V for all four pieces; proj.to_out is the long output projection.
        self.proj = HeadProjections(dim, heads)
        self.global_out = nn.Linear(self.proj.heads * self.proj.dim_head, dim)
        if relative_max_distance is not None:
            labels = 2 * relative_max_distance + 2  # clipped offsets, plus long-global
            self.relative_keys = nn.Parameter(
                torch.randn(labels, heads, self.proj.dim_head) * 0.02
            )  # a^K_l
            self.relative_bias = nn.Parameter(torch.zeros(labels, heads))  # beta_l

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        mask = default_mask(mask, x)
        g = min(self.global_tokens, x.shape[1])
        q, k, v = self.proj.qkv(x)  # [b, h, n, d] each
        relative = None
        if self.relative_max_distance is not None:
            relative = (self.relative_keys, self.relative_bias)
        o = attention(
            q,
            k,
            v,
            global_tokens=g,
            local_radius=self.local_radius,
            mask=mask,
            relative=relative,
            max_distance=self.relative_max_distance or 0,
        )  # [b, h, n, d]
        y_global = self.global_out(merge_heads(o[:, :, :g]))  # [b, g, dim]
        y_long = self.proj.out(o[:, :, g:])  # [b, n - g, dim]
        return torch.cat([y_global, y_long], dim=1)
