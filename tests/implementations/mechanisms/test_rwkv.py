"""RWKV-4 (Peng et al., 2023): the chunked, stabilised WKV against its definition in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import implementations
from implementations.rwkv import RWKV, wkv

B, N, D = 2, 29, 5


def wkv_definition(w: Tensor, u: Tensor, k: Tensor, v: Tensor, causal: bool = True) -> Tensor:
    """The paper's formula, every weight exp(k_s - (|t - s| - 1) w) written out (float64)."""
    n = k.shape[1]
    t = torch.arange(n)
    distance = (t[:, None] - t[None, :]).abs() - 1  # [t, s]
    weights = torch.exp(k[:, None, :, :] - distance[None, :, :, None] * w)  # [b, t, s, d]
    seen = t[None, :] < t[:, None] if causal else t[None, :] != t[:, None]
    weights = weights * seen[None, :, :, None]
    bonus = torch.exp(u + k)  # [b, n, d]
    num = (weights * v[:, None]).sum(2) + bonus * v
    return num / (weights.sum(2) + bonus)


def wkv_inputs(scale: float = 1.0) -> tuple[Tensor, ...]:
    torch.manual_seed(0)
    w = torch.rand(D, dtype=torch.float64) * 2
    u = torch.randn(D, dtype=torch.float64)
    k = torch.randn(B, N, D, dtype=torch.float64) * scale
    v = torch.randn(B, N, D, dtype=torch.float64)
    return w, u, k, v


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("chunk_size", [1, 3, 8, 64])
def test_chunked_wkv_equals_the_definition(causal: bool, chunk_size: int) -> None:
    inputs = wkv_inputs()
    got = wkv(*inputs, causal=causal, chunk_size=chunk_size)
    torch.testing.assert_close(got, wkv_definition(*inputs, causal=causal), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("causal", [True, False])
def test_wkv_gradients_equal_the_definition(causal: bool) -> None:
    inputs = [t.requires_grad_() for t in wkv_inputs()]
    weights = torch.randn(B, N, D, dtype=torch.float64)
    got = torch.autograd.grad((wkv(*inputs, causal=causal, chunk_size=8) * weights).sum(), inputs)
    want = torch.autograd.grad((wkv_definition(*inputs, causal=causal) * weights).sum(), inputs)
    for g, expected in zip(got, want, strict=True):
        torch.testing.assert_close(g, expected, atol=1e-10, rtol=1e-8)


def test_wkv_passes_gradcheck() -> None:
    w, u, k, v = wkv_inputs()
    args = tuple(t.clone().requires_grad_() for t in (w[:2], u[:2], k[:1, :7, :2], v[:1, :7, :2]))
    assert torch.autograd.gradcheck(lambda *a: wkv(*a, chunk_size=3), args)
    assert torch.autograd.gradcheck(lambda *a: wkv(*a, causal=False, chunk_size=3), args)


@pytest.mark.parametrize("causal", [True, False])
def test_huge_keys_do_not_overflow_in_float32(causal: bool) -> None:
    """exp(k) overflows float32 beyond k = 88; the running-maximum form does not."""
    inputs = wkv_inputs(scale=150.0)
    assert inputs[2].max() > 100  # exp(100) is inf in float32
    got = wkv(*(t.float() for t in inputs), causal=causal, chunk_size=8)
    assert torch.isfinite(got).all()
    expected = wkv_definition(*inputs, causal=causal)  # float64 holds exp(k) up to k = 709
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-4)


def layer_oracle(layer: RWKV, x: Tensor) -> Tensor:
    previous = F.pad(x, (0, 0, 1, -1))
    mixed = [
        x * mu + previous * (1 - mu)
        for mu in (layer.time_mix_r, layer.time_mix_k, layer.time_mix_v)
    ]
    r = torch.sigmoid(layer.receptance(mixed[0]))
    k, v = layer.key(mixed[1]), layer.value(mixed[2])
    y = wkv_definition(layer.time_decay.exp(), layer.time_first, k, v, causal=layer.causal)
    return layer.output(r * y)


@pytest.mark.parametrize("causal", [True, False])
def test_layer_equals_the_definition(causal: bool) -> None:
    torch.manual_seed(0)
    layer = implementations.build("rwkv", dim=8, heads=2, causal=causal).double().eval()
    x = torch.randn(B, N, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), layer_oracle(layer, x), atol=1e-12, rtol=1e-10)


def test_stable_recurrence_equals_parallel_form_in_float64() -> None:
    torch.manual_seed(0)
    layer = implementations.build("rwkv", dim=8, heads=2, causal=True).double().eval()
    x = torch.randn(B, N, 8, dtype=torch.float64) * 3
    state = layer.init_state(B, dtype=torch.float64)
    steps = []
    with torch.no_grad():
        for t in range(N):
            y_t, state = layer.step(x[:, t], state)
            steps.append(y_t)
        torch.testing.assert_close(torch.stack(steps, 1), layer(x), atol=1e-10, rtol=1e-8)


def test_padded_keys_get_zero_weight() -> None:
    """Right padding: real outputs equal those of the sequence without the padding."""
    torch.manual_seed(0)
    layer = implementations.build("rwkv", dim=8, heads=2, causal=False).double().eval()
    x = torch.randn(1, N, 8, dtype=torch.float64)
    mask = torch.ones(1, N, dtype=torch.bool)
    mask[:, 20:] = False
    with torch.no_grad():
        torch.testing.assert_close(layer(x, mask)[:, :20], layer(x[:, :20]), atol=1e-12, rtol=1e-10)
