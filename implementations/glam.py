r"""GLaM: the top-2 mixture-of-experts feed-forward layer of a decoder-only LM.

Paper: *GLaM: Efficient Scaling of Language Models with Mixture-of-Experts*, Nan Du,
Yanping Huang, Andrew M. Dai, Simon Tong, Dmitry Lepikhin, Yuanzhong Xu, Maxim Krikun,
Yanqi Zhou, Adams Wei Yu, Orhan Firat, Barret Zoph, Liam Fedus, Maarten Bosma, Zongwei
Zhou, Tao Wang, Yu Emma Wang, Kellie Webster, Marie Pellat, Kevin Robinson, Kathleen
Meier-Hellstern, Toju Duke, Lucas Dixon, Kun Zhang, Quoc V. Le, Yonghui Wu, Zhifeng Chen
and Claire Cui, 2022 (ICML; arXiv:2112.06905).

GLaM replaces the feed-forward sub-layer of every other Transformer layer by this
layer (the alternation is the model's business, not the layer's). A softmax gate
picks the two best of $E = 64$ experts for each token and the layer returns the
weighted average of their outputs, with the two gates renormalised (GShard's gating):

$$
(e_1, e_2) = \operatorname{top2}\, \mathrm{softmax}(W_g x), \qquad
y = \frac{g_{e_1} E_{e_1}(x) + g_{e_2} E_{e_2}(x)}{g_{e_1} + g_{e_2}} .
$$

Experts are Gated-GELU FFNs without biases,
$E_e(x) = (\mathrm{GELU}(x W_e) \odot x V_e)\, W^{out}_e$ (the paper states the gated
GELU for its dense feed-forward sub-layers; we give the experts the same form). Each
expert takes at most $C = \lceil \mathrm{cf} \cdot 2S/E \rceil$ tokens of a sequence of
$S$ (first choices before second choices; position-major under ``causal=True``, as a
decoder needs), and GShard's auxiliary load-balancing loss $E \sum_e f_e m_e$ ($f_e$:
fraction of tokens whose first choice is $e$, $m_e$: mean gate of $e$) is added with
weight 0.01.

Hyper-parameters:

* ``experts`` ($E$, default 64, as the largest GLaM, 64B/64E).
* ``capacity_factor`` (default 1.0, GShard's $C = 2S/E$; the GLaM paper does not state
  its value).
* ``aux_loss_weight`` ($10^{-2}$).
* ``d_ff``: expert hidden width, default ``4 * dim`` (GLaM 64B/64E: 8192 -> 32768).

GShard's random routing of the second expert is not used: GLaM describes the gate
as always activating the two best experts. The router runs in float32.
"""

from __future__ import annotations

import math
from typing import ClassVar

from torch import Tensor

from implementations._moe import (
    Routing,
    TokenChoiceMoE,
    load_balancing_loss,
    mean_over_groups,
    top2,
)
from implementations._registry import Range, register

__all__ = ["GLaM"]


@register("glam", kind="ffn", supports_causal=True)
class GLaM(TokenChoiceMoE):
    """GLaM MoE layer: top-2 gating over Gated-GELU experts.

    Args:
        dim: Model width.
        heads: Unused (feed-forward layer); accepted for the common interface.
        causal: Grant capacity in position-major order (decoder).
        experts: Number of experts $E$.
        capacity_factor: Capacity factor.
        aux_loss_weight: Weight of the load-balancing loss.
        d_ff: Expert hidden width (default ``4 * dim``).

    Examples:
        >>> import torch, implementations
        >>> layer = implementations.build("glam", dim=32, heads=4, causal=True, experts=8)
        >>> y, aux_loss = layer(torch.randn(2, 10, 32))
        >>> y.shape, aux_loss.shape
        (torch.Size([2, 10, 32]), torch.Size([]))
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
        experts: int = 64,
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
            activation="geglu",
            k=2,
            capacity_factor=capacity_factor,
            eval_capacity_factor=capacity_factor,
            causal=causal,
        )
        self.aux_loss_weight = aux_loss_weight

    def route(self, probs: Tensor, valid: Tensor) -> Routing:
        """Each valid token claims its two best experts, gates renormalised to sum to 1."""
        index, gates = top2(probs)  # [g, s, 2] each
        return Routing(index, gates, valid.unsqueeze(-1).expand_as(index))

    def auxiliary_loss(self, logits: Tensor, probs: Tensor, valid: Tensor) -> Tensor:
        r"""GShard's loss $E \sum_e f_e m_e$ per sequence, averaged, times the weight."""
        per_group = load_balancing_loss(probs, probs.argmax(-1), valid)  # [g]
        return self.aux_loss_weight * mean_over_groups(per_group, valid)
