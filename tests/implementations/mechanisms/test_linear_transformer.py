"""Linear Transformer (Katharopoulos et al., 2020) against explicit quadratic oracles."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

import implementations
from implementations._helpers import causal_linear_attention
from implementations.linear_transformer import attention, feature_map, recurrent_step

B, H, N, D = 2, 3, 29, 8


def qkv() -> tuple[Tensor, Tensor, Tensor]:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, B, H, N, D).unbind(0)
    return q, k, v


def quadratic(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor) -> Tensor:
    """$\\phi(Q)\\phi(K)^\\top$, masked to ``allowed``, row-normalised, times V (float64)."""
    sim = feature_map(q.double()) @ feature_map(k.double()).transpose(-1, -2)  # [b, h, n, n]
    sim = sim * allowed
    return (sim / sim.sum(-1, keepdim=True)) @ v.double()


def assert_close64(got: Tensor, expected: Tensor) -> None:
    """A float32 result against a float64 oracle, at float32 tolerances."""
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-4)


def test_feature_map_is_elu_plus_one() -> None:
    x = torch.linspace(-4, 4, 17)
    torch.testing.assert_close(feature_map(x), F.elu(x) + 1)
    assert (feature_map(x) > 0).all()


def test_non_causal_equals_quadratic_form() -> None:
    q, k, v = qkv()
    ones = torch.ones(N, N, dtype=torch.bool)
    assert_close64(attention(q, k, v), quadratic(q, k, v, ones))


def test_causal_prefix_sums_equal_masked_quadratic_form() -> None:
    q, k, v = qkv()
    lower = torch.ones(N, N, dtype=torch.bool).tril()
    assert_close64(attention(q, k, v, causal=True), quadratic(q, k, v, lower))


def test_padding_mask_equals_dropping_the_keys() -> None:
    q, k, v = qkv()
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 20:] = False
    mask[1, 3:6] = False
    expected = quadratic(q, k, v, mask[:, None, None, :])
    assert_close64(attention(q, k, v, mask=mask), expected)
    causal = mask[:, None, None, :] & torch.ones(N, N, dtype=torch.bool).tril()
    assert_close64(attention(q, k, v, mask=mask, causal=True), quadratic(q, k, v, causal))


def test_chunked_prefix_sum_does_not_depend_on_chunk_size() -> None:
    q, k, v = qkv()
    phi_q, phi_k = feature_map(q), feature_map(k)
    reference = causal_linear_attention(phi_q, phi_k, v, chunk_size=N)
    for size in (1, 4, 7, 64):
        torch.testing.assert_close(
            causal_linear_attention(phi_q, phi_k, v, chunk_size=size), reference
        )


def test_recurrent_steps_equal_the_parallel_form() -> None:
    q, k, v = qkv()
    state, outs = None, []
    for t in range(N):
        out, state = recurrent_step(q[:, :, t], k[:, :, t], v[:, :, t], state)
        outs.append(out)
    torch.testing.assert_close(torch.stack(outs, dim=2), attention(q, k, v, causal=True))


def test_module_step_decodes_like_the_causal_forward() -> None:
    torch.manual_seed(0)
    layer = implementations.build("linear-transformer", dim=24, heads=3, causal=True)
    x = torch.randn(2, 9, 24)
    state, outs = None, []
    for t in range(9):
        y_t, state = layer.step(x[:, t], state)
        outs.append(y_t)
    torch.testing.assert_close(torch.stack(outs, dim=1), layer(x))
