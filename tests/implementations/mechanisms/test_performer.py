"""Performer / FAVOR+ (Choromanski et al., 2021) against exact softmax and quadratic oracles."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor

import implementations
from implementations._helpers import softmax_attention
from implementations.performer import attention, gaussian_orthogonal_random_matrix

B, H, N, D = 2, 2, 29, 16


def qkv(scale: float = 0.5) -> tuple[Tensor, Tensor, Tensor]:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, B, H, N, D).unbind(0)
    return q * scale, k * scale, v


def favor_features(x: Tensor, w: Tensor) -> Tensor:
    """Unstabilised positive features $\\exp(\\omega^\\top x - \\|x\\|^2/2)$, float64."""
    x = x.double() * x.shape[-1] ** -0.25
    return torch.exp(x @ w.double().T - x.pow(2).sum(-1, keepdim=True) / 2)


def quadratic(phi_q: Tensor, phi_k: Tensor, v: Tensor, allowed: Tensor) -> Tensor:
    sim = (phi_q @ phi_k.transpose(-1, -2)) * allowed  # [b, h, n, n]
    return (sim / sim.sum(-1, keepdim=True)) @ v.double()


def assert_close64(got: Tensor, expected: Tensor) -> None:
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-4)


def test_error_against_softmax_falls_with_the_number_of_features() -> None:
    q, k, v = qkv()
    exact = softmax_attention(q, k, v)
    errors = []
    for m in (16, 64, 256, 1024):
        per_seed = []
        for seed in range(6):
            torch.manual_seed(seed)
            w = gaussian_orthogonal_random_matrix(m, D)
            per_seed.append((attention(q, k, v, w) - exact).pow(2).mean().sqrt())
        errors.append(torch.stack(per_seed).mean().item())
    assert all(a > b for a, b in itertools.pairwise(errors)), errors
    # O(1/sqrt(m)): 64x the features should cut the error by about 8x; ask for 4x.
    assert errors[-1] < errors[0] / 4, errors


def test_causal_prefix_sums_equal_masked_quadratic_form() -> None:
    q, k, v = qkv()
    w = gaussian_orthogonal_random_matrix(64, D)
    phi_q, phi_k = favor_features(q, w), favor_features(k, w)
    lower = torch.ones(N, N, dtype=torch.bool).tril()
    assert_close64(attention(q, k, v, w, causal=True), quadratic(phi_q, phi_k, v, lower))
    everything = torch.ones(N, N, dtype=torch.bool)
    assert_close64(attention(q, k, v, w), quadratic(phi_q, phi_k, v, everything))


def test_padding_mask_equals_dropping_the_keys() -> None:
    q, k, v = qkv()
    w = gaussian_orthogonal_random_matrix(64, D)
    phi_q, phi_k = favor_features(q, w), favor_features(k, w)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 20:] = False
    mask[1, :3] = False  # left padding: no real key before position 3
    keys = mask[:, None, None, :]
    assert_close64(attention(q, k, v, w, mask=mask), quadratic(phi_q, phi_k, v, keys))
    causal = keys & torch.ones(N, N, dtype=torch.bool).tril()
    got = attention(q, k, v, w, mask=mask, causal=True)
    # Queries before the first real key see nothing: the oracle's 0 / 0, our zeros.
    assert (got[1, :, :3] == 0).all()
    assert_close64(got, quadratic(phi_q, phi_k, v, causal).nan_to_num(0.0))


def test_running_max_stabiliser_lets_nothing_leak_from_the_future() -> None:
    """Past outputs are bit-identical whatever the future keys, even maximal ones.

    A stabiliser taken over all keys (future included) rescales past features when a
    future key has the largest feature; the running maximum over keys <= i does not.
    """
    q, k, v = qkv()
    w = gaussian_orthogonal_random_matrix(64, D)
    y = attention(q, k, v, w, causal=True)
    k_future = k.clone()
    # The key maximising a feature: omega_r^T x - |x|^2 / 2 peaks at x = omega_r.
    longest = w[w.norm(dim=-1).argmax()]
    k_future[..., 15:, :] = longest * D**0.25
    y_future = attention(q, k_future, v, w, causal=True)
    assert torch.isfinite(y_future).all()
    assert torch.equal(y_future[..., :15, :], y[..., :15, :])


def test_large_inputs_stay_finite_and_exact() -> None:
    q, k, v = qkv(scale=4.0)
    w = gaussian_orthogonal_random_matrix(64, D)
    phi_q, phi_k = favor_features(q, w), favor_features(k, w)
    lower = torch.ones(N, N, dtype=torch.bool).tril()
    assert_close64(attention(q, k, v, w, causal=True), quadratic(phi_q, phi_k, v, lower))


def test_feature_blocks_are_orthogonal_with_gaussian_norms() -> None:
    torch.manual_seed(0)
    w = gaussian_orthogonal_random_matrix(3 * D + 5, D)
    assert w.shape == (3 * D + 5, D)
    for start in range(0, w.shape[0], D):
        block = w[start : start + D]
        directions = F.normalize(block, dim=-1)
        torch.testing.assert_close(
            directions @ directions.T, torch.eye(len(block)), atol=1e-5, rtol=0
        )
    # Norms follow chi_D (mean about sqrt(D)), not a constant.
    norms = w.norm(dim=-1)
    assert norms.std() > 0.1
    assert abs(norms.mean().item() - D**0.5) < 1.0
    iid = gaussian_orthogonal_random_matrix(D, D, orthogonal=False)
    gram = F.normalize(iid, dim=-1) @ F.normalize(iid, dim=-1).T
    assert (gram - torch.eye(D)).abs().max() > 0.1


def test_relu_kernel_equals_its_quadratic_form() -> None:
    q, k, v = qkv()
    w = gaussian_orthogonal_random_matrix(64, D)
    scale = D**-0.25
    phi_q = F.relu(q.double() * scale @ w.double().T)
    phi_k = F.relu(k.double() * scale @ w.double().T)
    lower = torch.ones(N, N, dtype=torch.bool).tril()
    got = attention(q, k, v, w, causal=True, kernel="relu")
    assert_close64(got, quadratic(phi_q, phi_k, v, lower))


def test_features_are_redrawn_on_schedule_in_training_only() -> None:
    torch.manual_seed(0)
    layer = implementations.build(
        "performer", dim=32, heads=4, nb_features=32, feature_redraw_interval=2
    )
    x = torch.randn(1, 5, 32)
    first = layer.projection.clone()
    layer(x)
    layer(x)
    torch.testing.assert_close(layer.projection, first)  # two calls on the first draw
    layer(x)
    assert not torch.equal(layer.projection, first)  # the third call redrew
    layer.eval()
    second = layer.projection.clone()
    for _ in range(3):
        layer(x)
    torch.testing.assert_close(layer.projection, second)
