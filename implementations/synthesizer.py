r"""Synthesizer: attention weights synthesised without query-key dot products.

Paper: *Synthesizer: Rethinking Self-Attention for Transformer Models*, Yi Tay, Dara
Bahri, Donald Metzler, Da-Cheng Juan, Zhe Zhao and Che Zheng, ICML 2021
(arXiv:2005.00743).

Dot-product attention computes the $n \times n$ alignment from pairs of tokens,
$\mathrm{softmax}(QK^\top / \sqrt{d})$. The Synthesizer asks whether the pairwise
interaction is needed, and *synthesises* the logits $B \in \mathbb{R}^{n \times \ell}$
instead (per head), then mixes the values as usual:

$$
Y = \mathrm{softmax}(B)\, G(X), \qquad G(X) = X W_V .
$$

**Dense Synthesizer**: each token predicts its own row of logits over the $\ell$
positions with a two-layer network, independently of every other token,

$$
B_i = F(X_i) = W_2\, \sigma_R(W_1 X_i + b_1) + b_2,
\qquad W_1 \in \mathbb{R}^{d \times d},\; W_2 \in \mathbb{R}^{d \times \ell} .
$$

With $h$ heads, $W_1$ maps to $h$ blocks of $d / h$ and each head has its own
$W_2 \in \mathbb{R}^{(d/h) \times \ell}$: $d^2 + d\ell$ parameters per layer.

**Random Synthesizer**: the logits are a parameter $R \in \mathbb{R}^{\ell \times \ell}$
per head, *independent of the input*: $Y = \mathrm{softmax}(R)\, G(X)$, either learned
or kept fixed at its random initialisation.

**Factorised variants** save parameters. Factorised Dense predicts $A = F_A(X_i) \in
\mathbb{R}^{a}$ and $B = F_B(X_i) \in \mathbb{R}^{b}$ with $a b = \ell$ and combines
them by tiling, $C = H_A(A) \ast H_B(B)$, where $H_A$ repeats the vector $A$ $b$ times
and $H_B$ repeats each entry of $B$ $a$ times (so $C_j = A_{j \bmod a}\, B_{\lfloor j /
a \rfloor}$, an outer product). Factorised Random uses the low-rank $R = R_1 R_2^\top$,
$R_1, R_2 \in \mathbb{R}^{\ell \times k}$.

The logits are defined over positions $1..\ell$ = ``max_seq_len``; a sequence of $n \le
\ell$ tokens uses the first $n$ columns (and rows, for Random). Padded keys and, with
``causal=True``, future keys are masked out of the softmax, so the decoder form is the
same synthesised matrix with its upper triangle removed.

Complexity: still $O(n^2)$ time and memory (the paper's point is dropping the
dot product, not the $n \times n$ matrix); Random needs no token-token computation at
all.

**Fused form.** Dense logits are a dot product after all, of $[\sigma_R(W_1 X_i + b_1), 1]$
with the columns of $[W_2; b_2]$: row $m$ of $W_2^\top$ with $b_{2,m}$ appended is a "key"
for position $m$. So $\mathrm{softmax}(B)\,G(X)$ is exact attention with those queries and
keys at scale 1, which the fused kernel computes without storing $B$; likewise
$R_1 R_2^\top$ of Factorised Random. ``forward`` takes that path
([`score_factors`][implementations.synthesizer.Synthesizer.score_factors]);
[`attention`][implementations.synthesizer.attention] over
[`logits`][implementations.synthesizer.Synthesizer.logits] is the readable form, and the tests
hold the two equal. The fused kernel needs one head size for $q$, $k$ and $v$, so $v$ gets a
zero column for the appended coordinate.

**Where the time goes**: materialised, the logits, a mask, the softmax and their backward
took 0.75 s of a training step of the quality benchmark's model at n = 2048 (width 64, 4
heads, one thread; exact attention's step 0.18 s); fused, 0.22 s bidirectional and 0.15 s
causal. At n = 8192 (dim 512, 8 heads) the fused forward takes 2.1 s, as exact attention
does, where the materialised one took 7.6 s.

Hyper-parameters:

* ``variant``: ``"dense"``, ``"random"``, ``"factorized-dense"`` or
  ``"factorized-random"``.
* ``max_seq_len``: $\ell$, the number of positions the logits cover (longest input).
* ``fixed``: Random variants only: keep $R$ (or $R_1, R_2$) at its random
  initialisation instead of learning it (the paper's "Fixed Random").
* ``rank``: $k$ of Factorised Random (the paper uses 8).
* ``dense_factors``: $(a, b)$ of Factorised Dense, $ab = \ell$; None picks the most
  nearly square factorisation of $\ell$.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import (
    causal_mask,
    masked_softmax,
    merge_heads,
    softmax_attention,
    split_heads,
)
from implementations._registry import register

__all__ = ["Synthesizer", "attention"]

Variant = Literal["dense", "random", "factorized-dense", "factorized-random"]
_VARIANTS = ("dense", "random", "factorized-dense", "factorized-random")


def attention(
    logits: Tensor, v: Tensor, mask: Tensor | None = None, causal: bool = False
) -> Tensor:
    r"""$\mathrm{softmax}(B)\, V$ for synthesised logits $B$.

    Args:
        logits: ``[b, h, n, n]`` or ``[h, n, n]`` (input-independent, Random).
        v: ``[b, h, n, dv]``.
        mask: Key-padding mask ``[b, n]``, True = real.
        causal: Query $i$ sees keys $j \le i$.

    Returns:
        ``[b, h, n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations.synthesizer import attention
        >>> v = torch.randn(2, 4, 10, 8)
        >>> attention(torch.randn(4, 10, 10), v, causal=True).shape
        torch.Size([2, 4, 10, 8])
    """
    return torch.einsum("...ij,...jd->...id", _weights(logits, mask, causal), v)


def _weights(logits: Tensor, mask: Tensor | None, causal: bool) -> Tensor:
    """Masked softmax of the synthesised logits -> ``[b or 1, h, n, n]``."""
    n = logits.shape[-1]
    # No mask at all without padding or causality: masking with an all-True one copied the
    # n x n logits (a fifth of a training step at n = 2048).
    allowed = None if mask is None else mask[:, None, None, :]  # [b, 1, 1, n]
    if causal:
        future = causal_mask(n, n, device=logits.device)  # [n, n]
        allowed = future if allowed is None else allowed & future  # [.., n, n]
    if logits.dim() == 3:
        logits = logits.unsqueeze(0)  # [1, h, n, n]: the same for every sequence
    return masked_softmax(logits, allowed)


def _square_factors(length: int) -> tuple[int, int]:
    """``(a, b)`` with ``a * b == length`` and ``a <= b`` as close as possible."""
    a = max(d for d in range(1, math.isqrt(length) + 1) if length % d == 0)
    return a, length // a


@register("synthesizer", kind="attention", supports_causal=True)
class Synthesizer(nn.Module):
    r"""Multi-head Synthesizer attention (Dense, Random, or their factorised forms).

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: Mask the future out of the synthesised weights.
        variant: ``"dense"``, ``"random"``, ``"factorized-dense"``, ``"factorized-random"``.
        max_seq_len: $\ell$, the longest input.
        fixed: Random variants: do not learn the random logits.
        rank: $k$ of Factorised Random.
        dense_factors: $(a, b)$ of Factorised Dense with $ab = \ell$ (None: nearly square).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("synthesizer", dim=32, heads=4, max_seq_len=64)
        >>> x = torch.randn(2, 37, 32)
        >>> layer(x).shape
        torch.Size([2, 37, 32])
        >>> random = implementations.build(
        ...     "synthesizer", dim=32, heads=4, causal=True, variant="random", max_seq_len=64
        ... )
        >>> random.attention_weights(x).shape  # [1, heads, n, n]: the same for all inputs
        torch.Size([1, 4, 37, 37])
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        variant: Variant = "dense",
        max_seq_len: int = 512,
        fixed: bool = False,
        rank: int = 8,
        dense_factors: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {_VARIANTS}, got {variant!r}")
        if max_seq_len < 1:
            raise ValueError(f"max_seq_len must be a positive integer, got {max_seq_len}")
        if fixed and variant not in ("random", "factorized-random"):
            raise ValueError("fixed=True applies to the random variants only")
        if rank < 1:
            raise ValueError(f"rank must be a positive integer, got {rank}")
        if dense_factors is not None:
            if variant != "factorized-dense":
                raise ValueError("dense_factors applies to variant='factorized-dense' only")
            if len(dense_factors) != 2 or math.prod(dense_factors) != max_seq_len:
                raise ValueError(
                    f"dense_factors must be (a, b) with a * b == max_seq_len ({max_seq_len}), "
                    f"got {dense_factors}"
                )
        self.causal = causal
        self.variant = variant
        self.heads = heads
        self.max_seq_len = max_seq_len
        dim_head = dim // heads
        length = max_seq_len

        # G(X): the values, and the usual output projection.
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

        if variant in ("dense", "factorized-dense"):
            # F(X_i) = W_2 relu(W_1 X_i + b_1) + b_2, W_1 split into heads, W_2 per head.
            self.to_hidden = nn.Linear(dim, dim)
            factors = dense_factors or _square_factors(length)
            widths = [length] if variant == "dense" else list(factors)
            bound = dim_head**-0.5  # nn.Linear's default initialisation range
            self.w2 = nn.ParameterList(
                nn.Parameter(torch.empty(heads, dim_head, w).uniform_(-bound, bound))
                for w in widths
            )  # W_2 (dense) or W_A, W_B (factorised): [h, d_head, width]
            self.b2 = nn.ParameterList(nn.Parameter(torch.zeros(heads, w)) for w in widths)
        else:
            # R [h, l, l], or R_1, R_2 [h, l, k] scaled so that R_1 R_2^T has unit variance.
            if variant == "random":
                tensors = [torch.randn(heads, length, length)]
            else:
                tensors = [torch.randn(heads, length, rank) * rank**-0.25 for _ in range(2)]
            # Fixed Random keeps them frozen (requires_grad=False) at their initialisation.
            self.random = nn.ParameterList(
                nn.Parameter(t, requires_grad=not fixed) for t in tensors
            )

    def logits(self, x: Tensor) -> Tensor:
        """The synthesised logits: ``[b, h, n, n]`` (dense variants) or ``[h, n, n]`` (random)."""
        n = x.shape[1]
        self._check_length(n)
        if self.variant == "random":
            (r,) = self.random
            return r[:, :n, :n]  # [h, n, n]
        if self.variant == "factorized-random":
            r1, r2 = self.random
            return r1[:, :n] @ r2[:, :n].transpose(-1, -2)  # [h, n, n]: R_1 R_2^T

        hidden = split_heads(torch.relu(self.to_hidden(x)), self.heads)  # [b, h, n, d_head]
        if self.variant == "dense":
            # Only the first n of the l output positions are needed.
            w2, b2 = self.w2[0][..., :n], self.b2[0][:, None, :n]  # [h, d_head, n], [h, 1, n]
            return torch.einsum("bhnd,hdm->bhnm", hidden, w2) + b2  # [b, h, n, n]
        f_a, f_b = (
            torch.einsum("bhnd,hdw->bhnw", hidden, w) + b[:, None, :]
            for w, b in zip(self.w2, self.b2, strict=True)
        )  # A = F_A(X_i) [b, h, n, a], B = F_B(X_i) [b, h, n, b]
        # C_j = A_{j mod a} * B_{j // a}: H_A tiles A b times, H_B repeats each B_j a times.
        tiled = (f_b.unsqueeze(-1) * f_a.unsqueeze(-2)).flatten(-2)  # [b, h, n, a * b = l]
        return tiled[..., :n]  # [b, h, n, n]

    def score_factors(self, x: Tensor) -> tuple[Tensor, Tensor] | None:
        r"""``(q, k)`` whose product ``q @ k^T`` is the logits, or None (no such factors).

        Dense: $q_i = [\sigma_R(W_1 X_i + b_1), 1]$ ``[b, h, n, d_head + 1]`` and
        $k_m = [W_{2,:,m}, b_{2,m}]$ ``[h, n, d_head + 1]``; Factorised Random: $R_1$, $R_2$
        ``[h, n, k]``. The Random and Factorised Dense logits are no dot product. See
        [`logits`][implementations.synthesizer.Synthesizer.logits].
        """
        n = x.shape[1]
        self._check_length(n)
        if self.variant == "factorized-random":
            r1, r2 = self.random
            return r1[:, :n], r2[:, :n]  # [h, n, k] each
        if self.variant != "dense":
            return None
        hidden = split_heads(torch.relu(self.to_hidden(x)), self.heads)  # [b, h, n, d_head]
        q = torch.cat([hidden, hidden.new_ones(*hidden.shape[:-1], 1)], dim=-1)  # [b, h, n, d+1]
        w2, b2 = self.w2[0][..., :n], self.b2[0][:, :n]  # [h, d_head, n], [h, n]
        k = torch.cat([w2.transpose(-1, -2), b2[..., None]], dim=-1)  # [h, n, d_head + 1]
        return q, k

    def _check_length(self, n: int) -> None:
        """Raise ValueError when ``n`` is longer than the logits cover."""
        if n > self.max_seq_len:
            raise ValueError(
                f"sequence length {n} exceeds max_seq_len={self.max_seq_len}; "
                "build the layer with a larger max_seq_len"
            )

    def attention_weights(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        r"""$\mathrm{softmax}(B)$ after masking: ``[b, h, n, n]`` (``[1, h, n, n]`` for Random)."""
        return _weights(self.logits(x), mask, self.causal)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        v = split_heads(self.to_v(x), self.heads)  # [b, h, n, d_head]: G(X)
        factors = self.score_factors(x)
        if factors is None:
            o = attention(self.logits(x), v, mask=mask, causal=self.causal)  # [b, h, n, d_head]
        else:
            q, k = factors  # softmax(q k^T) V at scale 1 (module docstring, fused form)
            n = x.shape[1]
            allowed = None if mask is None else mask[:, None, None, :]  # [b, 1, 1, n]
            if self.causal and allowed is not None:
                allowed = allowed & causal_mask(n, n, device=x.device)  # [b, 1, n, n]
            causal = self.causal and allowed is None  # the kernel's own causal path
            # The fused CPU kernel wants one head size for q, k and v: pad v with zeros.
            v_padded = F.pad(v, (0, q.shape[-1] - v.shape[-1]))  # [b, h, n, width of q]
            o = softmax_attention(q, k, v_padded, allowed, scale=1.0, causal=causal)
            o = o[..., : v.shape[-1]]  # [b, h, n, d_head]
        return self.to_out(merge_heads(o))  # [b, n, dim]
