r"""Set Transformer: induced set attention (ISAB) and pooling by multihead attention (PMA).

Paper: *Set Transformer: A Framework for Attention-based Permutation-Invariant Neural
Networks*, Juho Lee, Yoonho Lee, Jungtaek Kim, Adam R. Kosiorek, Seungjin Choi and
Yee Whye Teh, ICML 2019 (arXiv:1810.00825).

The building block is the **multihead attention block** between two sets
$X \in \mathbb{R}^{n \times d}$ (queries) and $Y \in \mathbb{R}^{m \times d}$ (keys and
values):

$$
\mathrm{MAB}(X, Y) = \mathrm{LN}\big(H + \mathrm{rFF}(H)\big), \qquad
H = \mathrm{LN}\big(X + \mathrm{Multihead}(X, Y, Y)\big),
$$

with $\mathrm{rFF}$ a row-wise feed-forward layer. Self-attention over a set,
$\mathrm{SAB}(X) = \mathrm{MAB}(X, X)$, costs $O(n^2)$. The **induced set attention block**
routes it through $m$ learned *inducing points* $I \in \mathbb{R}^{m \times d}$:

$$
\mathrm{ISAB}_m(X) = \mathrm{MAB}(X, H), \qquad H = \mathrm{MAB}(I, X) \in \mathbb{R}^{m \times d},
$$

first summarising the set into $m$ vectors, then letting every element attend to the
summary: $O(n m)$ time and memory, and still permutation equivariant
($\mathrm{ISAB}(\pi X) = \pi\, \mathrm{ISAB}(X)$).

**Pooling by multihead attention** turns a set into $k$ vectors with $k$ learned seeds
$S \in \mathbb{R}^{k \times d}$: $\mathrm{PMA}_k(Z) = \mathrm{MAB}(S, \mathrm{rFF}(Z))$,
which is permutation invariant.

**What is registered.** ``set-transformer`` is the ISAB as an ``attention``-kind layer:
the inner block $H = \mathrm{MAB}(I, X)$ is computed in full (its residuals, layer norms
and rFF included), and the layer returns the outer block's attention term
$\mathrm{Multihead}(X, H, H)$. The outer block's residual, layer norm and feed-forward
are the ones of the Transformer block that hosts the layer, so in
[`Transformer`][implementations.transformer.Transformer] a layer computes
$X + \mathrm{Multihead}(\mathrm{LN}(X), H, H)$ followed by the usual feed-forward, the
pre-norm form of $\mathrm{MAB}(X, H)$.
[`PoolingByMultiheadAttention`][implementations.set_transformer.PoolingByMultiheadAttention] (PMA)
is available from this module as a plain ``nn.Module`` whose output has ``num_seeds`` positions; it
is the decoder head of the paper's models, not a drop-in self-attention. Sets have no order, so
``causal=True`` is not supported. Padded elements (mask False) are excluded from every attention
over the set.

Hyper-parameters:
    num_inducing_points: $m$, the number of inducing points (16 or 32 in the paper's
        experiments; 32 in the authors' code).
    layer_norm: whether the MABs apply their layer norms (the equations above); the
        authors' experiments also run without them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from implementations._helpers import HeadProjections, default_mask, softmax_attention
from implementations._registry import register

__all__ = ["InducedSetAttention", "MultiheadAttentionBlock", "PoolingByMultiheadAttention"]


class MultiheadAttentionBlock(nn.Module):
    r"""The multihead attention block $\mathrm{MAB}(X, Y)$ of the module docstring.

    $\mathrm{MAB}(X, Y) = \mathrm{LN}(H + \mathrm{rFF}(H))$ with
    $H = \mathrm{LN}(X + \mathrm{Multihead}(X, Y, Y))$. The row-wise feed-forward is
    $\mathrm{rFF}(h) = \mathrm{ReLU}(W h + b)$, as in the authors' code (the paper allows
    any row-wise layer).

    Args:
        dim: Width $d$ of both sets.
        heads: Number of heads.
        layer_norm: Apply the two layer norms (identity otherwise).

    Examples:
        >>> import torch
        >>> from implementations.set_transformer import MultiheadAttentionBlock
        >>> mab = MultiheadAttentionBlock(dim=16, heads=4)
        >>> mab(torch.randn(2, 3, 16), torch.randn(2, 10, 16)).shape
        torch.Size([2, 3, 16])
    """

    def __init__(self, dim: int, heads: int, layer_norm: bool = True) -> None:
        super().__init__()
        self.attention = HeadProjections(dim, heads)
        self.rff = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
        self.norm_1 = nn.LayerNorm(dim) if layer_norm else nn.Identity()
        self.norm_2 = nn.LayerNorm(dim) if layer_norm else nn.Identity()

    def forward(self, x: Tensor, y: Tensor, mask_y: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, d]`` attends to ``y`` ``[b, m, d]`` (mask ``[b, m]``) -> ``[b, n, d]``."""
        q, k, v = self.attention.qkv(x, context=y)  # [b, h, n, e], [b, h, m, e] x 2
        keys_ok = None if mask_y is None else mask_y[:, None, None, :]  # [b, 1, 1, m]
        h = self.norm_1(x + self.attention.out(softmax_attention(q, k, v, keys_ok)))  # [b, n, d]
        return self.norm_2(h + self.rff(h))


@register("set-transformer", kind="attention", supports_causal=False)
class InducedSetAttention(nn.Module):
    r"""ISAB: the set attends to $H = \mathrm{MAB}(I, X)$, a summary by $m$ inducing points.

    Returns $\mathrm{Multihead}(X, H, H)$, the attention term of $\mathrm{MAB}(X, H)$ (the
    hosting Transformer block adds the residual and the feed-forward).

    Args:
        dim: Model width.
        heads: Number of heads.
        causal: Must be False (sets are unordered).
        num_inducing_points: $m$.
        layer_norm: Use the layer norms of the inner MAB.

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("set-transformer", dim=32, heads=4, num_inducing_points=8)
        >>> x = torch.randn(2, 100, 32)  # two sets of 100 elements
        >>> mask = torch.ones(2, 100, dtype=torch.bool)
        >>> mask[1, 60:] = False  # the second set has 60 elements
        >>> layer(x, mask).shape
        torch.Size([2, 100, 32])
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        num_inducing_points: int = 32,
        layer_norm: bool = True,
    ) -> None:
        super().__init__()
        if causal:
            raise ValueError("causal=True is not supported: a set has no order")
        if not isinstance(num_inducing_points, int) or num_inducing_points < 1:
            raise ValueError(
                f"num_inducing_points must be an int >= 1, got {num_inducing_points!r}"
            )
        self.inducing_points = nn.Parameter(torch.empty(num_inducing_points, dim))  # I
        nn.init.xavier_uniform_(self.inducing_points)
        self.summarise = MultiheadAttentionBlock(dim, heads, layer_norm)  # H = MAB(I, X)
        self.attend = HeadProjections(dim, heads)  # Multihead(X, H, H)

    def induced(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        r"""$H = \mathrm{MAB}(I, X)$: ``x`` ``[b, n, dim]`` -> ``[b, m, dim]``."""
        inducing = self.inducing_points.expand(x.shape[0], -1, -1)  # [b, m, dim]
        return self.summarise(inducing, x, mask)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, n, dim]``."""
        mask = default_mask(mask, x)
        h = self.induced(x, mask)  # [b, m, dim]: O(n m)
        q, k, v = self.attend.qkv(x, context=h)  # [b, h, n, e], [b, h, m, e] x 2
        return self.attend.out(softmax_attention(q, k, v))  # O(n m)


class PoolingByMultiheadAttention(nn.Module):
    r"""PMA: $\mathrm{PMA}_k(Z) = \mathrm{MAB}(S, \mathrm{rFF}(Z))$ with $k$ learned seed vectors.

    Permutation invariant: the output has ``num_seeds`` positions whatever the set size
    ([`output_length`][implementations.set_transformer.PoolingByMultiheadAttention.output_length]);
    ``num_seeds = 1`` pools a set into one vector.

    Args:
        dim: Model width.
        heads: Number of heads.
        num_seeds: $k$, the number of outputs.
        layer_norm: Use the layer norms of the MAB.

    Examples:
        >>> import torch
        >>> from implementations.set_transformer import PoolingByMultiheadAttention
        >>> pma = PoolingByMultiheadAttention(dim=32, heads=4, num_seeds=2)
        >>> pma(torch.randn(3, 50, 32)).shape
        torch.Size([3, 2, 32])
    """

    def __init__(self, dim: int, heads: int, num_seeds: int = 1, layer_norm: bool = True) -> None:
        super().__init__()
        if not isinstance(num_seeds, int) or num_seeds < 1:
            raise ValueError(f"num_seeds must be an int >= 1, got {num_seeds!r}")
        self.seeds = nn.Parameter(torch.empty(num_seeds, dim))  # S
        nn.init.xavier_uniform_(self.seeds)
        self.rff = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
        self.mab = MultiheadAttentionBlock(dim, heads, layer_norm)

    def output_length(self, n: int) -> int:
        """The number of outputs: ``num_seeds``, for any set size ``n``."""
        return self.seeds.shape[0]

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` (True = real) -> ``[b, k, dim]``."""
        seeds = self.seeds.expand(x.shape[0], -1, -1)  # [b, k, dim]
        return self.mab(seeds, self.rff(x), mask)
