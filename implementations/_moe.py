r"""The shared core of the token-choice mixture-of-experts layers.

Used by ``switch-transformer``, ``st-moe``, ``gshard`` and ``glam``. A router scores
every token against $E$ experts, each token claims its top-$k$ experts, and every
expert processes at most $C$ tokens of a *group* (its *capacity*):

$$
C = \min\!\left(S,\ \left\lceil \mathrm{cf} \cdot \frac{k \, S}{E} \right\rceil\right),
$$

with $S$ the tokens of the group and $\mathrm{cf}$ the capacity factor ($\mathrm{cf} = 1$
is exactly enough room for perfectly balanced routing). Claims beyond an expert's
capacity are *dropped*: the claim contributes nothing, so a token that loses every
claim comes out of the layer as zero and is carried only by the residual connection.

Claims are granted in a fixed priority order, as in the papers' implementations:
first-choice claims in position order, then second-choice claims in position order
(``choice_major=True``, GShard's Algorithm 1). A causal decoder must not let a later
token take a slot from an earlier one, so causal layers use position-major order
instead (all claims of token 0, then of token 1, ...): the routing of position $i$ then
depends only on positions $\le i$. For top-1 routing both orders coincide.

The work is vectorised and linear in the group size: the slot of each claim is an
exclusive cumulative sum over one-hot claims ($O(S k E)$ integers), and tokens are
moved into the ``[groups, E, C, d]`` expert buffer and back by a scatter of token
indices and two gathers; no ``[S, E, C]`` dispatch tensor (quadratic in $S$) is built.
The experts are batched parameter tensors ``[E, d, d_ff]``, applied with one einsum.

Each group is one sequence (or a chunk of one, for GShard's ``group_size``), never a
mix of batch elements: a token's output then depends only on its own sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from implementations._helpers import default_mask, pad_to_multiple
from implementations._registry import Range

__all__ = [
    "Experts",
    "Routing",
    "TokenChoiceMoE",
    "assign_slots",
    "combine",
    "dispatch",
    "expert_capacity",
    "load_balancing_loss",
    "mean_over_groups",
    "router_z_loss",
    "top2",
]

Activation = Literal["relu", "gelu", "geglu"]


class Experts(nn.Module):
    r"""$E$ independent position-wise FFNs (no biases) stored as batched tensors.

    ``relu``/``gelu``: $E_e(x) = \phi(x W^{in}_e) W^{out}_e$. ``geglu`` (Shazeer, 2020):
    $E_e(x) = (\mathrm{GELU}(x W^{gate}_e) \odot x W^{in}_e) W^{out}_e$.

    Args:
        experts: Number of experts $E$.
        dim: Model width $d$.
        d_ff: Hidden width of each expert.
        activation: ``relu``, ``gelu`` or ``geglu``.

    Examples:
        >>> import torch
        >>> from implementations._moe import Experts
        >>> experts = Experts(experts=4, dim=8, d_ff=16, activation="geglu")
        >>> experts(torch.randn(2, 4, 3, 8)).shape  # [groups, E, C, d]
        torch.Size([2, 4, 3, 8])
    """

    def __init__(self, experts: int, dim: int, d_ff: int, activation: Activation) -> None:
        super().__init__()
        if activation not in ("relu", "gelu", "geglu"):
            raise ValueError(f"activation must be relu, gelu or geglu, got {activation!r}")
        self.activation = activation
        self.w_in = nn.Parameter(torch.empty(experts, dim, d_ff))
        gated = activation == "geglu"
        self.w_gate = nn.Parameter(torch.empty(experts, dim, d_ff)) if gated else None
        self.w_out = nn.Parameter(torch.empty(experts, d_ff, dim))
        # The nn.Linear default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), per expert.
        for w in (self.w_in, self.w_gate, self.w_out):
            if w is not None:
                bound = 1.0 / math.sqrt(w.shape[1])
                nn.init.uniform_(w, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        """``[..., E, C, d] -> [..., E, C, d]``: expert ``e`` transforms its ``C`` rows."""
        h = torch.einsum("...ecd,edf->...ecf", x, self.w_in)  # [..., E, C, d_ff]
        if self.w_gate is not None:
            h = F.gelu(torch.einsum("...ecd,edf->...ecf", x, self.w_gate)) * h
        elif self.activation == "relu":
            h = F.relu(h)
        else:
            h = F.gelu(h)
        return torch.einsum("...ecf,efd->...ecd", h, self.w_out)  # [..., E, C, d]


@dataclass
class Routing:
    """The claims of every token of every group.

    Attributes:
        expert_index: ``[g, s, k]`` long, the expert of each claim (choice 0 first).
        gates: ``[g, s, k]`` float32 combine weights of the claims.
        active: ``[g, s, k]`` bool, whether the claim is made at all (False for padding
            tokens, or a second expert that random routing skipped).
    """

    expert_index: Tensor
    gates: Tensor
    active: Tensor


def expert_capacity(tokens: int, experts: int, k: int, capacity_factor: float) -> int:
    r"""$C = \min(S, \lceil \mathrm{cf} \cdot k S / E \rceil)$, at least 1.

    An expert never gets more than ``tokens`` claims (a token claims distinct experts),
    so a larger buffer would only hold empty slots.

    Examples:
        >>> from implementations._moe import expert_capacity
        >>> expert_capacity(tokens=10, experts=4, k=1, capacity_factor=1.0)
        3
        >>> expert_capacity(tokens=10, experts=4, k=2, capacity_factor=1.25)
        7
    """
    return max(1, min(tokens, math.ceil(capacity_factor * k * tokens / experts)))


def assign_slots(
    expert_index: Tensor, active: Tensor, experts: int, capacity: int, choice_major: bool = True
) -> tuple[Tensor, Tensor]:
    """Give each claim its position in its expert's buffer; drop the ones past capacity.

    Args:
        expert_index: ``[g, s, k]`` long, the claimed experts.
        active: ``[g, s, k]`` bool, which claims are made.
        experts: Number of experts $E$.
        capacity: Slots per expert $C$.
        choice_major: Priority order. True: all first choices in position order, then
            all second choices, ... (GShard, Switch, ST-MoE). False: position-major (all
            claims of token 0, then token 1, ...), the order a causal decoder needs.

    Returns:
        ``(position, kept)``, both ``[g, s, k]``: the number of earlier claims on the same
        expert in priority order, and ``active & (position < capacity)``.

    Examples:
        >>> import torch
        >>> from implementations._moe import assign_slots
        >>> index = torch.tensor([[[0], [0], [1], [0]]])  # four tokens, top-1
        >>> position, kept = assign_slots(index, torch.ones_like(index, dtype=torch.bool), 2, 2)
        >>> position.flatten().tolist(), kept.flatten().tolist()
        ([0, 1, 0, 2], [True, True, True, False])
    """
    g, s, k = expert_index.shape
    claims = F.one_hot(expert_index, experts) * active.unsqueeze(-1)  # [g, s, k, E]
    if choice_major:
        claims = claims.transpose(1, 2)  # [g, k, s, E]
    claims = claims.reshape(g, s * k, experts)  # [g, s*k, E] in priority order
    # Exclusive running count of the claims made earlier on the same expert.
    earlier = claims.cumsum(dim=1) - claims  # [g, s*k, E]
    position = (earlier * claims).sum(-1)  # [g, s*k]
    # [g, s*k] -> [g, s, k]
    position = position.view(g, k, s).transpose(1, 2) if choice_major else position.view(g, s, k)
    return position, active & (position < capacity)


def dispatch(
    x: Tensor, expert_index: Tensor, position: Tensor, kept: Tensor, experts: int, capacity: int
) -> tuple[Tensor, Tensor]:
    """Gather the tokens of each group into the expert buffer.

    Args:
        x: ``[g, s, d]`` tokens.
        expert_index, position, kept: ``[g, s, k]`` (see
            [`assign_slots`][implementations._moe.assign_slots]).
        experts: $E$.
        capacity: $C$.

    Returns:
        ``(buffer, slot)``: ``buffer`` ``[g, E, C, d]`` (empty slots hold zeros) and
        ``slot`` ``[g, s, k]``, the flat buffer row ``e * C + c`` of each kept claim and a
        row ``>= E * C`` for dropped claims (pass it to [`combine`][implementations._moe.combine]).

    Examples:
        >>> import torch
        >>> from implementations._moe import assign_slots, dispatch
        >>> x = torch.arange(3.0).view(1, 3, 1)
        >>> index = torch.tensor([[[1], [0], [1]]])
        >>> position, kept = assign_slots(index, torch.ones_like(index, dtype=torch.bool), 2, 1)
        >>> buffer, slot = dispatch(x, index, position, kept, experts=2, capacity=1)
        >>> buffer.flatten().tolist(), kept.flatten().tolist()  # token 2 lost its claim
        ([1.0, 0.0], [True, True, False])
    """
    g, s, d = x.shape
    k = expert_index.shape[-1]
    n_slots = experts * capacity
    slot = expert_index * capacity + position  # [g, s, k]
    # Every dropped claim gets a private dummy row past the buffer, so the scatter below
    # writes each index once (deterministic), and the dummy rows are cut off.
    dummy = n_slots + torch.arange(s * k, device=x.device).view(1, s, k)  # [1, s, k]
    slot = torch.where(kept, slot, dummy)  # [g, s, k]
    token = torch.arange(s, device=x.device).view(1, s, 1).expand(g, s, k)  # [g, s, k]
    # source[g, row] = the token that fills buffer row `row`; `s` (a zero row) if empty.
    source = torch.full((g, n_slots + s * k), s, dtype=torch.long, device=x.device)
    source.scatter_(1, slot.reshape(g, s * k), token.reshape(g, s * k))  # claims: [g, s*k]
    source = source[:, :n_slots]  # [g, E*C]
    x_pad = torch.cat([x, x.new_zeros(g, 1, d)], dim=1)  # [g, s + 1, d]
    buffer = x_pad.gather(1, source.unsqueeze(-1).expand(g, n_slots, d))  # [g, E*C, d]
    return buffer.view(g, experts, capacity, d), slot  # [g, E, C, d], [g, s, k]


def combine(expert_out: Tensor, slot: Tensor, weights: Tensor) -> Tensor:
    r"""$y_t = \sum_{j} w_{t,j}\, E_{e_{t,j}}(x_t)$ over the kept claims $j$ of token $t$.

    Args:
        expert_out: ``[g, E, C, d]`` expert outputs.
        slot: ``[g, s, k]`` from [`dispatch`][implementations._moe.dispatch] (rows
            ``>= E * C`` read zeros).
        weights: ``[g, s, k]`` combine weights (zero them for dropped claims).

    Returns:
        ``[g, s, d]``.
    """
    g, n_experts, capacity, d = expert_out.shape
    s, k = slot.shape[1:]
    n_slots = n_experts * capacity
    # [g, E*C + 1, d]: the buffer rows, then a zero row that every dropped claim reads.
    rows = torch.cat([expert_out.reshape(g, n_slots, d), expert_out.new_zeros(g, 1, d)], dim=1)
    index = slot.clamp(max=n_slots).reshape(g, s * k, 1).expand(g, s * k, d)  # [g, s*k, d]
    picked = rows.gather(1, index).view(g, s, k, d)  # [g, s, k, d]
    return torch.einsum("gskd,gsk->gsd", picked, weights.to(picked.dtype))


def top2(probs: Tensor) -> tuple[Tensor, Tensor]:
    r"""Top-2 experts and their normalised gates $g_j / (g_1 + g_2)$ (GShard, Alg. 1).

    Args:
        probs: ``[..., E]`` router probabilities.

    Returns:
        ``(index, gates)``, both ``[..., 2]``; the gates of a token sum to 1.

    Examples:
        >>> import torch
        >>> from implementations._moe import top2
        >>> index, gates = top2(torch.tensor([0.1, 0.6, 0.3]))
        >>> index.tolist(), [round(g, 3) for g in gates.tolist()]
        ([1, 2], [0.667, 0.333])
    """
    gates, index = probs.topk(2, dim=-1)  # [..., 2]
    return index, gates / gates.sum(-1, keepdim=True)


def load_balancing_loss(probs: Tensor, top1: Tensor, valid: Tensor) -> Tensor:
    r"""Switch's $N \sum_i f_i P_i$, per group.

    $f_i$ is the fraction of the group's (valid) tokens whose first choice is expert
    $i$ and $P_i$ the mean router probability of expert $i$; uniform routing gives 1.
    GShard's $\frac{1}{E}\sum_e \frac{c_e}{S} m_e$ is the same quantity divided by $E^2$
    (its implementation multiplies it back by $E^2$).

    Args:
        probs: ``[g, s, E]`` float32 router probabilities.
        top1: ``[g, s]`` long, each token's first choice.
        valid: ``[g, s]`` bool, the tokens that count (padding excluded).

    Returns:
        ``[g]``, zero for a group without valid tokens.

    Examples:
        >>> import torch
        >>> from implementations._moe import load_balancing_loss
        >>> probs, valid = torch.full((1, 4, 2), 0.5), torch.ones(1, 4, dtype=torch.bool)
        >>> load_balancing_loss(probs, torch.tensor([[0, 1, 0, 1]]), valid)
        tensor([1.])
    """
    n_experts = probs.shape[-1]
    weight = valid.to(probs.dtype)  # [g, s]
    count = weight.sum(-1).clamp(min=1)  # [g]
    f = torch.einsum("gse,gs->ge", F.one_hot(top1, n_experts).to(probs.dtype), weight)
    p = torch.einsum("gse,gs->ge", probs, weight)
    return n_experts * (f * p).sum(-1) / count**2  # [g]


def mean_over_groups(per_group: Tensor, valid: Tensor) -> Tensor:
    """Mean of ``per_group`` ``[g]`` over the groups holding a valid token (``valid`` ``[g, s]``).

    Examples:
        >>> import torch
        >>> from implementations._moe import mean_over_groups
        >>> mean_over_groups(torch.tensor([1.0, 3.0, 0.0]), torch.tensor([[1], [1], [0]]).bool())
        tensor(2.)
    """
    has_tokens = valid.any(-1).to(per_group.dtype)  # [g]
    return (per_group * has_tokens).sum() / has_tokens.sum().clamp(min=1)


def router_z_loss(logits: Tensor, valid: Tensor) -> Tensor:
    r"""ST-MoE's $L_z = \frac{1}{B}\sum_{i=1}^{B} \big(\log \sum_{j=1}^{N} e^{x_{ij}}\big)^2$.

    Averaged over the valid tokens of all groups.

    Args:
        logits: ``[g, s, E]`` float32 router logits.
        valid: ``[g, s]`` bool.

    Examples:
        >>> import torch
        >>> from implementations._moe import router_z_loss
        >>> router_z_loss(torch.zeros(1, 3, 4), torch.ones(1, 3, dtype=torch.bool))
        tensor(1.9218)
    """
    z = torch.logsumexp(logits, dim=-1) ** 2  # [g, s]
    weight = valid.to(z.dtype)
    return (z * weight).sum() / weight.sum().clamp(min=1)


class TokenChoiceMoE(nn.Module):
    r"""Router, batched experts and capacity-limited dispatch; subclasses pick the claims.

    A subclass implements [`route`][implementations._moe.TokenChoiceMoE.route] (which
    experts each token claims, with which gates) and
    [`auxiliary_loss`][implementations._moe.TokenChoiceMoE.auxiliary_loss]. The router runs in
    float32 whatever the input dtype (Switch's "selective precision": the exponentials of the router
    softmax are where low precision destabilised training).

    Args:
        dim: Model width.
        experts: Number of experts $E$.
        d_ff: Hidden width of each expert.
        activation: Expert activation (see [`Experts`][implementations._moe.Experts]).
        k: Claims per token.
        capacity_factor: $\mathrm{cf}$ in training mode.
        eval_capacity_factor: $\mathrm{cf}$ in eval mode.
        causal: Grant claims in position-major order (see the module docstring).
        group_size: Tokens per routing group; None = one group per sequence.
    """

    # Checked by implementations.build for every subclass: at most 16384 experts.
    option_ranges: ClassVar[dict[str, Range]] = {"experts": (1, 2**14)}

    def __init__(
        self,
        dim: int,
        experts: int,
        d_ff: int,
        activation: Activation,
        k: int,
        capacity_factor: float,
        eval_capacity_factor: float,
        causal: bool,
        group_size: int | None = None,
    ) -> None:
        super().__init__()
        if experts < k:
            raise ValueError(f"experts must be >= {k} (top-{k} routing), got {experts}")
        if d_ff <= 0:
            raise ValueError(f"d_ff must be positive, got {d_ff}")
        for name, value in (
            ("capacity_factor", capacity_factor),
            ("eval_capacity_factor", eval_capacity_factor),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if group_size is not None and group_size <= 0:
            raise ValueError(f"group_size must be positive, got {group_size}")
        self.num_experts = experts
        self.k = k
        self.capacity_factor = capacity_factor
        self.eval_capacity_factor = eval_capacity_factor
        self.causal = causal
        self.group_size = group_size
        self.router = nn.Linear(dim, experts, bias=False)
        self.experts = Experts(experts, dim, d_ff, activation)

    def route(self, probs: Tensor, valid: Tensor) -> Routing:
        """The claims ``[g, s, k]`` from router probabilities ``[g, s, E]`` (float32)."""
        raise NotImplementedError

    def auxiliary_loss(self, logits: Tensor, probs: Tensor, valid: Tensor) -> Tensor:
        """The scalar auxiliary loss from router logits and probabilities ``[g, s, E]``."""
        raise NotImplementedError

    def capacity(self, group_tokens: int) -> int:
        """Slots per expert for a group of ``group_tokens`` tokens, in the current mode."""
        factor = self.capacity_factor if self.training else self.eval_capacity_factor
        return expert_capacity(group_tokens, self.num_experts, self.k, factor)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` ``[b, n, dim]`` -> ``(y [b, n, dim], aux_loss)``.

        ``mask`` (bool ``[b, n]``, True = real token, optional) keeps padding tokens out
        of the routing: they claim no slot, count in no loss and come out as zero.
        """
        b, n, d = x.shape
        valid = default_mask(mask, x)
        s = n if self.group_size is None else min(self.group_size, n)
        # Split each sequence into groups of s tokens; the tail group is padded with
        # invalid tokens, which claim nothing.
        x_pad, pad = pad_to_multiple(x, s)  # [b, n + pad, d]
        valid, _ = pad_to_multiple(valid, s, dim=-1, value=False)  # [b, n + pad]
        groups = x_pad.reshape(-1, s, d)  # [g, s, d], g = b * (n + pad) / s
        valid = valid.reshape(-1, s)  # [g, s]

        logits = F.linear(groups.float(), self.router.weight.float())  # [g, s, E]
        probs = logits.softmax(dim=-1)  # [g, s, E]
        routing = self.route(probs, valid)
        capacity = self.capacity(s)
        e = routing.expert_index  # [g, s, k]
        position, kept = assign_slots(
            e, routing.active, self.num_experts, capacity, choice_major=not self.causal
        )
        buffer, slot = dispatch(groups, e, position, kept, self.num_experts, capacity)
        out = self.experts(buffer)  # [g, E, C, d]
        y = combine(out, slot, routing.gates * kept)  # [g, s, d]
        y = y.reshape(b, n + pad, d)[:, :n]  # [b, n, d]
        return y, self.auxiliary_loss(logits, probs, valid)
