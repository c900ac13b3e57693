"""GShard: Algorithm 1 (group-level top-2 gating, capacity, random routing) and its loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import implementations

DIM, EXPERTS, GROUP = 16, 4, 8


def build(**options):
    torch.manual_seed(0)
    options = {"experts": EXPERTS, "group_size": GROUP, **options}
    return implementations.build("gshard", dim=DIM, heads=2, **options)


def algorithm1(layer, x: torch.Tensor, rnd: torch.Tensor, capacity: int) -> torch.Tensor:
    """GShard's Algorithm 1 on one group ``x`` ``[S, d]`` with uniforms ``rnd`` ``[S]``."""
    probs = (x @ layer.router.weight.T).softmax(-1)  # [S, E]
    top, index = probs.topk(2, dim=-1)
    g1, g2 = (top / top.sum(-1, keepdim=True)).unbind(-1)  # normalised gates
    combine = torch.zeros(x.shape[0], EXPERTS)  # G_{S,E}
    count = [0] * EXPERTS
    for s in range(x.shape[0]):  # first choices, in position order
        e1 = int(index[s, 0])
        if count[e1] < capacity:
            combine[s, e1] = g1[s]
        count[e1] += 1
    for s in range(x.shape[0]):  # then second choices, each with probability 2 * g2
        e2 = int(index[s, 1])
        if 2 * g2[s] > rnd[s]:  # a skipped claim takes no slot (as in the authors' code)
            if count[e2] < capacity:
                combine[s, e2] = g2[s]
            count[e2] += 1
    experts = [F.relu(x @ layer.experts.w_in[e]) @ layer.experts.w_out[e] for e in range(EXPERTS)]
    return sum(combine[:, e, None] * experts[e] for e in range(EXPERTS))


def test_forward_is_algorithm1_per_group() -> None:
    layer = build(capacity_factor=0.75).train()
    b, n = 2, 20  # 3 groups of 8 per sequence, the last one padded with 4 non-tokens
    x = torch.randn(b, n, DIM)
    torch.manual_seed(5)
    y, _ = layer(x)
    torch.manual_seed(5)
    rnd = torch.rand(b * 3, GROUP)  # the uniforms the layer drew, one per token slot
    capacity = math.ceil(0.75 * 2 * GROUP / EXPERTS)  # C = cf * 2S / E = 3
    for i in range(b):
        for g in range(3):
            rows = slice(g * GROUP, min((g + 1) * GROUP, n))
            chunk = x[i, rows]
            expected = algorithm1(layer, chunk, rnd[i * 3 + g, : chunk.shape[0]], capacity)
            torch.testing.assert_close(y[i, rows], expected, atol=1e-5, rtol=1e-5)


def test_groups_are_routed_independently() -> None:
    """Capacity is per group: each group's output is the layer applied to it alone."""
    layer = build(capacity_factor=0.5).eval()
    x = torch.randn(2, 3 * GROUP, DIM)
    y, _ = layer(x)
    for g in range(3):
        rows = slice(g * GROUP, (g + 1) * GROUP)
        torch.testing.assert_close(layer(x[:, rows])[0], y[:, rows], atol=1e-6, rtol=1e-5)


def test_random_routing_dispatches_the_second_expert_with_probability_2_g2() -> None:
    layer = build().train()
    torch.manual_seed(1)
    probs = (torch.randn(1, 40000, EXPERTS) * 2).softmax(-1)
    valid = torch.ones(1, 40000, dtype=torch.bool)
    routing = layer.route(probs, valid)
    g2 = routing.gates[0, :, 1]
    taken = routing.active[0, :, 1].float()
    assert routing.active[..., 0].all()  # the first expert is always claimed
    for low, high in [(0.0, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5)]:
        rows = (g2 >= low) & (g2 < high)
        p = (2 * g2[rows]).mean()
        sigma = (p * (1 - p) / rows.sum()).sqrt()
        assert abs(taken[rows].mean() - p) < 5 * sigma + 1e-3, (low, high)
    assert layer.eval().route(probs, valid).active.all()  # inference: deterministic top-2


def test_aux_loss_is_the_group_mean_of_e2_l_aux() -> None:
    layer = build(aux_loss_weight=0.1)
    x = torch.randn(2, 20, DIM)  # groups of 8, 8, 4 real tokens per sequence
    _, aux_loss = layer(x)
    losses = []
    for i in range(2):
        for g in range(3):
            chunk = x[i, g * GROUP : (g + 1) * GROUP]
            gates = (chunk @ layer.router.weight.T).softmax(-1)  # g_{S,E}
            c = torch.stack([(gates.argmax(-1) == e).sum() for e in range(EXPERTS)])
            m = gates.mean(0)  # mean gate per expert
            l_aux = (c / chunk.shape[0] * m).sum() / EXPERTS  # (1/E) sum_e (c_e/S) m_e
            losses.append(EXPERTS**2 * l_aux)
    torch.testing.assert_close(aux_loss, 0.1 * torch.stack(losses).mean())


def test_causal_routing_ignores_the_future_under_heavy_dropping() -> None:
    layer = build(causal=True, capacity_factor=0.4, group_size=32).train()
    x = torch.randn(2, 30, DIM)
    torch.manual_seed(3)
    y, _ = layer(x)
    for t in (1, 11, 22):
        x_future = x.clone()
        x_future[:, t:] = torch.randn(2, 30 - t, DIM) * 3
        torch.manual_seed(3)  # the same uniforms for the random routing
        torch.testing.assert_close(layer(x_future)[0][:, :t], y[:, :t], atol=0, rtol=0)
