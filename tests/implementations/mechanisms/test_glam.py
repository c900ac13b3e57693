"""GLaM: top-2 gating with normalised combine weights over Gated-GELU experts."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import implementations

DIM, EXPERTS = 16, 8


def build(**options):
    torch.manual_seed(0)
    return implementations.build("glam", dim=DIM, heads=2, experts=EXPERTS, **options)


def expert(layer, e: int, v: torch.Tensor) -> torch.Tensor:
    """Gated GELU: (GELU(x W) * x V) W_out."""
    w = layer.experts
    return (F.gelu(v @ w.w_gate[e]) * (v @ w.w_in[e])) @ w.w_out[e]


def test_top2_combine_weights_are_normalised() -> None:
    layer = build(capacity_factor=EXPERTS / 2)  # C = S: nothing is dropped
    x = torch.randn(2, 13, DIM)
    y, _ = layer(x)
    probs = (x @ layer.router.weight.T).softmax(-1)
    top, index = probs.topk(2, dim=-1)
    weights = top / top.sum(-1, keepdim=True)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 13))
    assert (top.sum(-1) < 0.99).all(), "raw top-2 probabilities do not sum to 1 here"
    expected = torch.zeros_like(x)
    for b in range(2):
        for t in range(13):
            for j in range(2):
                e = int(index[b, t, j])
                expected[b, t] += weights[b, t, j] * expert(layer, e, x[b, t])
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)


def test_capacity_is_two_s_over_e_by_default() -> None:
    layer = build()
    assert layer.capacity(64) == math.ceil(2 * 64 / EXPERTS)


def test_aux_loss_is_gshard_load_balancing_per_sequence() -> None:
    layer = build(aux_loss_weight=0.05)
    x = torch.randn(3, 11, DIM)
    _, aux_loss = layer(x)
    per_sequence = []
    for b in range(3):
        gates = (x[b] @ layer.router.weight.T).softmax(-1)
        f = torch.stack([(gates.argmax(-1) == e).float().mean() for e in range(EXPERTS)])
        per_sequence.append(EXPERTS * (f * gates.mean(0)).sum())
    torch.testing.assert_close(aux_loss, 0.05 * torch.stack(per_sequence).mean())


def test_decoder_routing_ignores_the_future_under_heavy_dropping() -> None:
    layer = build(causal=True, capacity_factor=0.3).train()
    x = torch.randn(2, 24, DIM)
    y, _ = layer(x)
    for t in (1, 9, 17):
        x_future = x.clone()
        x_future[:, t:] = torch.randn(2, 24 - t, DIM) * 3
        torch.testing.assert_close(layer(x_future)[0][:, :t], y[:, :t], atol=0, rtol=0)
