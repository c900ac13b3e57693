r"""GShard: top-2 mixture of experts with group-level capacity and random routing.

Paper: *GShard: Scaling Giant Models with Conditional Computation and Automatic
Sharding*, Dmitry Lepikhin, HyoukJoong Lee, Yuanzhong Xu, Dehao Chen, Orhan Firat,
Yanping Huang, Maxim Krikun, Noam Shazeer and Zhifeng Chen, 2021 (ICLR;
arXiv:2006.16668).

The tokens are split into groups of $S$ (in the paper, one group per device); each
group is routed independently (the paper's Algorithm 1). With gates
$g_{s,E} = \mathrm{softmax}(w_g \cdot x_s)$ and top-2 experts $e_1, e_2$:

$$
g_1 \leftarrow \frac{g_1}{g_1 + g_2}, \qquad g_2 \leftarrow \frac{g_2}{g_1 + g_2},
\qquad y_s = g_1 E_{e_1}(x_s) + g_2 E_{e_2}(x_s) .
$$

* **Expert capacity**: each expert accepts at most $C = 2S/E$ tokens of a group
  ($\mathrm{cf} = 1$ in our $C = \lceil \mathrm{cf} \cdot 2S/E \rceil$). All first
  choices are served before any second choice, in position order; claims past $C$
  are dropped (a token that loses both outputs zero; the residual carries it).
* **Random routing**: the second expert is used only with probability $2 g_2$
  (normalised $g_2 \le 1/2$): a token whose second gate is small mostly skips it,
  saving capacity. A skipped claim takes no slot. The first gate keeps its value
  $g_1 / (g_1 + g_2)$ either way, as in Algorithm 1.

The auxiliary loss of a group, with $c_e$ the number of its tokens whose first choice
is $e$ and $m_e = \frac{1}{S}\sum_s g_{s,e}$ the mean gate of $e$, is

$$
\ell_{aux} = \frac{1}{E} \sum_{e=1}^{E} \frac{c_e}{S} \, m_e
$$

($c_e/S$ is not differentiable; $m_e$ carries the gradient). Like the authors'
implementation we scale it by $E^2$ (so uniform routing gives 1 whatever $E$), average
it over the groups and weight it by ``aux_loss_weight``.

Hyper-parameters:

* ``experts`` ($E$, default 128, the smallest model of the paper's Table 1).
* ``group_size`` ($S$, default 1024 tokens; the paper fixes the groups by the device
  count instead, so this default is ours). A sequence longer than $S$ is cut into
  groups of $S$ consecutive tokens (the last one padded with non-routed tokens); a
  shorter one is a single group.
* ``capacity_factor`` (1.0, i.e. $C = 2S/E$).
* ``aux_loss_weight`` ($10^{-2}$; our default, the weight GLaM uses with this loss).
* ``d_ff``: expert hidden width, default ``4 * dim``; ReLU experts without biases.

Random routing is a training-time device: in eval mode (``module.eval()``) the second
expert is always claimed, so inference is deterministic. Under ``causal=True`` the
claims are granted position-major (both choices of token 0, then of token 1, ...) so a
later token can never take an earlier token's slot.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from implementations._moe import (
    Routing,
    TokenChoiceMoE,
    load_balancing_loss,
    mean_over_groups,
    top2,
)
from implementations._registry import Range, register

__all__ = ["GShard"]


@register("gshard", kind="ffn", supports_causal=True)
class GShard(TokenChoiceMoE):
    r"""GShard MoE layer: group-level top-2 gating with random second-expert routing.

    Args:
        dim: Model width.
        heads: Unused (feed-forward layer); accepted for the common interface.
        causal: Grant capacity in position-major order.
        experts: Number of experts $E$.
        group_size: Tokens per routing group $S$.
        capacity_factor: Capacity factor ($C = \lceil \mathrm{cf} \cdot 2S/E \rceil$).
        aux_loss_weight: Weight of the auxiliary loss.
        d_ff: Expert hidden width (default ``4 * dim``).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("gshard", dim=32, heads=4, experts=4, group_size=8)
        >>> y, aux_loss = layer(torch.randn(2, 20, 32))  # 3 groups per sequence
        >>> y.shape, aux_loss.shape
        (torch.Size([2, 20, 32]), torch.Size([]))
    """

    # Checked by implementations.build; other integers lie in [1, 2**20].
    option_ranges: ClassVar[dict[str, Range]] = {
        "capacity_factor": (0.0, math.inf, "(]"),
        "aux_loss_weight": (0.0, math.inf),
    }

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        experts: int = 128,
        group_size: int = 1024,
        capacity_factor: float = 1.0,
        aux_loss_weight: float = 1e-2,
        d_ff: int | None = None,
    ) -> None:
        if aux_loss_weight < 0:
            raise ValueError(f"aux_loss_weight must be >= 0, got {aux_loss_weight}")
        super().__init__(
            dim,
            experts=experts,
            d_ff=4 * dim if d_ff is None else d_ff,
            activation="relu",
            k=2,
            capacity_factor=capacity_factor,
            eval_capacity_factor=capacity_factor,
            causal=causal,
            group_size=group_size,
        )
        self.aux_loss_weight = aux_loss_weight

    def route(self, probs: Tensor, valid: Tensor) -> Routing:
        """Top-2 claims; in training the second is kept with probability $2 g_2$."""
        index, gates = top2(probs)  # [g, s, 2] each, gates normalised
        active = valid.unsqueeze(-1).expand_as(index).clone()  # [g, s, 2]
        if self.training:
            # rnd ~ U(0, 1); dispatch to the second expert iff 2 * g2 > rnd.
            rnd = torch.rand(gates.shape[:-1], device=gates.device)  # [g, s]
            active[..., 1] &= 2 * gates[..., 1] > rnd
        return Routing(index, gates, active)

    def auxiliary_loss(self, logits: Tensor, probs: Tensor, valid: Tensor) -> Tensor:
        r"""$E^2 \ell_{aux}$ per group, averaged over the groups that hold real tokens."""
        per_group = load_balancing_loss(probs, probs.argmax(-1), valid)  # [g]
        return self.aux_loss_weight * mean_over_groups(per_group, valid)
