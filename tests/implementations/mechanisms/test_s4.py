"""S4 (Gu et al., 2022): kernel, convolution and recurrence against float64 oracles."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import implementations
from implementations._scan import fft_conv
from implementations.s4 import DiagonalSSMKernel, hippo_legs_diagonal

H, NSTATE, N = 3, 8, 23


def toeplitz(kernel: Tensor, future: Tensor | None = None) -> Tensor:
    """``[c, n, n]`` convolution matrices: ``T[t, s] = k[t - s]`` (and ``f[s - t - 1]``)."""
    n = kernel.shape[-1]
    t = torch.arange(n)
    lag = t[:, None] - t[None, :]  # [n, n]
    past = kernel[:, lag.clamp(min=0)] * (lag >= 0)
    if future is None:
        return past
    return past + future[:, (-lag - 1).clamp(min=0)] * (lag < 0)


def linear64(layer: nn.Linear, x: Tensor) -> Tensor:
    """``layer`` applied in float64."""
    return F.linear(x, layer.weight.double(), layer.bias.double())


def test_fft_conv_equals_direct_convolution_in_float64() -> None:
    torch.manual_seed(0)
    u = torch.randn(2, H, N, dtype=torch.float64)
    k, f = torch.randn(H, N, dtype=torch.float64), torch.randn(H, N, dtype=torch.float64)
    direct = torch.einsum("cts,bcs->bct", toeplitz(k), u)
    torch.testing.assert_close(fft_conv(u, k), direct, atol=1e-12, rtol=1e-10)
    two_sided = torch.einsum("cts,bcs->bct", toeplitz(k, f), u)
    torch.testing.assert_close(fft_conv(u, k, f), two_sided, atol=1e-12, rtol=1e-10)


def test_diagonal_is_the_spectrum_of_hippo_legs_normal_part() -> None:
    n = torch.arange(NSTATE, dtype=torch.float64)
    root = torch.sqrt(2 * n + 1)
    legs = -(root[:, None] * root[None, :]).tril(-1) - torch.diag(n + 1)  # HiPPO-LegS A
    p = torch.sqrt(n + 0.5)
    normal = legs + p[:, None] * p[None, :]  # A + P P^T
    eig = torch.linalg.eigvals(normal)
    upper = eig[eig.imag > 0]
    expected = upper[upper.imag.argsort()]
    torch.testing.assert_close(
        hippo_legs_diagonal(NSTATE).to(torch.complex128), expected, atol=1e-5, rtol=1e-5
    )


def test_zoh_input_matrix_equals_the_matrix_exponential() -> None:
    """Van Loan: exp([[A, B], [0, 0]] dt) holds e^{A dt} and the ZOH integral of B."""
    torch.manual_seed(0)
    ssm = DiagonalSSMKernel(H, NSTATE, 0.01, 0.5)
    dt_lam, b_bar, _ = ssm.discrete()
    lam = torch.complex(-ssm.log_neg_real.double().exp(), ssm.imag.double())
    dt = ssm.log_dt.double().exp()
    b = torch.view_as_complex(ssm.B.double())
    for h in range(H):
        for m in range(NSTATE // 2):
            block = torch.zeros(2, 2, dtype=torch.complex128)
            block[0, 0], block[0, 1] = lam[h, m], b[h, m]
            expm = torch.linalg.matrix_exp(block * dt[h])
            torch.testing.assert_close(
                dt_lam[h, m].exp().to(torch.complex128), expm[0, 0], atol=1e-6, rtol=1e-5
            )
            torch.testing.assert_close(
                b_bar[h, m].to(torch.complex128), expm[0, 1], atol=1e-6, rtol=1e-5
            )


def test_vandermonde_kernel_equals_powers_of_the_state_matrix() -> None:
    torch.manual_seed(0)
    ssm = DiagonalSSMKernel(H, NSTATE, 0.01, 0.5)
    dt_lam, b_bar, c = (t.to(torch.complex128) for t in ssm.discrete())
    a_bar = dt_lam.exp()
    expected = torch.stack(
        [2 * (c * a_bar**ell * b_bar).sum(-1).real for ell in range(N)], dim=-1
    )  # C A^l B, l = 0 .. n-1
    torch.testing.assert_close(ssm.kernel(N).double(), expected, atol=1e-5, rtol=1e-5)


def test_kernel_blocks_tile_long_kernels() -> None:
    """The factorised powers (blocks of ceil(sqrt(n)) positions) give one continuous kernel."""
    torch.manual_seed(0)
    ssm = DiagonalSSMKernel(2, NSTATE, 0.001, 0.01)
    long = ssm.kernel(2500)  # 50 blocks of 50 positions
    torch.testing.assert_close(long[:, :N], ssm.kernel(N))
    dt_lam, b_bar, c = (t.to(torch.complex128) for t in ssm.discrete())
    ell = 2222
    expected = 2 * (c * (ell * dt_lam).exp() * b_bar).sum(-1).real
    torch.testing.assert_close(long[:, ell].double(), expected, atol=1e-5, rtol=1e-4)


def test_causal_layer_is_the_recurrence_and_step_matches() -> None:
    """Forward (kernel + FFT) equals the float64 recurrence; step() equals forward."""
    torch.manual_seed(0)
    layer = implementations.build("s4", dim=H * 2, heads=1, causal=True, d_state=NSTATE).eval()
    x = torch.randn(2, N, H * 2)
    with torch.no_grad():
        y = layer(x)
        dt_lam, b_bar, c = (t.to(torch.complex128) for t in layer.ssm.discrete())
        state = torch.zeros(2, H * 2, NSTATE // 2, dtype=torch.complex128)
        oracle, stepped = [], []
        step_state = layer.init_state(2)
        for t in range(N):
            u = x[:, t].double()
            state = dt_lam.exp() * state + b_bar * u[..., None]
            ssm_out = 2 * (state * c).sum(-1).real + layer.D.double() * u
            oracle.append(linear64(layer.to_out, F.gelu(ssm_out)).float())
            y_t, step_state = layer.step(x[:, t], step_state)
            stepped.append(y_t)
    torch.testing.assert_close(y, torch.stack(oracle, 1), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.stack(stepped, 1), y, atol=1e-5, rtol=1e-4)


def test_bidirectional_layer_is_a_two_sided_convolution() -> None:
    torch.manual_seed(0)
    layer = implementations.build("s4", dim=H, heads=1, d_state=NSTATE).eval()
    assert layer.ssm_backward is not None
    x = torch.randn(2, N, H)
    with torch.no_grad():
        y = layer(x)
        matrix = toeplitz(layer.ssm.kernel(N).double(), layer.ssm_backward.kernel(N).double())
        u = x.double().transpose(1, 2)  # [b, H, n]
        conv = torch.einsum("cts,bcs->bct", matrix, u) + layer.D.double()[:, None] * u
        expected = linear64(layer.to_out, F.gelu(conv.transpose(1, 2))).float()
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-4)
    # The future matters in the bidirectional form.
    x2 = x.clone()
    x2[:, -1] += 1
    with torch.no_grad():
        assert not torch.allclose(layer(x2)[:, 0], y[:, 0])
    with pytest.raises(ValueError, match="causal"):
        layer.step(x[:, 0], layer.init_state(2))
