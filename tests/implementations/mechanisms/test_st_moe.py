"""ST-MoE: top-2 routing with capacity, router z-loss plus load-balancing loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import implementations

DIM, EXPERTS = 16, 4


def build(**options):
    torch.manual_seed(0)
    return implementations.build("st-moe", dim=DIM, heads=2, experts=EXPERTS, **options)


def geglu_expert(layer, e: int, v: torch.Tensor) -> torch.Tensor:
    w = layer.experts
    return (F.gelu(v @ w.w_gate[e]) * (v @ w.w_in[e])) @ w.w_out[e]


def reference(layer, x: torch.Tensor, capacity: int, choice_major: bool) -> torch.Tensor:
    """Top-2 with renormalised gates; claims granted one by one in priority order."""
    probs = (x @ layer.router.weight.T).softmax(-1)  # [b, n, E]
    top, index = probs.topk(2, dim=-1)
    gates = top / top.sum(-1, keepdim=True)
    n = x.shape[1]
    order = (
        [(t, j) for j in range(2) for t in range(n)]
        if choice_major
        else [(t, j) for t in range(n) for j in range(2)]
    )
    y = torch.zeros_like(x)
    for b in range(x.shape[0]):
        used = [0] * EXPERTS
        for t, j in order:
            e = int(index[b, t, j])
            if used[e] < capacity:
                y[b, t] += gates[b, t, j] * geglu_expert(layer, e, x[b, t])
                used[e] += 1
    return y


@pytest.mark.parametrize("causal", [False, True])
def test_top2_with_capacity_matches_the_loop(causal: bool) -> None:
    layer = build(causal=causal, capacity_factor=0.75).train()
    x = torch.randn(2, 19, DIM)
    capacity = math.ceil(0.75 * 2 * 19 / EXPERTS)  # the training capacity factor
    expected = reference(layer, x, capacity, choice_major=not causal)
    undropped = reference(layer, x, 19, choice_major=not causal)
    assert not torch.allclose(expected, undropped), "the test should exercise dropping"
    torch.testing.assert_close(layer(x)[0], expected, atol=1e-5, rtol=1e-5)


def test_eval_uses_the_eval_capacity_factor() -> None:
    layer = build(capacity_factor=0.5, eval_capacity_factor=1.0)
    x = torch.randn(2, 19, DIM)
    assert layer.train().capacity(19) == math.ceil(0.5 * 2 * 19 / EXPERTS)
    assert layer.eval().capacity(19) == math.ceil(1.0 * 2 * 19 / EXPERTS)
    expected = reference(layer, x, layer.capacity(19), choice_major=True)
    torch.testing.assert_close(layer(x)[0], expected, atol=1e-5, rtol=1e-5)


def test_aux_loss_is_balance_plus_router_z_loss() -> None:
    layer = build(balance_coef=0.02, z_loss_coef=0.005)
    x = torch.randn(3, 11, DIM)
    _, aux_loss = layer(x)
    logits = (x @ layer.router.weight.T).reshape(-1, EXPERTS)  # [B, N], all tokens
    # L_z = 1/B sum_i (log sum_j exp x_ij)^2
    z_loss = sum(torch.log(torch.exp(row).sum()) ** 2 for row in logits) / logits.shape[0]
    probs = logits.softmax(-1)
    f = torch.stack([(probs.argmax(-1) == i).float().mean() for i in range(EXPERTS)])
    balance = EXPERTS * (f * probs.mean(0)).sum()
    torch.testing.assert_close(aux_loss, 0.02 * balance + 0.005 * z_loss)


def test_z_loss_penalises_large_logits() -> None:
    layer = build(balance_coef=0.0)
    x = torch.randn(2, 11, DIM)
    _, small = layer(x)
    with torch.no_grad():
        layer.router.weight.mul_(10)
    _, large = layer(x)
    assert large > small > 0


def test_causal_routing_ignores_the_future_under_heavy_dropping() -> None:
    layer = build(causal=True, capacity_factor=0.3).train()
    x = torch.randn(2, 24, DIM)
    y, _ = layer(x)
    for t in (1, 9, 17):
        x_future = x.clone()
        x_future[:, t:] = torch.randn(2, 24 - t, DIM) * 3
        torch.testing.assert_close(layer(x_future)[0][:, :t], y[:, :t], atol=0, rtol=0)
