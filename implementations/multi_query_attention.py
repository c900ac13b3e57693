r"""Multi-query attention (MQA): every query head shares one key head and one value head.

Paper: *Fast Transformer Decoding: One Write-Head is All You Need*, Noam Shazeer, 2019
(arXiv:1911.02150).

Multi-head attention projects keys and values once per head. Multi-query attention keeps $h$
query heads but a **single** key and value projection shared by all of them:

$$
\mathrm{head}_i = \mathrm{softmax}\!\left(\frac{Q_i K^\top}{\sqrt{d_k}}\right) V,
\qquad Q_i = X W^Q_i,\; K = X W^K,\; V = X W^V,
$$

$$
\mathrm{MultiQuery}(X) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h)\, W^O ,
$$

with $W^K, W^V \in \mathbb{R}^{d_{model} \times d_k}$ instead of $h$ of each. Training costs
the same $O(n^2 d)$ arithmetic as multi-head attention.

**The key/value cache is the point.** Incremental decoding generates one token at a time and,
at every step, re-reads the keys and values of all previous positions. The paper's analysis:
with multi-head attention the memory traffic of these tensors, $\Theta(b\, n\, h\, d_k)$ per
step, dominates the arithmetic once $n \approx d$, so decoding is memory-bandwidth bound. With
one key/value head the cache is $2 \cdot n \cdot d_k$ numbers per layer and sequence instead of
$2 \cdot n \cdot h \cdot d_k$, $h$ times smaller, and so is the traffic; the paper measures
decoding an order of magnitude faster at a small loss of quality.
[`step`][implementations.grouped_query_attention.GroupedQueryAttention.step] decodes with this
cache (``[b, 1, t, d_k]`` keys and values after $t$ tokens, one position appended per step),
and equals the causal forward.

MQA is grouped-query attention with one group ($g = 1$): the layer is
[`GroupedQueryAttention`][implementations.grouped_query_attention.GroupedQueryAttention] with
``kv_heads=1``, whose core never copies the shared keys and values per head (the fused
kernel's grouped form, or the $h$ query heads stacked along the query axis: the batched form
of the paper's einsum ``"bhnk,bmk->bhnm"``, in which keys carry no head index).

Hyper-parameters: none beyond ``dim``, ``heads`` and ``causal``.
"""

from __future__ import annotations

from implementations._registry import register
from implementations.grouped_query_attention import GroupedQueryAttention

__all__ = ["MultiQueryAttention"]


@register("multi-query-attention", kind="attention", supports_causal=True)
class MultiQueryAttention(GroupedQueryAttention):
    """Multi-head queries over a single shared key head and value head.

    Args:
        dim: Model width.
        heads: Query heads $h$.
        causal: Mask the future (autoregressive decoding; enables ``step``).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("multi-query-attention", dim=32, heads=4, causal=True)
        >>> layer.proj.to_k.weight.shape  # one key head of width 8, not four
        torch.Size([8, 32])
        >>> x = torch.randn(2, 7, 32)
        >>> y = layer(x)
        >>> state, steps = layer.init_state(2), []
        >>> for t in range(7):
        ...     y_t, state = layer.step(x[:, t], state)
        ...     steps.append(y_t)
        >>> torch.allclose(torch.stack(steps, dim=1), y, atol=1e-5)
        True
        >>> state.keys.shape  # the cache after 7 tokens: [b, 1, t, d_k]
        torch.Size([2, 1, 7, 8])
    """

    def __init__(self, dim: int, heads: int = 8, causal: bool = False) -> None:
        super().__init__(dim, heads, causal, kv_heads=1)
