"""Based (Arora et al., 2024): Taylor feature map, linear branch and sliding window vs oracles."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import implementations
from implementations.based import taylor_feature_map


def test_taylor_inner_product_is_the_second_order_expansion() -> None:
    torch.manual_seed(0)
    q, k = torch.randn(2, 50, 16, dtype=torch.float64).unbind(0)
    x = (q * k).sum(-1) / 16**0.5  # q.k / sqrt(d')
    inner = (taylor_feature_map(q) * taylor_feature_map(k)).sum(-1)
    torch.testing.assert_close(inner, 1 + x + x**2 / 2)
    assert taylor_feature_map(q).shape[-1] == 1 + 16 + 16**2
    assert (inner >= 0.5).all()  # 1 + x + x^2/2 >= 1/2: a valid attention weight


def branch_inputs(layer: torch.nn.Module, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    q, k, v = layer.linear.qkv(x)
    return q.double(), k.double(), v.double()


def taylor_oracle(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor) -> Tensor:
    """Weights 1 + s + s^2/2 (s = q.k / sqrt(d')), masked, row-normalised, times V."""
    s = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5  # [b, h, n, n]
    weights = (1 + s + s**2 / 2) * allowed
    return (weights / weights.sum(-1, keepdim=True)) @ v


@pytest.mark.parametrize("causal", [True, False])
def test_linear_branch_equals_the_quadratic_taylor_attention(causal: bool) -> None:
    torch.manual_seed(1)
    layer = implementations.build("based", dim=32, heads=4, causal=causal, feature_dim=8)
    x = torch.randn(2, 70, 32)  # more than one chunk of the causal prefix sums
    mask = torch.ones(2, 70, dtype=torch.bool)
    mask[1, 50:] = False
    mask[1, 5:9] = False
    allowed = mask[:, None, None, :] & (torch.ones(70, 70).tril().bool() if causal else True)
    with torch.no_grad():
        got = layer._linear_branch(x, mask)
    expected = taylor_oracle(*branch_inputs(layer, x), allowed)  # position 0 is real: no 0 / 0
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [True, False])
def test_window_branch_equals_banded_softmax(causal: bool) -> None:
    torch.manual_seed(2)
    w = 5
    layer = implementations.build("based", dim=32, heads=4, causal=causal, window_size=w)
    x = torch.randn(2, 23, 32)
    mask = torch.ones(2, 23, dtype=torch.bool)
    mask[0, 3:5] = False
    q, k, v = (t.double() for t in layer.window.qkv(x))
    i = torch.arange(23)
    offset = i[None, :] - i[:, None]  # key - query
    band = (offset <= 0 if causal else offset <= w - 1) & (offset >= -(w - 1))
    scores = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
    scores = scores.masked_fill(~(band & mask[:, None, None, :]), float("-inf"))
    expected = scores.softmax(-1) @ v
    with torch.no_grad():
        got = layer._window_branch(x, mask)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-4)


def test_layer_is_the_sum_of_the_two_branches() -> None:
    torch.manual_seed(3)
    layer = implementations.build("based", dim=32, heads=4, causal=True, window_size=4)
    x = torch.randn(1, 12, 32)
    with torch.no_grad():
        linear = layer.linear.out(layer._linear_branch(x, None))
        window = layer.window.out(layer._window_branch(x, None))
        torch.testing.assert_close(layer(x), linear + window)


def test_step_with_a_full_window_cache_equals_causal_forward() -> None:
    """n > w, so the window cache shifts out old keys; the linear state keeps them all."""
    torch.manual_seed(4)
    layer = implementations.build("based", dim=16, heads=2, causal=True, window_size=3)
    x = torch.randn(2, 80, 16)
    with torch.no_grad():
        y = layer(x)
        state, steps = layer.init_state(2), []
        for t in range(80):
            y_t, state = layer.step(x[:, t], state)
            steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), y, atol=1e-5, rtol=1e-4)
    assert state[2].shape == (2, 2, 3, 8) and bool(state[4].all())


def test_step_refuses_the_non_causal_layer() -> None:
    layer = implementations.build("based", dim=16, heads=2)
    with pytest.raises(ValueError, match="causal"):
        layer.step(torch.randn(1, 16), layer.init_state(1))
