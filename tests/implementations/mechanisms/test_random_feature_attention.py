"""Random Feature Attention (Peng et al., 2021) against softmax and step-by-step oracles."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import implementations
from implementations._helpers import softmax_attention
from implementations.random_feature_attention import EPS, attention, random_features

B, H, N, D = 2, 2, 23, 16


def qkv() -> tuple[Tensor, Tensor, Tensor]:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, B, H, N, D).unbind(0)
    return q, k, v


def recurrence(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    omega: Tensor,
    gate_logits: Tensor | None,
    mask: Tensor | None = None,
) -> Tensor:
    """The paper's recurrence, one step at a time, in float64.

    S_t = g_t S_{t-1} + (1 - g_t) phi(k_t) v_t^T, z_t = g_t z_{t-1} + (1 - g_t) phi(k_t)
    (g_t = 1 - g_t = 1 without a gate: plain sums); padded steps leave S and z untouched.
    """
    phi_q = random_features(q, omega).double()
    phi_k = random_features(k, omega).double()
    s = torch.zeros(B, H, phi_k.shape[-1], v.shape[-1], dtype=torch.float64)
    z = torch.zeros(B, H, phi_k.shape[-1], dtype=torch.float64)
    outs = []
    for t in range(q.shape[-2]):
        g = torch.ones(B, H, 1, dtype=torch.float64)  # no gate: plain sums
        w_in = torch.ones(B, H, 1, dtype=torch.float64)
        if gate_logits is not None:
            g = torch.sigmoid(gate_logits[..., t].double()).unsqueeze(-1)  # [b, h, 1]
            w_in = 1 - g
        if mask is not None:
            real = mask[:, None, t, None]  # [b, 1, 1]
            g = torch.where(real, g, torch.ones_like(g))
            w_in = torch.where(real, w_in, torch.zeros_like(w_in))
        kv = phi_k[..., t, :, None] * v[..., t, None, :].double()  # [b, h, F, dv]
        s = g.unsqueeze(-1) * s + w_in.unsqueeze(-1) * kv
        z = g * z + w_in * phi_k[..., t, :]
        num = torch.einsum("bhf,bhfe->bhe", phi_q[..., t, :], s)
        den = (phi_q[..., t, :] * z).sum(-1, keepdim=True).clamp_min(EPS)
        outs.append(num / den)
    return torch.stack(outs, dim=2)


def assert_close64(got: Tensor, expected: Tensor) -> None:
    torch.testing.assert_close(got.double(), expected, atol=2e-5, rtol=1e-4)


def test_error_against_softmax_falls_with_the_number_of_features() -> None:
    """With sigma = 1 and unit-norm q, k, RFA estimates softmax(q_hat . k_hat)."""
    q, k, v = qkv()
    exact = softmax_attention(F.normalize(q, dim=-1), F.normalize(k, dim=-1), v, scale=1.0)
    errors = []
    for features in (16, 64, 256, 1024):
        per_seed = []
        for seed in range(6):
            torch.manual_seed(seed)
            omega = torch.randn(H, features, D)
            per_seed.append((attention(q, k, v, omega) - exact).pow(2).mean().sqrt())
        errors.append(torch.stack(per_seed).mean().item())
    assert all(a > b for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < errors[0] / 4, errors


def test_features_estimate_the_gaussian_kernel() -> None:
    torch.manual_seed(0)
    x, y = F.normalize(torch.randn(2, 1, 1, 5, D), dim=-1).unbind(0)
    omega = torch.randn(1, 20000, D) / 0.7  # w ~ N(0, sigma^-2 I), sigma = 0.7
    estimate = random_features(x, omega) @ random_features(y, omega).transpose(-1, -2)
    kernel = torch.exp(-torch.cdist(x[0, 0], y[0, 0]).pow(2) / (2 * 0.7**2))
    torch.testing.assert_close(estimate[0, 0], kernel, atol=0.03, rtol=0)


def test_gated_causal_form_equals_the_step_by_step_recurrence() -> None:
    q, k, v = qkv()
    omega = torch.randn(H, 32, D)
    gate_logits = torch.randn(B, H, N)
    got = attention(q, k, v, omega, causal=True, gate_logits=gate_logits)
    assert_close64(got, recurrence(q, k, v, omega, gate_logits))


def test_ungated_causal_form_equals_the_recurrence() -> None:
    q, k, v = qkv()
    omega = torch.randn(H, 32, D)
    assert_close64(attention(q, k, v, omega, causal=True), recurrence(q, k, v, omega, None))


def test_padded_steps_leave_the_gated_state_untouched() -> None:
    q, k, v = qkv()
    omega = torch.randn(H, 32, D)
    gate_logits = torch.randn(B, H, N)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 15:] = False
    mask[1, 4:8] = False
    got = attention(q, k, v, omega, mask=mask, causal=True, gate_logits=gate_logits)
    assert_close64(got, recurrence(q, k, v, omega, gate_logits, mask))


def test_gate_needs_causal() -> None:
    with pytest.raises(ValueError, match="causal"):
        implementations.build("random-feature-attention", dim=32, heads=4, gated=True)


def test_arccos_features_are_rectified_projections() -> None:
    torch.manual_seed(0)
    x, omega = torch.randn(1, 2, 3, D), torch.randn(2, 8, D)
    expected = F.relu(torch.einsum("bhnd,hrd->bhnr", F.normalize(x, dim=-1), omega)) / 8**0.5
    torch.testing.assert_close(random_features(x, omega, "arccos"), expected)


def test_resampling_draws_fresh_features_in_training_only() -> None:
    torch.manual_seed(0)
    layer = implementations.build(
        "random-feature-attention", dim=32, heads=4, causal=True, resample_features=True
    )
    x = torch.randn(1, 7, 32)
    assert not torch.allclose(layer(x), layer(x))  # a new draw per training step
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))  # fixed for evaluation
