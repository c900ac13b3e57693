r"""Switch Transformer: a mixture-of-experts feed-forward layer with top-1 routing.

Paper: *Switch Transformers: Scaling to Trillion Parameter Models with Simple and
Efficient Sparsity*, William Fedus, Barret Zoph and Noam Shazeer, 2021 (JMLR 2022;
arXiv:2101.03961).

The dense FFN is replaced by $N$ expert FFNs $E_1, \dots, E_N$ and a router
$W_r$. Each token $x$ goes to the single expert with the highest router probability and
is scaled by that probability (so the router receives a gradient):

$$
p_i(x) = \frac{e^{h(x)_i}}{\sum_{j=1}^{N} e^{h(x)_j}}, \quad h(x) = W_r x, \qquad
y = p_{i^*}(x)\, E_{i^*}(x), \quad i^* = \arg\max_i p_i(x).
$$

Each expert has a fixed *expert capacity* $C = \lceil \mathrm{cf} \cdot T / N \rceil$
for the $T$ tokens of a group; tokens beyond it are *dropped*: their layer output is
zero and they pass to the next layer through the residual connection only. Tokens
claim slots in position order, so a dropped token is always one that came after
$C$ earlier tokens routed to the same expert, and a later token can never displace
an earlier one (routing stays causal).

A differentiable load-balancing loss pushes towards uniform routing:

$$
\mathcal{L}_{aux} = \alpha \cdot N \cdot \sum_{i=1}^{N} f_i \cdot P_i, \qquad
f_i = \frac{1}{T} \sum_{x \in \mathcal{B}} \mathbb{1}\{\arg\max p(x) = i\}, \qquad
P_i = \frac{1}{T} \sum_{x \in \mathcal{B}} p_i(x),
$$

over the $T$ tokens of the batch $\mathcal{B}$; it equals $\alpha$ under uniform routing.
The router runs in float32 ("selective precision").

Hyper-parameters:

* ``experts`` ($N$, default 128 as Switch-Base).
* ``capacity_factor`` ($\mathrm{cf}$, default 1.25; the paper compares 1.0 to 2.0).
* ``alpha`` ($\alpha$, default $10^{-2}$, the paper's choice).
* ``d_ff``: expert hidden width, default ``4 * dim`` (Switch-Base: 768 -> 3072). The
  experts are T5-style ReLU FFNs without biases.

Implementation choices: a capacity group is one sequence (the paper's groups are the
tokens on one device), so batch elements never compete for slots; the core is shared
with the other mixtures of experts in [`implementations._moe`][implementations._moe].
"""

from __future__ import annotations

import math
from typing import ClassVar

from torch import Tensor

from implementations._moe import Routing, TokenChoiceMoE, load_balancing_loss
from implementations._registry import Range, register

__all__ = ["SwitchTransformer"]


@register("switch-transformer", kind="ffn", supports_causal=True)
class SwitchTransformer(TokenChoiceMoE):
    """Switch FFN layer: top-1 routing with capacity and the load-balancing loss.

    Args:
        dim: Model width.
        heads: Unused (feed-forward layer); accepted for the common interface.
        causal: Accepted; top-1 routing in position order is causal either way.
        experts: Number of experts $N$.
        capacity_factor: Expert capacity factor.
        alpha: Weight of the load-balancing loss.
        d_ff: Expert hidden width (default ``4 * dim``).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("switch-transformer", dim=32, heads=4, experts=8)
        >>> y, aux_loss = layer(torch.randn(2, 10, 32))
        >>> y.shape, aux_loss.shape
        (torch.Size([2, 10, 32]), torch.Size([]))
    """

    # Checked by implementations.build; other integers lie in [1, 2**20].
    option_ranges: ClassVar[dict[str, Range]] = {
        "capacity_factor": (0.0, math.inf, "(]"),
        "alpha": (0.0, math.inf),
    }

    def __init__(
        self,
        dim: int,
        heads: int,
        causal: bool = False,
        *,
        experts: int = 128,
        capacity_factor: float = 1.25,
        alpha: float = 1e-2,
        d_ff: int | None = None,
    ) -> None:
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        super().__init__(
            dim,
            experts=experts,
            d_ff=4 * dim if d_ff is None else d_ff,
            activation="relu",
            k=1,
            capacity_factor=capacity_factor,
            eval_capacity_factor=capacity_factor,
            causal=causal,
        )
        self.alpha = alpha

    def route(self, probs: Tensor, valid: Tensor) -> Routing:
        """Each valid token claims its argmax expert, gated by that probability."""
        gate, index = probs.max(dim=-1, keepdim=True)  # [g, s, 1]
        return Routing(expert_index=index, gates=gate, active=valid.unsqueeze(-1))

    def auxiliary_loss(self, logits: Tensor, probs: Tensor, valid: Tensor) -> Tensor:
        r"""$\alpha N \sum_i f_i P_i$ over all valid tokens of the batch."""
        n_experts = probs.shape[-1]
        all_tokens = probs.reshape(1, -1, n_experts)  # [1, T, N]: one pool, the batch
        valid = valid.reshape(1, -1)  # [1, T]
        loss = load_balancing_loss(all_tokens, all_tokens.argmax(-1), valid)
        return self.alpha * loss[0]
