r"""Luna: a fixed-length sequence packs the input (pack attention), the input unpacks it.

Paper: *Luna: Linear Unified Nested Attention*, Xuezhe Ma, Xiang Kong, Sinong Wang,
Chunting Zhou, Jonathan May, Hao Ma and Luke Zettlemoyer, NeurIPS 2021
(arXiv:2106.01540).

Luna adds a second input to every attention layer: a sequence $P \in \mathbb{R}^{l
\times d}$ of fixed length $l$ (a learned parameter for the first layer, then the
previous layer's packed output). Attention is split into two nested attentions, each
linear in $n$:

$$
\text{pack:}\quad Y_P = \mathrm{Attn}(P, X) =
\mathrm{softmax}\!\left(\frac{P W_{pq}\, (X W_{pk})^\top}{\sqrt{d_k}}\right) X W_{pv}
\;\in \mathbb{R}^{l \times d},
$$

$$
\text{unpack:}\quad Y_X = \mathrm{Attn}(X, Y_P) =
\mathrm{softmax}\!\left(\frac{X W_q\, (Y_P W_k)^\top}{\sqrt{d_k}}\right) Y_P W_v
\;\in \mathbb{R}^{n \times d},
$$

(multi-head, followed by the output projection). The $l$ queries of $P$ summarise the
$n$ tokens into $Y_P$, an $l \times n$ attention; the tokens then read that summary, an
$n \times l$ attention: $O(nl)$ time and memory. A Luna layer returns both $Y_X$ and
$Y_P$; the next layer's packed input is $P' = \mathrm{LayerNorm}(Y_P + P)$ (see
[`Luna.pack_unpack`][implementations.luna.Luna.pack_unpack]). Padded tokens are masked out of the
pack softmax, so they reach nothing.

**Causal Luna.** Each packed slot of the pack attention attends over the whole
sequence, so it would see the future. The causal variant gives every position $t$ its
own packed context built from the prefix $s \le t$, with the pack softmax replaced by
a non-negative activation that can be accumulated:

$$
A = \mathrm{elu}\!\left(\frac{X W_{pk}\, (P W_{pq})^\top}{\sqrt{d_k}}\right) + 1
\in \mathbb{R}^{n \times l},
\qquad
K_t = \frac{1}{t} \sum_{s \le t} A_s^\top (X_s W_k),
\quad
V_t = \frac{1}{t} \sum_{s \le t} A_s^\top (X_s W_v),
$$

$$
Y_t = \mathrm{softmax}\!\left(\frac{(X_t W_q)\, K_t^\top}{\sqrt{d_k}}\right) V_t .
$$

The $l \times d$ contexts $K_t, V_t$ are never materialised: with $q_t$, $k_s$, $v_s$
the projected tokens, the unpack logits are $q_t K_t^\top = \frac{1}{t}\sum_{s \le t}
(q_t \cdot k_s) A_s$ and the output $\alpha_t V_t = \frac{1}{t}\sum_{s \le t}
(\alpha_t \cdot A_s)\, v_s$, two causal linear-attention prefix sums
([`causal_linear_attention`][implementations._helpers.causal_linear_attention], chunked). With a
padding mask, padded tokens are dropped from the sums and $t$ counts real tokens. In the
causal form $P$ only supplies the pack queries; there is no single packed output to
carry forward.

Following the authors' code, the key and value projections are tied by default
(``tie_kv``: one projection gives both keys and values, in the pack and in the unpack
attention), the projections have biases, and $P$ of the first layer is initialised
$\mathcal{N}(0, d^{-1})$.

Hyper-parameters:

* ``projected_length``: $l$, the length of $P$ (the paper reports $l = 16$ to $256$;
  small $l$ already works well).
* ``tie_kv``: share the key and value projections.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import (
    causal_linear_attention,
    merge_heads,
    softmax_attention,
    split_heads,
)
from implementations._registry import register

__all__ = ["Luna", "causal_pack_unpack", "pack", "unpack"]


def pack(pq: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    r"""Pack attention $\mathrm{softmax}(P_Q K^\top / \sqrt{d}) V$: ``l`` queries over ``n`` keys.

    Args:
        pq: Packed queries ``[b, h, l, d]``.
        k: Keys of the input ``[b, h, n, d]``.
        v: Values of the input ``[b, h, n, dv]``.
        mask: Key-padding mask ``[b, n]``, True = real.

    Returns:
        ``[b, h, l, dv]``; zeros for a sequence without real tokens.

    Examples:
        >>> import torch
        >>> from implementations.luna import pack
        >>> pack(torch.randn(2, 4, 3, 8), torch.randn(2, 4, 10, 8), torch.randn(2, 4, 10, 8)).shape
        torch.Size([2, 4, 3, 8])
    """
    allowed = None if mask is None else mask[:, None, None, :]  # [b, 1, 1, n]
    return softmax_attention(pq, k, v, mask=allowed)


def unpack(q: Tensor, packed_k: Tensor, packed_v: Tensor) -> Tensor:
    r"""Unpack attention: ``n`` queries over the ``l`` packed keys and values.

    Examples:
        >>> import torch
        >>> from implementations.luna import unpack
        >>> unpack(torch.randn(2, 4, 10, 8), torch.randn(2, 4, 3, 8), torch.randn(2, 4, 3, 8)).shape
        torch.Size([2, 4, 10, 8])
    """
    return softmax_attention(q, packed_k, packed_v)


def causal_pack_unpack(
    q: Tensor, k: Tensor, v: Tensor, pack_weights: Tensor, mask: Tensor | None = None
) -> Tensor:
    r"""Causal Luna, $Y_t = \mathrm{softmax}(q_t K_t^\top / \sqrt{d})\, V_t$, by prefix sums.

    The prefix-packed contexts $K_t = \frac{1}{t}\sum_{s \le t} A_s^\top k_s$ and
    $V_t = \frac{1}{t}\sum_{s \le t} A_s^\top v_s$ enter only through two prefix sums,
    so they are never materialised.

    Args:
        q: Unpack queries ``[b, h, n, d]``.
        k: Keys of the tokens ``[b, h, n, d]``.
        v: Values of the tokens ``[b, h, n, dv]``.
        pack_weights: $A$ ``[b, h, n, l]``, non-negative.
        mask: Key-padding mask ``[b, n]``, True = real; padded tokens are left out of
            the sums and of the count $t$.

    Returns:
        ``[b, h, n, dv]``.

    Examples:
        >>> import torch
        >>> from implementations.luna import causal_pack_unpack
        >>> q = torch.randn(2, 4, 10, 8)
        >>> causal_pack_unpack(q, q, q, torch.rand(2, 4, 10, 3)).shape
        torch.Size([2, 4, 10, 8])
    """
    n = q.shape[-2]
    if mask is None:
        count = torch.arange(1, n + 1, device=q.device, dtype=torch.float32)  # [n]
    else:
        real = mask[:, None, :, None]  # [b, 1, n, 1]
        pack_weights = pack_weights.masked_fill(~real, 0)
        k, v = k.masked_fill(~real, 0), v.masked_fill(~real, 0)
        count = mask.float().cumsum(-1)[:, None, :]  # [b, 1, n]: real tokens so far
    count = count.clamp_min(1).unsqueeze(-1)  # [.., n, 1]
    q, k, pack_weights = q.float() * q.shape[-1] ** -0.5, k.float(), pack_weights.float()
    # q_t K_t^T = (1/t) sum_{s<=t} (q_t . k_s) A_s: linear attention with A as values.
    logits = causal_linear_attention(q, k, pack_weights) / count  # [b, h, n, l]
    probs = logits.softmax(dim=-1)  # [b, h, n, l]
    # probs_t V_t = (1/t) sum_{s<=t} (probs_t . A_s) v_s: A as keys, probs as queries.
    out = causal_linear_attention(probs, pack_weights, v.float()) / count  # [b, h, n, dv]
    return out.to(v.dtype)


@register("luna", kind="attention", supports_causal=True)
class Luna(nn.Module):
    r"""Multi-head Luna attention (pack then unpack; or its causal prefix form).

    ``forward`` follows the attention contract and packs the learned $P$ of this layer.
    To stack Luna layers as in the paper, call `pack_unpack` with the previous
    layer's $P$ and carry the packed output forward.

    Args:
        dim: Model width.
        heads: Number of heads (pack and unpack attention alike).
        causal: The causal (prefix-packed) variant.
        projected_length: $l$, the length of the packed sequence $P$.
        tie_kv: One projection for keys and values.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("luna", dim=32, heads=4, projected_length=8)
        >>> x = torch.randn(2, 37, 32)
        >>> mask = torch.ones(2, 37, dtype=torch.bool)
        >>> mask[1, 30:] = False  # the second sequence has 30 real tokens
        >>> layer(x, mask).shape
        torch.Size([2, 37, 32])
        >>> # Stacking: the packed output Y_P becomes the next layer's P = LN(Y_P + P).
        >>> y, packed = layer.pack_unpack(x, mask=mask)
        >>> p_next = torch.nn.functional.layer_norm(packed + layer.p, (32,))
        >>> y2, _ = layer.pack_unpack(y, p=p_next, mask=mask)
        >>> packed.shape, y2.shape
        (torch.Size([2, 8, 32]), torch.Size([2, 37, 32]))
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        projected_length: int = 16,
        tie_kv: bool = True,
    ) -> None:
        super().__init__()
        if projected_length < 1:
            raise ValueError(f"projected_length must be a positive integer, got {projected_length}")
        self.causal = causal
        self.heads = heads
        self.tie_kv = tie_kv
        # P of the first layer: a learned [l, dim] sequence.
        self.p = nn.Parameter(torch.randn(projected_length, dim) * dim**-0.5)
        self.to_pack_q = nn.Linear(dim, dim)  # W_pq, applied to P
        self.to_pack_k = nn.Linear(dim, dim)  # W_pk (= W_pv when tied), applied to X
        if not causal and not tie_kv:
            # The causal form packs the unpack keys/values instead: no separate W_pv.
            self.to_pack_v = nn.Linear(dim, dim)
        self.to_q = nn.Linear(dim, dim)  # W_q, applied to X
        # W_k (= W_v when tied): on the packed Y_P, or on X in the causal form.
        self.to_k = nn.Linear(dim, dim)
        if not tie_kv:
            self.to_v = nn.Linear(dim, dim)
        self.to_out = nn.Linear(dim, dim)

    def _keys_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Unpack keys and values ``[b, h, m, d]`` of ``x`` (``Y_P``, or the tokens if causal)."""
        k = split_heads(self.to_k(x), self.heads)  # [b, h, m, d]
        v = k if self.tie_kv else split_heads(self.to_v(x), self.heads)  # [b, h, m, d]
        return k, v

    def pack_unpack(
        self, x: Tensor, p: Tensor | None = None, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        r"""One Luna attention on ``x`` ``[b, n, dim]`` with packed input ``p``.

        Args:
            x: The tokens.
            p: $P$, ``[b, l, dim]`` or ``[l, dim]``; None uses this layer's learned ``p``.
            mask: Key-padding mask ``[b, n]``, True = real.

        Returns:
            ``(y [b, n, dim], packed)``: ``packed`` is $Y_P$ ``[b, l, dim]`` (the heads
            merged, before any output projection; the next layer's $P$ is
            $\mathrm{LayerNorm}(Y_P + P)$), or None in the causal form.
        """
        p = self.p if p is None else p
        if p.dim() == 2:
            p = p.expand(x.shape[0], -1, -1)  # [b, l, dim]
        pq = split_heads(self.to_pack_q(p), self.heads)  # [b, h, l, d]

        if self.causal:
            pk = split_heads(self.to_pack_k(x), self.heads)  # [b, h, n, d]
            scores = pk @ pq.transpose(-1, -2) * pq.shape[-1] ** -0.5  # [b, h, n, l]
            pack_weights = F.elu(scores) + 1  # A: non-negative, accumulable
            q = split_heads(self.to_q(x), self.heads)  # [b, h, n, d]
            k, v = self._keys_values(x)  # [b, h, n, d] each
            o = causal_pack_unpack(q, k, v, pack_weights, mask=mask)  # [b, h, n, d]
            return self.to_out(merge_heads(o)), None

        pk = split_heads(self.to_pack_k(x), self.heads)  # [b, h, n, d]
        pv = pk if self.tie_kv else split_heads(self.to_pack_v(x), self.heads)  # [b, h, n, d]
        packed = merge_heads(pack(pq, pk, pv, mask=mask))  # [b, l, dim]: Y_P
        q = split_heads(self.to_q(x), self.heads)  # [b, h, n, d]
        k, v = self._keys_values(packed)  # [b, h, l, d] each
        o = unpack(q, k, v)  # [b, h, n, d]
        return self.to_out(merge_heads(o)), packed

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        return self.pack_unpack(x, mask=mask)[0]
