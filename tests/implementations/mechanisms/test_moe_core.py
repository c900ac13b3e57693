"""The shared mixture-of-experts core (implementations/_moe.py) against loop references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from implementations._moe import (
    Experts,
    assign_slots,
    combine,
    dispatch,
    expert_capacity,
    load_balancing_loss,
    router_z_loss,
)


def slots_by_loop(index: torch.Tensor, active: torch.Tensor, experts: int, choice_major: bool):
    """Grant claims one at a time in priority order, counting per expert (the papers' loop)."""
    g, s, k = index.shape
    position = torch.zeros_like(index)
    for group in range(g):
        counts = [0] * experts
        order = (
            [(t, j) for j in range(k) for t in range(s)]
            if choice_major
            else [(t, j) for t in range(s) for j in range(k)]
        )
        for t, j in order:
            if active[group, t, j]:
                e = int(index[group, t, j])
                position[group, t, j] = counts[e]
                counts[e] += 1
    return position


@pytest.mark.parametrize("choice_major", [True, False])
def test_assign_slots_matches_the_sequential_loop(choice_major: bool) -> None:
    torch.manual_seed(0)
    g, s, k, experts, capacity = 3, 17, 2, 4, 5
    index = torch.stack([torch.randperm(experts)[:k] for _ in range(g * s)]).view(g, s, k)
    active = torch.rand(g, s, k) > 0.2
    position, kept = assign_slots(index, active, experts, capacity, choice_major)
    expected = slots_by_loop(index, active, experts, choice_major)
    assert torch.equal(position[active], expected[active])
    assert torch.equal(kept, active & (expected < capacity))
    # No expert ever holds more than `capacity` tokens of a group.
    load = torch.einsum("gske->ge", F.one_hot(index, experts) * kept[..., None])
    assert int(load.max()) <= capacity


def test_choice_major_lets_a_later_first_choice_displace_an_earlier_second_choice() -> None:
    """Why causal layers grant claims position-major."""
    index = torch.tensor([[[0, 1], [1, 0]]])  # token 0 prefers 0 then 1; token 1 prefers 1
    active = torch.tensor([[[True, True], [True, False]]])
    _, kept_choice = assign_slots(index, active, experts=2, capacity=1, choice_major=True)
    _, kept_position = assign_slots(index, active, experts=2, capacity=1, choice_major=False)
    # Choice-major: token 1's first choice wins expert 1 over token 0's second choice.
    assert kept_choice.tolist() == [[[True, False], [True, False]]]
    # Position-major: token 0 keeps both experts, whatever token 1 does.
    assert kept_position.tolist() == [[[True, True], [False, False]]]


@pytest.mark.parametrize("activation", ["relu", "gelu", "geglu"])
def test_dispatch_experts_combine_equal_a_per_token_loop(activation: str) -> None:
    torch.manual_seed(1)
    g, s, d, experts, k, capacity = 2, 11, 8, 3, 2, 4
    x = torch.randn(g, s, d)
    index = torch.stack([torch.randperm(experts)[:k] for _ in range(g * s)]).view(g, s, k)
    gates = torch.rand(g, s, k)
    active = torch.ones(g, s, k, dtype=torch.bool)
    layer = Experts(experts, d, 16, activation)
    position, kept = assign_slots(index, active, experts, capacity)
    buffer, slot = dispatch(x, index, position, kept, experts, capacity)
    y = combine(layer(buffer), slot, gates * kept)

    def expert(e: int, v: torch.Tensor) -> torch.Tensor:
        h = v @ layer.w_in[e]
        if activation == "geglu":
            h = F.gelu(v @ layer.w_gate[e]) * h
        else:
            h = F.relu(h) if activation == "relu" else F.gelu(h)
        return h @ layer.w_out[e]

    expected = torch.zeros_like(x)
    for b in range(g):
        for t in range(s):
            for j in range(k):
                if kept[b, t, j]:
                    expected[b, t] += gates[b, t, j] * expert(int(index[b, t, j]), x[b, t])
    assert not kept.all(), "the test should exercise dropping"
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    # The buffer holds each kept token exactly once, at its slot.
    rows = buffer.view(g, experts * capacity, d)
    for b, t, j in kept.nonzero().tolist():
        torch.testing.assert_close(rows[b, slot[b, t, j]], x[b, t])
    assert int((rows.abs().sum(-1) > 0).sum()) == int(kept.sum())


def test_expert_capacity_formula() -> None:
    for tokens, experts, k, cf in [(37, 8, 1, 1.25), (37, 8, 2, 1.0), (1, 128, 1, 1.25)]:
        expected = min(tokens, max(1, math.ceil(cf * k * tokens / experts)))
        assert expert_capacity(tokens, experts, k, cf) == expected
    assert expert_capacity(10, 2, 2, 4.0) == 10  # never above the group size


def test_load_balancing_and_z_loss_formulas() -> None:
    torch.manual_seed(2)
    logits = torch.randn(2, 9, 5)
    probs = logits.softmax(-1)
    valid = torch.rand(2, 9) > 0.3
    top1 = probs.argmax(-1)
    loss = load_balancing_loss(probs, top1, valid)
    for g in range(2):
        rows = valid[g]
        f = torch.stack([(top1[g][rows] == i).float().mean() for i in range(5)])
        p = probs[g][rows].mean(0)
        torch.testing.assert_close(loss[g], 5 * (f * p).sum())
    z = torch.stack([torch.log(torch.exp(row).sum()) ** 2 for row in logits[valid]]).mean()
    torch.testing.assert_close(router_z_loss(logits, valid), z)
