r"""TokenLearner: pool the input into $S$ learned tokens with spatial attention maps.

Paper: *TokenLearner: What Can 8 Learned Tokens Do for Images and Videos?*, Michael S.
Ryoo, AJ Piergiovanni, Anurag Arnab, Mostafa Dehghani and Anelia Angelova, NeurIPS 2021
(arXiv:2106.11297).

Instead of attending over all $n$ input tokens (patches of an image, space-time tubes of
a video), later layers run on $S \ll n$ (the paper: 8) tokens that are **learned from
the input**. Token $i$ is a weighted pooling of the input under its own spatial
attention map:

$$
z_i = A_i(X) = \rho\big(X \odot \gamma(\alpha_i(X))\big), \qquad i = 1, \dots, S,
$$

where $\alpha_i(X) \in \mathbb{R}^{n}$ is a per-position map computed from $X$ itself,
$\gamma$ broadcasts it over the channels and $\rho$ is spatial global average pooling.
The $S$ maps come from one small network applied position-wise; we use the paper's MLP
variant (for images the paper also uses a few $3 \times 3$ convolutions), after a
LayerNorm:

$$
[\alpha_1(X), \dots, \alpha_S(X)] = \sigma\big(\mathrm{MLP}(\mathrm{LN}(X))\big)
\in \mathbb{R}^{n \times S},
\qquad
z_i = \frac{1}{n} \sum_{p=1}^{n} \alpha_i(X)_p \, x_p .
$$

With ``normalization="softmax"`` the map is instead normalised over the positions,
$z_i = \sum_p \mathrm{softmax}_p(\mathrm{MLP}(\mathrm{LN}(X))_{p,i})\, x_p$ (TokenLearner
v1.1 in the authors' release). Either way the cost is $O(nSd)$ and every later layer
runs on $S$ tokens.

The output has $S$ = ``num_tokens`` positions for any input length, all real. With a
key-padding mask, padded positions get weight exactly 0 and the average runs over the
real positions only. Tokens pool over the whole input, so there is no causal variant.
The paper's TokenFuser (mapping the tokens back to $n$ positions) is not part of this
module. ``heads`` is accepted for the common interface and unused: TokenLearner has no
attention heads.

Hyper-parameters:

* ``num_tokens``: $S$, the number of learned tokens (paper: 8).
* ``mlp_dim``: hidden width of the map-generating MLP (the release's bottleneck: 64).
* ``normalization``: ``"sigmoid"`` (the paper's equation: sigmoid maps, average
  pooling) or ``"softmax"`` over positions (v1.1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from implementations._helpers import default_mask, masked_softmax, zero_padding
from implementations._registry import register

__all__ = ["TokenLearner"]


@register("tokenlearner", kind="downsample", supports_causal=False)
class TokenLearner(nn.Module):
    r"""Learn ``num_tokens`` tokens, each a pooling of the input under a learned map.

    Args:
        dim: Model width $d$.
        heads: Unused (TokenLearner has no heads); accepted for the common interface.
        causal: Must be False.
        num_tokens: $S$, the output length.
        mlp_dim: Hidden width of the position-wise MLP that produces the $S$ maps.
        normalization: ``"sigmoid"`` (average pooling of sigmoid-weighted inputs) or
            ``"softmax"`` (weights normalised over the positions).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("tokenlearner", dim=32, heads=4)
        >>> x = torch.randn(2, 100, 32)
        >>> layer(x).shape, layer.output_length(100)
        (torch.Size([2, 8, 32]), 8)
        >>> layer.attention_maps(x).shape  # one map over the 100 positions per token
        torch.Size([2, 8, 100])
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        num_tokens: int = 8,
        mlp_dim: int = 64,
        normalization: str = "sigmoid",
    ) -> None:
        super().__init__()
        if causal:
            raise ValueError("tokenlearner does not support causal=True")
        if num_tokens < 1:
            raise ValueError(f"num_tokens must be >= 1, got {num_tokens}")
        if mlp_dim < 1:
            raise ValueError(f"mlp_dim must be >= 1, got {mlp_dim}")
        if normalization not in ("sigmoid", "softmax"):
            raise ValueError(f"normalization must be 'sigmoid' or 'softmax', got {normalization!r}")
        self.num_tokens = num_tokens
        self.normalization = normalization
        self.norm = nn.LayerNorm(dim)
        # alpha(X): position-wise MLP, one output per learned token.
        self.maps = nn.Sequential(
            nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, num_tokens)
        )

    def output_length(self, n: int) -> int:
        """Always ``num_tokens``, whatever the input length ``n``."""
        return self.num_tokens

    def output_mask(self, mask: Tensor) -> Tensor:
        """Every learned token is real: all True ``[b, num_tokens]``."""
        return torch.ones(mask.shape[0], self.num_tokens, dtype=torch.bool, device=mask.device)

    def attention_maps(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """The pooling weights ``[b, S, n]``: token $i$ is ``weights[:, i] @ x``.

        Padded positions (``mask`` False) have weight exactly 0.
        """
        mask = default_mask(mask, x)
        logits = self.maps(self.norm(x)).transpose(1, 2)  # [b, n, S] -> [b, S, n]
        real = mask[:, None, :]  # [b, 1, n]
        if self.normalization == "softmax":
            return masked_softmax(logits, real)
        # rho = average pooling over the real positions of the sigmoid-weighted input.
        count = mask.sum(-1).clamp(min=1)[:, None, None].to(logits.dtype)  # [b, 1, 1]
        return torch.sigmoid(logits).masked_fill(~real, 0) / count

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[b, n, dim]``, ``mask`` bool ``[b, n]`` -> tokens ``[b, num_tokens, dim]``."""
        weights = self.attention_maps(x, mask)  # [b, S, n]
        # Zero padded inputs too: a weight of 0 times a non-finite value would still leak.
        return weights @ zero_padding(x, mask)  # [b, S, dim]
