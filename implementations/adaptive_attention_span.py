r"""Adaptive Attention Span: every head learns how far back it looks.

Paper: *Adaptive Attention Span in Transformers*, Sainbayar Sukhbaatar, Edouard Grave, Piotr
Bojanowski and Armand Joulin, ACL 2019 (arXiv:1905.07799).

A head of a character-level language model attends to at most $S$ previous positions (the
*maximum span*). Inside that window, the attention weight of key $r$ for query $t$ is
multiplied by a soft mask of the distance $x = t - r$,

$$
m_z(x) = \min\!\Big(\max\!\Big(\frac{R + z - x}{R},\, 0\Big),\, 1\Big),
\qquad
a_{tr} = \frac{m_z(t - r)\, \exp(s_{tr})}{\sum_{q = t - S + 1}^{t} m_z(t - q)\, \exp(s_{tq})},
$$

with $s_{tr} = q_t^\top k_r / \sqrt{d}$. The mask is 1 up to distance $z$, falls linearly to 0
over a ramp of $R$ positions, and is 0 beyond $z + R$: a window whose length $z$ is a real
number, so it can be learned by gradient descent. Each head has its own $z_i \in [0, S]$
(here $z_i = S \cdot \rho_i$ with the learned ratio $\rho_i$ clamped to $[0, 1]$, as in the
authors' code). An $\ell_1$ penalty on the spans is added to the training loss,

$$
\mathcal{L}_{span} = \lambda \cdot \frac{1}{H} \sum_{i=1}^{H} z_i ,
$$

left after each forward as the ``aux_loss`` attribute
([`implementations.apply`][implementations.apply] adds it to the layer's auxiliary loss). A head
whose span shrinks makes the attention cheaper: as in the authors' code, the key window is
trimmed to the largest learned span, $\min(S, \lceil \max_i z_i + R\,\rceil)$ positions (weights
beyond $z_i + R$ are exactly 0, so the output is the same as over the maximal span), as a band:
$O(n S d)$ time and $O(n S)$ memory at worst, never $n \times n$. The window's length is read
from the parameters; on the ``meta`` device (FLOP and memory counting), which holds no values,
it is the maximal span $S$, the paper's worst case.

**Where the time goes**: the soft mask enters as a bias that needs a gradient, so the scores are
materialised (the fused kernel cannot differentiate an additive mask). Over the maximal span at
$n = 2048$ (width 64, 4 heads, one thread) a training step spent 1.7 s, a third of it in the
``where`` and division of the bias and mask over ``[h, n, n]``; trimmed to the learned spans
(a few hundred positions early in training), the same step costs a fraction of that.

Writing $m \exp(s) = \exp(s + \log m)$, the masked softmax is a softmax of the scores plus the
bias $\log m_z$ (keys where $m_z = 0$ are masked out instead, so no $\log 0$ is formed).

``causal=True`` is the paper's language model (keys $t - S < r \le t$).
``causal=False`` is our bidirectional form, not in the paper: keys within $S - 1$ positions on
either side, with the mask applied to the absolute distance $|t - r|$.

Hyper-parameters (the authors' enwik8 settings): ``max_span`` $S$ = 8192, ``ramp`` $R$ = 32,
``span_loss`` $\lambda$ = 5e-7 (``--adapt-span-loss 0.0000005`` in the released enwik8 script)
and ``span_init``, the initial ratio $z_i / S$ (0 in the released code: every head starts with a
span of $R$).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from implementations._helpers import (
    HeadProjections,
    default_mask,
    sliding_window_blocks,
    softmax_attention,
)
from implementations._registry import Range, register

__all__ = ["AdaptiveAttentionSpan", "soft_span_mask", "span_attention"]


def soft_span_mask(distance: Tensor, span: Tensor, ramp: int) -> Tensor:
    r"""The soft mask $m_z(x) = \mathrm{clamp}((R + z - x) / R, 0, 1)$ of every head.

    Args:
        distance: ``[...]`` distances $x \ge 0$ between query and key.
        span: ``[h]`` the spans $z_i$.
        ramp: $R$, the length of the linear ramp from 1 to 0.

    Returns:
        ``[h, ...]`` float32 values in $[0, 1]$.

    Examples:
        >>> import torch
        >>> from implementations.adaptive_attention_span import soft_span_mask
        >>> soft_span_mask(torch.arange(6.0), torch.tensor([2.0]), ramp=2)
        tensor([[1.0000, 1.0000, 1.0000, 0.5000, 0.0000, 0.0000]])
    """
    z = span.float().reshape(-1, *([1] * distance.dim()))  # [h, 1, ..., 1]
    return ((ramp + z - distance.float()) / ramp).clamp(0, 1)  # [h, ...]


def span_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    span: Tensor,
    max_span: int,
    ramp: int,
    causal: bool = True,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Attention over the last ``max_span`` keys, each weight scaled by $m_{z_i}$.

    Args:
        q: ``[b, h, n, d]``.
        k: ``[b, h, n, d]``.
        v: ``[b, h, n, dv]``.
        span: ``[h]`` learned spans $z_i$ in $[0, S]$.
        max_span: $S$: query $t$ sees keys at distance $0 .. S - 1$.
        ramp: $R$.
        causal: Keys $r \le t$ only; else both sides, by absolute distance.
        mask: Bool key-padding mask ``[b, n]``, True = real token.

    Returns:
        ``[b, h, n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations.adaptive_attention_span import span_attention
        >>> q = torch.randn(1, 2, 10, 4)
        >>> span_attention(q, q, q, torch.tensor([0.0, 3.0]), max_span=6, ramp=2).shape
        torch.Size([1, 2, 10, 4])
    """
    n = q.shape[-2]
    if mask is None:
        mask = torch.ones(q.shape[0], n, dtype=torch.bool, device=q.device)
    reach = max_span - 1
    if not span.is_meta:  # keys beyond the largest z_i + R have weight 0: leave them out
        reach = min(reach, math.ceil(float(span.detach().max()) + ramp))
    blocks = sliding_window_blocks(
        q, k, v, before=reach, after=0 if causal else reach, mask=mask[:, None, :]
    )  # q: [b, h, nb, c, d]; k, v: [b, h, nb, L, d]; allowed: [b, 1, nb, c, L]
    distance = blocks.offset.abs()  # [c, L], the same in every block
    m = soft_span_mask(distance, span, ramp)  # [h, c, L]
    # m exp(s) = exp(s + log m); where m = 0 the key is masked instead of biased by log 0
    # (clamping first keeps the gradient finite there: d log m / dz is 0, not 0 * inf).
    bias = m.clamp_min(torch.finfo(torch.float32).tiny).log()[None, :, None]  # [1, h, 1, c, L]
    allowed = blocks.allowed & (m > 0)[None, :, None]  # [b, h, nb, c, L]
    o = softmax_attention(blocks.q, blocks.k, blocks.v, allowed, bias=bias.to(q.dtype))
    return o.flatten(-3, -2)[..., :n, :]  # [b, h, n, dv]


@register("adaptive-attention-span", kind="attention", supports_causal=True)
class AdaptiveAttentionSpan(nn.Module):
    r"""Multi-head attention whose heads each learn a soft span $z_i \le S$.

    After each forward, ``aux_loss`` holds the span penalty $\lambda \cdot \mathrm{mean}_i z_i$
    (add it to the training loss).

    Args:
        dim: Model width.
        heads: Number of heads $H$.
        causal: The paper's language model (keys up to the query); else both sides.
        max_span: $S$, the longest span a head can learn.
        ramp: $R$, the length of the soft mask's ramp.
        span_loss: $\lambda$, the coefficient of the span penalty.
        span_init: The initial $z_i / S$ of every head.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("adaptive-attention-span", dim=32, heads=4,
        ...                               causal=True, max_span=16, ramp=4)
        >>> layer(torch.randn(2, 20, 32)).shape
        torch.Size([2, 20, 32])
        >>> layer.spans().tolist()  # every head starts at z = S * span_init = 0
        [0.0, 0.0, 0.0, 0.0]
        >>> layer.aux_loss.item()
        0.0
    """

    # Checked by implementations.build; other integers lie in [1, 2**20].
    option_ranges: ClassVar[dict[str, Range]] = {
        "span_loss": (0.0, math.inf, "[)"),
        "span_init": (0.0, 1.0),
    }

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        causal: bool = False,
        *,
        max_span: int = 8192,
        ramp: int = 32,
        span_loss: float = 5e-7,
        span_init: float = 0.0,
    ) -> None:
        super().__init__()
        if max_span < 1 or ramp < 1:
            raise ValueError(f"max_span and ramp must be >= 1, got {max_span} and {ramp}")
        if not 0.0 <= span_loss < math.inf:
            raise ValueError(f"span_loss must be in [0, inf), got {span_loss}")
        if not 0.0 <= span_init <= 1.0:
            raise ValueError(f"span_init must be in [0, 1], got {span_init}")
        self.heads, self.causal = heads, causal
        self.max_span, self.ramp, self.span_loss = max_span, ramp, span_loss
        self.proj = HeadProjections(dim, heads)
        # rho_i = z_i / S, one per head (the authors' parameterisation).
        self.span_ratio = nn.Parameter(torch.full((heads,), float(span_init)))
        self.aux_loss: Tensor = torch.zeros(())

    def spans(self) -> Tensor:
        r"""The spans $z_i = S \cdot \mathrm{clamp}(\rho_i, 0, 1)$, ``[heads]``."""
        return self.span_ratio.clamp(0, 1) * self.max_span

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        mask = default_mask(mask, x)
        q, k, v = self.proj.qkv(x)  # [b, h, n, d]
        z = self.spans()  # [h]
        o = span_attention(q, k, v, z, self.max_span, self.ramp, self.causal, mask)
        # L_span = lambda * mean_i z_i
        self.aux_loss = (self.span_loss * z.float().mean()).float()
        return self.proj.out(o)
