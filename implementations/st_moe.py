r"""ST-MoE: a top-2 mixture-of-experts layer stabilised by the router z-loss.

Paper: *ST-MoE: Designing Stable and Transferable Sparse Expert Models*, Barret Zoph,
Irwan Bello, Sameer Kumar, Nan Du, Yanping Huang, Jeff Dean, Noam Shazeer and William
Fedus, 2022 (arXiv:2202.08906).

Each token $x$ is sent to the two experts with the highest router probabilities
$p(x) = \mathrm{softmax}(W_r x)$, and their outputs are mixed with the two
probabilities renormalised to sum to 1:

$$
y = \frac{p_{e_1}(x)\, E_{e_1}(x) + p_{e_2}(x)\, E_{e_2}(x)}{p_{e_1}(x) + p_{e_2}(x)} .
$$

Every expert holds at most $C = \lceil \mathrm{cf} \cdot 2T / N \rceil$ tokens of a
group of $T$; first choices claim slots before second choices (both in position
order, or position-major under ``causal=True``) and claims over capacity are dropped.
The paper trains with $\mathrm{cf} = 1.25$ and evaluates with $\mathrm{cf} = 2.0$.

The paper's contribution is the *router z-loss*, which penalises large router logits
$x \in \mathbb{R}^{B \times N}$ (the round-off errors of the exponentials in the router
softmax destabilised training):

$$
L_z(x) = \frac{1}{B} \sum_{i=1}^{B} \Big( \log \sum_{j=1}^{N} e^{x_{ij}} \Big)^2 ,
$$

added to Switch's load-balancing loss $L_B = N \sum_i f_i P_i$ ($f_i$: fraction of
tokens whose first choice is expert $i$; $P_i$: mean router probability of expert $i$):

$$
L_{aux} = c_B L_B + c_z L_z, \qquad c_B = 10^{-2},\; c_z = 10^{-3} .
$$

Hyper-parameters:

* ``experts`` ($N$, default 32 as ST-MoE-L).
* ``capacity_factor`` / ``eval_capacity_factor`` (1.25 / 2.0, the paper's).
* ``balance_coef`` ($c_B = 10^{-2}$), ``z_loss_coef`` ($c_z = 10^{-3}$).
* ``d_ff``: expert hidden width, default ``4 * dim``. The experts are GEGLU FFNs
  without biases, as in the paper's T5.1.1-based models.

The router runs in float32. A capacity group is one sequence.
"""

from __future__ import annotations

import math
from typing import ClassVar

from torch import Tensor

from implementations._moe import (
    Routing,
    TokenChoiceMoE,
    load_balancing_loss,
    router_z_loss,
    top2,
)
from implementations._registry import Range, register

__all__ = ["STMoE"]


@register("st-moe", kind="ffn", supports_causal=True)
class STMoE(TokenChoiceMoE):
    """ST-MoE layer: top-2 routing, load-balancing loss plus router z-loss.

    Args:
        dim: Model width.
        heads: Unused (feed-forward layer); accepted for the common interface.
        causal: Grant capacity in position-major order, so later tokens never take an
            earlier token's slot.
        experts: Number of experts $N$.
        capacity_factor: Capacity factor in training mode.
        eval_capacity_factor: Capacity factor in eval mode.
        balance_coef: $c_B$, weight of the load-balancing loss.
        z_loss_coef: $c_z$, weight of the router z-loss.
        d_ff: Expert hidden width (default ``4 * dim``).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("st-moe", dim=32, heads=4, causal=True, experts=4)
        >>> y, aux_loss = layer(torch.randn(2, 10, 32))
        >>> y.shape, aux_loss.shape
        (torch.Size([2, 10, 32]), torch.Size([]))
    """

    # Checked by implementations.build; other integers lie in [1, 2**20].
    option_ranges: ClassVar[dict[str, Range]] = {
        "capacity_factor": (0.0, math.inf, "(]"),
        "eval_capacity_factor": (0.0, math.inf, "(]"),
        "balance_coef": (0.0, math.inf),
        "z_loss_coef": (0.0, math.inf),
    }

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        experts: int = 32,
        capacity_factor: float = 1.25,
        eval_capacity_factor: float = 2.0,
        balance_coef: float = 1e-2,
        z_loss_coef: float = 1e-3,
        d_ff: int | None = None,
    ) -> None:
        for name, value in (("balance_coef", balance_coef), ("z_loss_coef", z_loss_coef)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        super().__init__(
            dim,
            experts=experts,
            d_ff=4 * dim if d_ff is None else d_ff,
            activation="geglu",
            k=2,
            capacity_factor=capacity_factor,
            eval_capacity_factor=eval_capacity_factor,
            causal=causal,
        )
        self.balance_coef = balance_coef
        self.z_loss_coef = z_loss_coef

    def route(self, probs: Tensor, valid: Tensor) -> Routing:
        """Each valid token claims its two best experts, with renormalised gates."""
        index, gates = top2(probs)  # [g, s, 2] each
        return Routing(index, gates, valid.unsqueeze(-1).expand_as(index))

    def auxiliary_loss(self, logits: Tensor, probs: Tensor, valid: Tensor) -> Tensor:
        r"""$c_B L_B + c_z L_z$ over all valid tokens of the batch."""
        n_experts = probs.shape[-1]
        all_tokens = probs.reshape(1, -1, n_experts)  # [1, T, N]: one pool, the batch
        valid = valid.reshape(1, -1)  # [1, T]
        balance = load_balancing_loss(all_tokens, all_tokens.argmax(-1), valid)[0]
        z_loss = router_z_loss(logits.reshape(1, -1, n_experts), valid)  # [1, T, N] logits
        return self.balance_coef * balance + self.z_loss_coef * z_loss
