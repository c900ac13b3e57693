r"""Dense (full) softmax attention, the baseline every efficient mechanism is compared with.

Paper: *Attention Is All You Need*, Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez,
Kaiser and Polosukhin, 2017 (arXiv:1706.03762).

Each head $i$ projects the input $X \in \mathbb{R}^{n \times d_{model}}$ to queries,
keys and values and mixes every position with every other:

$$
\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V,
\qquad Q = X W_i^Q,\; K = X W_i^K,\; V = X W_i^V,
$$

$$
\mathrm{MultiHead}(X) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h)\, W^O .
$$

The $n \times n$ score matrix makes time and memory $O(n^2)$ in the sequence length:
the cost every other mechanism of the catalog tries to avoid. With ``causal=True``
position $i$ only sees positions $j \le i$ (the decoder's masked self-attention).

The core runs through `torch.nn.functional.scaled_dot_product_attention`, which
dispatches to fused kernels (FlashAttention, memory-efficient attention) where available:
they still compute exact attention, with $O(n)$ extra memory but $O(n^2)$ time.

Hyper-parameters: none beyond ``dim`` (model width $d_{model}$), ``heads`` ($h$) and
``causal``; $d_k = d_{model} / h$.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import HeadProjections, causal_mask
from implementations._registry import register

__all__ = ["Dense", "attention"]


def attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, causal: bool = False
) -> Tensor:
    r"""Exact $\mathrm{softmax}(QK^\top / \sqrt{d})\,V$.

    Args:
        q: Queries ``[b, h, nq, d]``.
        k: Keys ``[b, h, nk, d]``.
        v: Values ``[b, h, nk, dv]``.
        mask: Bool, True = may attend. Either a key-padding mask ``[b, nk]`` or any
            mask broadcastable to ``[b, h, nq, nk]``.
        causal: Query ``i`` sees key ``j`` only if ``j <= i + (nk - nq)`` (queries
            aligned with the last keys, see [`causal_mask`][implementations._helpers.causal_mask]).

    Returns:
        ``[b, h, nq, dv]``; a query that may attend to no key gets zeros.

    Examples:
        >>> import torch
        >>> from implementations.dense import attention
        >>> q = torch.randn(2, 4, 10, 8)
        >>> attention(q, q, q, causal=True).shape
        torch.Size([2, 4, 10, 8])
    """
    nq, nk = q.shape[-2], k.shape[-2]
    if mask is None and (not causal or nq == nk):
        # Fast path: the fused kernels handle square causal masks without materialising them.
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    allowed = torch.ones(1, 1, 1, 1, dtype=torch.bool, device=q.device)
    if mask is not None:
        # A key-padding mask [b, nk] becomes [b, 1, 1, nk]; others broadcast as given.
        allowed = mask[:, None, None, :] if mask.dim() == 2 else mask
    if causal:
        allowed = allowed & causal_mask(nq, nk, device=q.device)  # [.., nq, nk]
    # A query with no visible key (e.g. a left-padded position under a causal mask)
    # would softmax over nothing. Let it see every key (finite, no NaN), then zero it.
    has_key = allowed.any(dim=-1, keepdim=True)  # [.., nq, 1]
    allowed = allowed | ~has_key
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    return out.masked_fill(~has_key, 0)


@register("dense", kind="attention", supports_causal=True)
class Dense(nn.Module):
    """Multi-head softmax attention over all pairs of positions.

    Args:
        dim: Model width $d_{model}$.
        heads: Number of heads $h$.
        causal: Mask the future (autoregressive decoding).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("dense", dim=32, heads=4, causal=True)
        >>> x = torch.randn(2, 37, 32)
        >>> mask = torch.ones(2, 37, dtype=torch.bool)
        >>> mask[1, 30:] = False  # the second sequence has 30 real tokens
        >>> layer(x, mask).shape
        torch.Size([2, 37, 32])
    """

    def __init__(self, dim: int, heads: int, causal: bool = False) -> None:
        super().__init__()
        self.causal = causal
        self.proj = HeadProjections(dim, heads)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        q, k, v = self.proj.qkv(x)  # [b, h, n, d] each
        o = attention(q, k, v, mask=mask, causal=self.causal)  # [b, h, n, d]
        return self.proj.out(o)
