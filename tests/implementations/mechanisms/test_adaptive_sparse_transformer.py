"""Adaptively sparse attention (Correia et al., 2019): alpha-entmax against closed forms."""

from __future__ import annotations

import pytest
import torch

import implementations
from implementations import dense
from implementations.adaptive_sparse_transformer import SOFTMAX_LIMIT, attention, entmax


def sparsemax(z: torch.Tensor) -> torch.Tensor:
    """The sort-based closed form of sparsemax (Martins and Astudillo, 2016), last dim."""
    z_sorted, _ = z.sort(dim=-1, descending=True)
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    cumsum = z_sorted.cumsum(-1)
    in_support = 1 + k * z_sorted > cumsum  # [..., d]
    k_z = in_support.sum(-1, keepdim=True)  # support size
    tau = (cumsum.gather(-1, k_z - 1) - 1) / k_z.to(z.dtype)
    return torch.clamp(z - tau, min=0)


def entmax15(z: torch.Tensor) -> torch.Tensor:
    """The sort-based closed form of 1.5-entmax (Peters et al., 2019), last dim.

    With x = z / 2 sorted decreasingly, for each candidate support size k the threshold
    solves sum_{j<=k} (x_j - tau)^2 = 1: tau_k = mean_k - sqrt((1 - k (ms_k - mean_k^2)) / k).
    """
    x, _ = (z / 2).sort(dim=-1, descending=True)
    k = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    mean = x.cumsum(-1) / k
    mean_sq = (x**2).cumsum(-1) / k
    tau = mean - torch.sqrt(torch.clamp((1 - k * (mean_sq - mean**2)) / k, min=0))
    k_z = (tau <= x).sum(-1, keepdim=True)
    tau_star = tau.gather(-1, k_z - 1)
    return torch.clamp(z / 2 - tau_star, min=0) ** 2


def scores(*shape: int, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randn(*shape) * 2


def test_alpha_one_is_softmax() -> None:
    z = scores(4, 7, 9)
    torch.testing.assert_close(entmax(z, 1.0), z.softmax(-1), atol=0, rtol=0)


def test_alpha_to_one_limit_is_continuous() -> None:
    """Just above the softmax switch, the bisection result is already softmax to ~1e-3."""
    z = scores(4, 7, 9)
    for alpha in (1 + 2 * SOFTMAX_LIMIT, 1.001):
        torch.testing.assert_close(entmax(z, alpha), z.softmax(-1), atol=2e-3, rtol=0)
    errors = [(entmax(z, a) - z.softmax(-1)).abs().max() for a in (1.1, 1.01, 1.001)]
    assert errors[0] > errors[1] > errors[2]


def test_alpha_two_is_sparsemax_with_exact_zeros() -> None:
    z = scores(6, 11)
    p = entmax(z, 2.0)
    expected = sparsemax(z)
    torch.testing.assert_close(p, expected, atol=1e-6, rtol=0)
    assert (p == 0).any(), "sparsemax of spread-out scores should drop some entries"
    torch.testing.assert_close(p == 0, expected == 0)  # the same support, exact zeros


def test_alpha_one_and_a_half_matches_closed_form() -> None:
    z = scores(6, 11, seed=1).double()
    torch.testing.assert_close(entmax(z, 1.5), entmax15(z), atol=1e-10, rtol=0)


@pytest.mark.parametrize("alpha", [1.0, 1.2, 1.5, 1.8, 2.0])
def test_outputs_are_distributions(alpha: float) -> None:
    p = entmax(scores(5, 13), alpha)
    assert (p >= 0).all()
    torch.testing.assert_close(p.sum(-1), torch.ones(5), atol=1e-6, rtol=0)


def test_sparsity_grows_with_alpha() -> None:
    z = scores(64, 32)
    zeros = [(entmax(z, a) == 0).float().mean().item() for a in (1.0, 1.25, 1.5, 2.0)]
    assert zeros[0] == 0 and zeros[0] < zeros[1] < zeros[2] < zeros[3]


def test_minus_inf_gets_zero_weight_and_empty_rows_are_zero() -> None:
    z = scores(3, 6)
    z[0, :2] = -torch.inf
    z[2] = -torch.inf  # nothing visible
    for alpha in (1.0, 1.5):
        p = entmax(z, alpha)
        assert (p[0, :2] == 0).all()
        torch.testing.assert_close(p[0, 2:], entmax(z[0, 2:], alpha))
        assert (p[2] == 0).all()


def test_gradcheck_scores_and_alpha() -> None:
    """The closed-form backward (in z and in alpha) against finite differences, float64."""
    torch.manual_seed(0)
    z = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    alpha = (1.1 + 0.8 * torch.rand(2, 3, 1, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda z, a: entmax(z, a, n_iter=80), (z, alpha))
    # Sparsemax's Jacobian too (alpha = 2 exactly, gradient in z only).
    assert torch.autograd.gradcheck(lambda z: entmax(z, 2.0, n_iter=80), (z,))


def test_attention_with_alpha_one_is_dense() -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 3, 10, 8).unbind(0)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 7:] = False
    for causal in (False, True):
        out = attention(q, k, v, alpha=1.0, mask=mask, causal=causal)
        expected = dense.attention(q, k, v, mask=mask, causal=causal)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


def test_attention_matches_explicit_entmax_per_head() -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 3, 10, 8).unbind(0)
    alpha = torch.tensor([1.2, 1.5, 2.0])
    out = attention(q, k, v, alpha=alpha, causal=True)
    future = torch.ones(10, 10, dtype=torch.bool).triu(1)
    for h in range(3):
        z = (q[:, h] @ k[:, h].transpose(-1, -2) / 8**0.5).masked_fill(future, -torch.inf)
        expected = entmax(z, alpha[h].item()) @ v[:, h]
        torch.testing.assert_close(out[:, h], expected, atol=1e-5, rtol=1e-4)


def test_module_learns_alpha_in_open_interval() -> None:
    torch.manual_seed(0)
    layer = implementations.build("adaptive-sparse-transformer", dim=16, heads=4)
    assert ((layer.alpha > 1) & (layer.alpha < 2)).all()
    layer(torch.randn(2, 9, 16)).sum().backward()
    assert layer.pre_alpha.grad is not None and (layer.pre_alpha.grad != 0).all()


def test_fixed_alpha_has_no_alpha_parameter_and_bad_alpha_fails() -> None:
    layer = implementations.build("adaptive-sparse-transformer", dim=16, heads=4, alpha=1.5)
    assert not hasattr(layer, "pre_alpha")
    torch.testing.assert_close(layer.alpha, torch.full((4,), 1.5))
    with pytest.raises(ValueError, match="alpha"):
        implementations.build("adaptive-sparse-transformer", dim=16, heads=4, alpha=3.0)
