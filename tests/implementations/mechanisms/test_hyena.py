"""Hyena (Poli et al., 2023): FFT convolutions and the gated recurrence vs dense oracles."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import implementations
from implementations._scan import causal_depthwise_conv, fft_conv
from implementations.hyena import Hyena, ImplicitFilter

B, N, DIM = 2, 31, 6


def convolution_matrix(past: Tensor, future: Tensor | None) -> Tensor:
    """``[c, n, n]``: ``M[t, s] = h_{t-s}``, lags ``t - s < 0`` from ``future`` (or 0)."""
    n = past.shape[-1]
    t = torch.arange(n)
    lag = t[:, None] - t[None, :]
    matrix = past[:, lag.clamp(min=0)] * (lag >= 0)
    if future is not None:
        matrix = matrix + future[:, (-lag - 1).clamp(min=0)] * (lag < 0)
    return matrix


def test_fft_convolution_equals_direct_causal_convolution_in_float64() -> None:
    torch.manual_seed(0)
    u = torch.randn(B, DIM, N, dtype=torch.float64)
    h = torch.randn(DIM, N, dtype=torch.float64)
    direct = torch.stack(
        [sum(h[:, j] * u[..., t - j] for j in range(t + 1)) for t in range(N)], dim=-1
    )  # y_t = sum_{j <= t} h_j u_{t-j}
    torch.testing.assert_close(fft_conv(u, h), direct, atol=1e-12, rtol=1e-10)
    # The same through nn.functional.conv1d (cross-correlation with the flipped filter).
    via_conv1d = F.conv1d(F.pad(u, (N - 1, 0)), h.flip(-1)[:, None], groups=DIM)
    torch.testing.assert_close(fft_conv(u, h), via_conv1d, atol=1e-12, rtol=1e-10)


def test_short_convolution_is_causal_and_depthwise() -> None:
    torch.manual_seed(0)
    x = torch.randn(B, N, DIM, dtype=torch.float64)
    weight, bias = torch.randn(DIM, 3, dtype=torch.float64), torch.randn(DIM, dtype=torch.float64)
    padded = F.pad(x, (0, 0, 2, 0))
    expected = torch.stack([(padded[:, t : t + 3] * weight.T).sum(1) for t in range(N)], 1) + bias
    torch.testing.assert_close(causal_depthwise_conv(x, weight, bias), expected)


def test_implicit_filter_decays_inside_its_window() -> None:
    """|h_t| <= sum_j |W_cj| exp(-alpha_c |t| / L): the FFN output is bounded by 1 (sin)."""
    torch.manual_seed(0)
    filt = ImplicitFilter(8, width=16, emb_dim=5, l_max=64)
    lags = torch.arange(-200, 200)
    h = filt(lags)  # [8, 400]
    bound = filt.to_filters.weight.abs().sum(1, keepdim=True) * torch.exp(
        -lags.abs() / 64 * filt.rates[:, None]
    )
    assert (h.abs() <= bound + 1e-6).all()
    # The fastest channel has decayed to 1% of its bound a third of l_max away.
    assert bound[-1, 200 + 22] < bound[-1, 200] * 0.011


def hyena_oracle(layer: Hyena, x: Tensor) -> Tensor:
    """The Hyena recurrence z^{i+1} = x^i * (h^i z^i + D^i z^i) with dense matrices (float64)."""
    n = x.shape[1]
    u = causal_depthwise_conv(layer.in_proj(x), layer.short_weight, layer.short_bias)
    *gates, z = u.split(layer.dim, dim=-1)  # [b, n, dim] each
    past, future = layer.long_filters(n, x.device)
    for i, gate in enumerate(gates):
        matrix = convolution_matrix(
            past[i].double(), None if future is None else future[i].double()
        )  # [dim, n, n]
        conv = torch.einsum("cts,bsc->btc", matrix, z)
        z = gate * (conv + layer.filter_bias[i] * z)
    return layer.out_proj(z)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_operator_equals_the_dense_recurrence(causal: bool, order: int) -> None:
    torch.manual_seed(0)
    layer = implementations.build(
        "hyena", dim=DIM, heads=1, causal=causal, order=order, filter_order=16, l_max=16
    )
    layer = layer.double().eval()
    x = torch.randn(B, N, DIM, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), hyena_oracle(layer, x), atol=1e-10, rtol=1e-8)


def test_bidirectional_filters_see_the_future() -> None:
    torch.manual_seed(0)
    layer = implementations.build("hyena", dim=DIM, heads=1, l_max=16).eval()
    x = torch.randn(B, N, DIM)
    x2 = x.clone()
    x2[:, 3] += 1.0  # three positions after the output checked
    with torch.no_grad():
        assert not torch.allclose(layer(x)[:, 0], layer(x2)[:, 0])
    assert not hasattr(layer, "step")  # no constant-size recurrent form in the paper


def test_even_emb_dim_is_refused() -> None:
    with pytest.raises(ValueError, match="emb_dim"):
        implementations.build("hyena", dim=DIM, heads=1, emb_dim=4)
