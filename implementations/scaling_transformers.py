r"""Sparse feed-forward layer of the Scaling Transformers (Terraformer).

Paper: *Sparse is Enough in Scaling Transformers*, Sebastian Jaszczur, Aakanksha
Chowdhery, Afroz Mohiuddin, Łukasz Kaiser, Wojciech Gajewski, Henryk Michalewski and
Jonni Kanerva, 2021 (NeurIPS; arXiv:2111.12763).

The $d_{ff}$ hidden units of the FFN are split into $d_{ff}/N$ blocks of $N$ units, and
a cheap *controller* lets exactly one unit per block be active for each token:

$$
Y_{sparse} = \max(0,\, x W_1 + b_1) \odot \mathrm{Controller}(x), \qquad
\mathrm{SparseFFN}(x) = Y_{sparse} W_2 + b_2 .
$$

The controller is low-rank, $x D_1 D_2 + b_c$ with $D_1 \in \mathbb{R}^{d_{model} \times
d_{lowrank}}$ and $D_2 \in \mathbb{R}^{d_{lowrank} \times d_{ff}}$, reshaped to
$[d_{ff}/N, N]$ logits $c$; its output is a one-hot vector per block:

* at inference, $\arg\max$ of each block, and only the chosen units are computed: the
  chosen columns of $W_1$ and rows of $W_2$ are gathered, so a token costs
  $O(d_{model} \cdot d_{ff}/N)$ instead of $O(d_{model} \cdot d_{ff})$ (the decoding
  speed-up the paper is about);
* in training, a Gumbel-softmax sample: the unit
  $\arg\max_j (\log \mathrm{softmax}(c)_j + \tau\, G_j)$ with Gumbel noise $G_j$ and
  temperature $\tau$, made differentiable
  with the straight-through estimator
  $m = \mathrm{onehot} + \mathrm{softmax}(c) - \mathrm{sg}(\mathrm{softmax}(c))$
  (forward: the one-hot; backward: the softmax's gradient). Training runs the dense
  FFN and multiplies by $m$, as the paper does.

Hyper-parameters (defaults of the authors' Trax ``SparseFF``):

* ``block_size`` ($N$, 32): units per block; one in $N$ units is active.
* ``d_lowrank`` (64): rank of the controller.
* ``temperature`` ($\tau$, 0.1): scale of the Gumbel noise in training.
* ``d_ff``: hidden width, default ``4 * dim``; must be a multiple of ``block_size``.

The Trax implementation also uses the soft mask instead of the one-hot in a fraction
(``quant_prob``) of training steps; we always use the straight-through one-hot.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._registry import Range, register

__all__ = ["SparseFeedForward"]


@register("scaling-transformers", kind="ffn", supports_causal=True)
class SparseFeedForward(nn.Module):
    r"""Sparse FFN: a low-rank controller picks one active unit per block of ``block_size``.

    Args:
        dim: Model width $d_{model}$.
        heads: Unused (feed-forward layer); accepted for the common interface.
        causal: Accepted; the layer is position-wise, hence causal either way.
        block_size: $N$, units per block.
        d_lowrank: Rank of the controller.
        temperature: Gumbel noise scale $\tau$ in training.
        d_ff: Hidden width (default ``4 * dim``).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("scaling-transformers", dim=32, heads=4)
        >>> y, aux_loss = layer.eval()(torch.randn(2, 10, 32))  # sparse inference path
        >>> y.shape, aux_loss.item()
        (torch.Size([2, 10, 32]), 0.0)
    """

    # Checked by implementations.build; other integers lie in [1, 2**20].
    option_ranges: ClassVar[dict[str, Range]] = {"temperature": (0.0, math.inf)}

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        block_size: int = 32,
        d_lowrank: int = 64,
        temperature: float = 0.1,
        d_ff: int | None = None,
    ) -> None:
        super().__init__()
        d_ff = 4 * dim if d_ff is None else d_ff
        if block_size <= 0 or d_ff <= 0 or d_ff % block_size:
            raise ValueError(
                f"d_ff ({d_ff}) must be a positive multiple of block_size ({block_size})"
            )
        if d_lowrank <= 0:
            raise ValueError(f"d_lowrank must be positive, got {d_lowrank}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        self.block_size = block_size
        self.n_blocks = d_ff // block_size
        self.temperature = temperature
        # Unit-major layouts ([d_ff, dim]) so that inference can gather the chosen units.
        self.w_in = nn.Parameter(torch.empty(d_ff, dim))  # W_1^T
        self.b_in = nn.Parameter(torch.empty(d_ff))  # b_1
        self.w_out = nn.Parameter(torch.empty(d_ff, dim))  # W_2
        self.b_out = nn.Parameter(torch.empty(dim))  # b_2
        # The nn.Linear default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        for w, fan_in in (
            (self.w_in, dim),
            (self.b_in, dim),
            (self.w_out, d_ff),
            (self.b_out, d_ff),
        ):
            nn.init.uniform_(w, -1.0 / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in))
        self.controller_down = nn.Linear(dim, d_lowrank, bias=False)  # D_1
        self.controller_up = nn.Linear(d_lowrank, d_ff)  # D_2 and the bias b_c

    def controller_logits(self, x: Tensor) -> Tensor:
        """$c = x D_1 D_2 + b_c$ per block: ``[..., dim] -> [..., d_ff / N, N]`` (float32)."""
        c = self.controller_up(self.controller_down(x)).float()  # [..., d_ff]
        return c.unflatten(-1, (self.n_blocks, self.block_size))  # [..., d_ff/N, N]

    def unit_mask(self, x: Tensor) -> Tensor:
        """The controller output ``[..., d_ff / N, N]``: one-hot per block.

        In training it is a straight-through Gumbel-softmax sample (forward values
        one-hot, gradient of the softmax); in eval mode the argmax, without gradient.
        """
        logits = self.controller_logits(x)  # [..., nb, N]
        if not self.training:
            return F.one_hot(logits.argmax(-1), self.block_size).to(x.dtype)
        log_p = logits.log_softmax(-1)
        # Gumbel(0, 1) noise -log(-log U), U kept away from 0 and 1.
        u = torch.rand_like(log_p).clamp(1e-6, 1 - 1e-6)
        choice = (log_p + self.temperature * -torch.log(-torch.log(u))).argmax(-1)
        hard = F.one_hot(choice, self.block_size).to(log_p.dtype)
        soft = log_p.exp()
        return (hard + soft - soft.detach()).to(x.dtype)  # straight-through

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` ``[b, n, dim]`` -> ``(y [b, n, dim], 0)``; position-wise, ``mask`` unused."""
        zero = x.new_zeros((), dtype=torch.float32)
        if not self.training:
            choice = self.controller_logits(x).argmax(-1)  # [b, n, nb]
            return self.sparse_forward(x, choice), zero
        # Training: the dense FFN, masked (the paper's training path).
        h = F.relu(F.linear(x, self.w_in, self.b_in))  # [b, n, d_ff]
        h = h.unflatten(-1, (self.n_blocks, self.block_size))  # [b, n, nb, N]
        h = h * self.unit_mask(x)  # one active unit per block
        return h.flatten(-2) @ self.w_out + self.b_out, zero  # [b, n, d_ff] @ [d_ff, dim]

    def sparse_forward(self, x: Tensor, choice: Tensor) -> Tensor:
        """Compute only the chosen units: ``choice`` ``[b, n, d_ff / N]`` (unit per block)."""
        offsets = torch.arange(self.n_blocks, device=x.device) * self.block_size
        unit = choice + offsets  # [b, n, nb] indices into the d_ff units
        w_in = F.embedding(unit, self.w_in)  # [b, n, nb, dim], the chosen columns of W_1
        w_out = F.embedding(unit, self.w_out)  # [b, n, nb, dim], the chosen rows of W_2
        h = F.relu(torch.einsum("bnd,bnkd->bnk", x, w_in) + self.b_in[unit])  # [b, n, nb]
        return torch.einsum("bnk,bnkd->bnd", h, w_out) + self.b_out
