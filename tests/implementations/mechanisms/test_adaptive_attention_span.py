"""Adaptive attention span: the soft mask, the banded attention, and the learned span."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

import implementations
from implementations.adaptive_attention_span import soft_span_mask, span_attention


def test_soft_mask_values() -> None:
    """m_z(x) = clamp((R + z - x) / R, 0, 1): 1 up to z, a ramp of R, then 0."""
    distance = torch.tensor([0.0, 5.0, 10.0, 12.0, 14.0, 20.0])
    m = soft_span_mask(distance, torch.tensor([10.0, 0.0]), ramp=4)
    expected = torch.tensor(
        [
            [1.0, 1.0, 1.0, 0.5, 0.0, 0.0],  # z = 10: ramp over distances 10..14
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # z = 0: (4 - x) / 4, zero from x = 4
        ]
    )
    torch.testing.assert_close(m, expected)


def oracle(
    q: Tensor, k: Tensor, v: Tensor, z: Tensor, max_span: int, ramp: int, causal: bool, mask: Tensor
) -> Tensor:
    """a_tr = m(t - r) exp(s_tr) / sum_q m(t - q) exp(s_tq) over the span, in float64."""
    q, k, v, z = q.double(), k.double(), v.double(), z.double()
    n = q.shape[-2]
    pos = torch.arange(n)
    offset = pos[None, :] - pos[:, None]  # [n, n]: key - query
    distance = offset.abs().double()
    inside = distance < max_span
    if causal:
        inside &= offset <= 0
    m = ((ramp + z[:, None, None] - distance) / ramp).clamp(0, 1)  # [h, n, n]
    m = m * inside * mask[:, None, None, :]  # [b, h, n, n]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # [b, h, n, n]
    weights = m * (scores - scores.amax(-1, keepdim=True)).exp()
    return (weights / weights.sum(-1, keepdim=True)) @ v


@pytest.mark.parametrize("causal", [True, False])
def test_equals_dense_restricted_to_the_span(causal: bool) -> None:
    torch.manual_seed(0)
    b, h, n, d = 2, 3, 29, 8
    q, k, v = (torch.randn(b, h, n, d) for _ in range(3))
    z = torch.tensor([0.0, 3.5, 20.0])  # a short, a fractional and a long span
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[1, 25:] = False
    mask[1, 4] = False
    out = span_attention(q, k, v, z, max_span=12, ramp=4, causal=causal, mask=mask)
    expected = oracle(q, k, v, z, 12, 4, causal, mask)
    real = mask[:, None, :].expand(b, h, n)
    torch.testing.assert_close(out[real].double(), expected[real], atol=1e-5, rtol=1e-5)


def test_gradient_reaches_the_span_and_matches_the_oracle() -> None:
    torch.manual_seed(1)
    b, h, n, d = 1, 2, 17, 4
    q, k, v = (torch.randn(b, h, n, d) for _ in range(3))
    mask = torch.ones(b, n, dtype=torch.bool)
    z = torch.tensor([2.2, 5.5], requires_grad=True)  # no mask value exactly at a kink
    span_attention(q, k, v, z, max_span=10, ramp=3, causal=True, mask=mask).pow(2).sum().backward()
    z64 = z.detach().double().requires_grad_(True)
    oracle(q, k, v, z64, 10, 3, True, mask).pow(2).sum().backward()
    assert z.grad is not None and z64.grad is not None
    assert bool((z.grad.abs() > 0).all()), "every head's span must receive a gradient"
    torch.testing.assert_close(z.grad.double(), z64.grad, atol=1e-4, rtol=1e-4)


def test_layer_penalty_and_parameter_gradient() -> None:
    torch.manual_seed(2)
    layer = implementations.build(
        "adaptive-attention-span",
        dim=16,
        heads=2,
        causal=True,
        max_span=8,
        ramp=2,
        span_loss=0.5,
        span_init=0.25,
    )
    y = layer(torch.randn(2, 13, 16))
    # L_span = lambda * mean_i z_i with z_i = S * 0.25 = 2.
    torch.testing.assert_close(layer.aux_loss, torch.tensor(0.5 * 2.0))
    (y.sum() + layer.aux_loss).backward()
    assert layer.span_ratio.grad is not None and bool((layer.span_ratio.grad != 0).all())


def test_a_long_span_without_ramp_effect_is_sliding_window_attention() -> None:
    """With z = S every key in the window has m = 1: plain causal window attention."""
    torch.manual_seed(3)
    q, k, v = (torch.randn(1, 1, 15, 4) for _ in range(3))
    out = span_attention(q, k, v, torch.tensor([6.0]), max_span=6, ramp=2, causal=True)
    i, j = torch.arange(15)[:, None], torch.arange(15)[None, :]
    allowed = (j <= i) & (i - j < 6)
    scores = (q @ k.transpose(-1, -2) / 2.0).masked_fill(~allowed, -math.inf)
    torch.testing.assert_close(out, scores.softmax(-1) @ v, atol=1e-5, rtol=1e-5)
