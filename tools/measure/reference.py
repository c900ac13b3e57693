"""The dense feed-forward layer that feed-forward mechanisms are compared with.

A mixture of experts, a product-key memory or a sparse feed-forward layer replaces the
dense feed-forward layer of a Transformer block, not its attention: it is measured bare
(no attention around it) and compared with :class:`DenseFeedForward`, measured the same
way under the key :data:`DENSE_FFN`. The reference has the width of one expert of the
mechanisms' defaults (``d_model`` to ``d_ff = 4 d_model`` and back, ReLU, with biases):
the parameters that one token activates in a top-1 mixture of experts.

Examples:
    >>> layer = DenseFeedForward(8)
    >>> y, aux = layer(torch.zeros(1, 3, 8))
    >>> tuple(y.shape), float(aux)
    ((1, 3, 8), 0.0)
    >>> reference_key("ffn", causal=True), reference_key("attention", causal=False)
    ('dense-ffn', 'dense')
"""

from __future__ import annotations

import torch
from torch import nn

# The result key of the dense feed-forward reference in a measurement file.
DENSE_FFN = "dense-ffn"
# The hidden width of the reference, as a multiple of d_model (every ffn default's).
FFN_MULTIPLE = 4
DESCRIPTION = (
    "a dense two-layer feed-forward layer, d_model → 4·d_model → d_model with ReLU "
    "(one expert's width: the parameters a top-1 mixture activates per token), measured bare"
)


class DenseFeedForward(nn.Module):
    """``Linear(d, 4d) → ReLU → Linear(4d, d)``, returning ``(y, 0)`` like the ffn kind."""

    def __init__(self, dim: int, multiple: int = FFN_MULTIPLE) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(dim, multiple * dim), nn.ReLU(), nn.Linear(multiple * dim, dim)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.layers(x), x.new_zeros(())


def reference_key(kind: str, causal: bool) -> str:
    """The result a mechanism of ``kind`` is compared with: the dense feed-forward layer
    for feed-forward mechanisms (causality changes nothing in it), else exact attention."""
    if kind == "ffn":
        return DENSE_FFN
    return "dense:causal" if causal else "dense"
