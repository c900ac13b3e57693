"""Switch Transformer: top-1 routing, capacity dropping in position order, the aux loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import implementations

DIM, EXPERTS = 16, 4


def build(**options):
    torch.manual_seed(0)
    return implementations.build("switch-transformer", dim=DIM, heads=2, experts=EXPERTS, **options)


def reference(layer, x: torch.Tensor, capacity: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's per-token loop: argmax expert, kept while the expert has room."""
    probs = (x @ layer.router.weight.T).softmax(-1)  # [b, n, E]
    y = torch.zeros_like(x)
    kept = torch.zeros(x.shape[:2], dtype=torch.bool)
    for b in range(x.shape[0]):
        used = [0] * EXPERTS
        for t in range(x.shape[1]):
            e = int(probs[b, t].argmax())
            if used[e] < capacity:
                h = F.relu(x[b, t] @ layer.experts.w_in[e]) @ layer.experts.w_out[e]
                y[b, t] = probs[b, t, e] * h
                kept[b, t] = True
            used[e] += 1
    return y, kept


def test_drops_exactly_the_tokens_over_capacity_in_position_order() -> None:
    layer = build(capacity_factor=0.5)
    x = torch.randn(3, 20, DIM)
    capacity = math.ceil(0.5 * 20 / EXPERTS)  # 3 slots per expert and sequence
    y, _ = layer(x)
    expected, kept = reference(layer, x, capacity)
    assert (~kept).any(), "the test should exercise dropping"
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(y[~kept], torch.zeros_like(y[~kept]))  # dropped: zero (residual only)


def test_ample_capacity_is_the_plain_top1_mixture() -> None:
    layer = build(capacity_factor=float(EXPERTS))  # C = n: nothing is dropped
    x = torch.randn(2, 13, DIM)
    y, _ = layer(x)
    expected, kept = reference(layer, x, capacity=13)
    assert kept.all()
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)


def test_aux_loss_is_alpha_n_sum_f_p_over_the_batch() -> None:
    layer = build(alpha=0.03)
    x = torch.randn(2, 15, DIM)
    _, aux_loss = layer(x)
    probs = (x @ layer.router.weight.T).softmax(-1).reshape(-1, EXPERTS)  # all T tokens
    f = torch.stack([(probs.argmax(-1) == i).float().mean() for i in range(EXPERTS)])
    p = probs.mean(0)
    torch.testing.assert_close(aux_loss, 0.03 * EXPERTS * (f * p).sum())


def test_future_tokens_never_displace_past_ones() -> None:
    """Heavy dropping, train mode: outputs before t ignore tokens from t on."""
    layer = build(capacity_factor=0.3, causal=True).train()
    x = torch.randn(2, 24, DIM)
    y, _ = layer(x)
    for t in (1, 7, 16):
        x_future = x.clone()
        x_future[:, t:] = torch.randn(2, 24 - t, DIM) * 3
        torch.testing.assert_close(layer(x_future)[0][:, :t], y[:, :t], atol=0, rtol=0)


def test_padding_tokens_take_no_capacity() -> None:
    layer = build(capacity_factor=0.5)
    x = torch.randn(2, 20, DIM)
    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[:, :6] = False  # left padding would otherwise take the first slots
    y, _ = layer(x, mask)
    y_changed, _ = layer(torch.where(mask[..., None], x, torch.randn_like(x)), mask)
    torch.testing.assert_close(y_changed[mask], y[mask], atol=0, rtol=0)
    assert torch.equal(y[~mask], torch.zeros_like(y[~mask]))
