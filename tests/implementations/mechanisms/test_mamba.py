"""Mamba (Gu and Dao, 2023): the chunked selective scan against a sequential float64 oracle."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import implementations
import implementations._scan
from implementations._scan import selective_scan
from implementations.mamba import Mamba, SelectiveSSM

B, N, D, NSTATE = 2, 37, 6, 4


def sequential_scan(
    x: Tensor, delta: Tensor, A: Tensor, Bm: Tensor, C: Tensor
) -> tuple[Tensor, Tensor]:
    """h_t = exp(dt A) h + (exp(dt A) - 1) / A * B_t x_t, y_t = C_t . h_t, one step at a time."""
    h = x.new_zeros(x.shape[0], x.shape[2], A.shape[1])
    ys = []
    for t in range(x.shape[1]):
        dA = delta[:, t, :, None] * A  # [b, d, N]
        h = torch.exp(dA) * h + (torch.exp(dA) - 1) / A * Bm[:, t, None, :] * x[:, t, :, None]
        ys.append((h * C[:, t, None, :]).sum(-1))
    return torch.stack(ys, 1), h


def scan_inputs() -> tuple[Tensor, ...]:
    torch.manual_seed(0)
    x = torch.randn(B, N, D, dtype=torch.float64)
    delta = F.softplus(torch.randn(B, N, D, dtype=torch.float64))
    A = -torch.rand(D, NSTATE, dtype=torch.float64) * 4 - 0.1
    Bm, C = (
        torch.randn(B, N, NSTATE, dtype=torch.float64),
        torch.randn(B, N, NSTATE, dtype=torch.float64),
    )
    return x, delta, A, Bm, C


@pytest.mark.parametrize("chunk_size", [1, 5, 16, 64])
def test_chunked_scan_equals_sequential_recurrence(chunk_size: int) -> None:
    inputs = scan_inputs()
    y, last = selective_scan(*inputs, chunk_size=chunk_size)
    y_ref, last_ref = sequential_scan(*inputs)
    torch.testing.assert_close(y, y_ref, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(last, last_ref, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("recompute", [False, True], ids=["kept", "recomputed"])
def test_scan_gradients_equal_the_recurrence_gradients(
    recompute: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long inputs recompute each chunk in the backward; a threshold of 0 makes this one do so.
    if recompute:
        monkeypatch.setattr(implementations._scan, "RECOMPUTE_ABOVE", 0)
    inputs = [t.requires_grad_() for t in scan_inputs()]
    weights = torch.randn(B, N, D, dtype=torch.float64)
    grads = torch.autograd.grad((selective_scan(*inputs, chunk_size=8)[0] * weights).sum(), inputs)
    expected = torch.autograd.grad((sequential_scan(*inputs)[0] * weights).sum(), inputs)
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-8)


def test_recomputed_scan_saves_only_its_inputs_for_the_backward(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the threshold autograd keeps the chunk inputs and states between chunks, not the
    [b, c, d, N] states and scan intermediates of every chunk (what made n = 8192 not fit)."""

    def saved_numbers() -> int:
        count = 0

        def pack(t: Tensor) -> Tensor:
            nonlocal count
            count += t.numel()
            return t

        inputs = [t.requires_grad_() for t in scan_inputs()]
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            selective_scan(*inputs, chunk_size=8)
        return count

    kept = saved_numbers()
    monkeypatch.setattr(implementations._scan, "RECOMPUTE_ABOVE", 0)
    recomputed = saved_numbers()
    chunks = -(-N // 8)
    inputs = sum(t.numel() for t in scan_inputs())
    # Each chunk keeps its slices of the inputs, A and the state it starts from, nothing else.
    assert recomputed == inputs + (chunks - 1) * D * NSTATE + chunks * B * D * NSTATE
    assert kept > 4 * B * N * D * NSTATE  # several [b, n, d, N] tensors


def test_scan_passes_gradcheck() -> None:
    x, delta, A, Bm, C = scan_inputs()
    small = (x[:1, :6, :2], delta[:1, :6, :2], A[:2], Bm[:1, :6], C[:1, :6])
    args = tuple(t.clone().requires_grad_() for t in small)
    assert torch.autograd.gradcheck(lambda *a: selective_scan(*a, chunk_size=4)[0], args)


def test_float32_scan_is_close_to_float64() -> None:
    inputs = scan_inputs()
    y64, _ = sequential_scan(*inputs)
    y32, _ = selective_scan(*(t.float() for t in inputs), chunk_size=16)
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y64, atol=1e-5, rtol=1e-4)


def test_zero_step_is_the_identity() -> None:
    """Delta = 0 (a padded token) leaves the state untouched: the token is invisible."""
    x, delta, A, Bm, C = scan_inputs()
    delta = delta.clone()
    delta[:, 10] = 0
    h_before = sequential_scan(x[:, :10], delta[:, :10], A, Bm[:, :10], C[:, :10])[1]
    h_after = selective_scan(x[:, :11], delta[:, :11], A, Bm[:, :11], C[:, :11], chunk_size=4)[1]
    torch.testing.assert_close(h_after, h_before, atol=1e-12, rtol=1e-10)


def direction_oracle(ssm: SelectiveSSM, u: Tensor) -> Tensor:
    """One direction of the mixer in float64 with explicit loops (conv, selection, scan)."""
    width = ssm.conv_weight.shape[1]
    padded = F.pad(u, (0, 0, width - 1, 0))
    conv = (
        torch.stack(
            [(padded[:, t : t + width] * ssm.conv_weight.T).sum(1) for t in range(u.shape[1])], 1
        )
        + ssm.conv_bias
    )  # [b, n, d]
    x = F.silu(conv)
    dt, Bm, C = ssm.x_proj(x).split([ssm.dt_rank, ssm.d_state, ssm.d_state], dim=-1)
    delta = F.softplus(ssm.dt_proj(dt))
    y, _ = sequential_scan(x, delta, -ssm.A_log.exp(), Bm, C)
    return y + ssm.D * x


def layer_oracle(layer: Mamba, x: Tensor) -> Tensor:
    u, z = layer.in_proj(x).chunk(2, dim=-1)
    y = direction_oracle(layer.forward_ssm, u)
    if layer.backward_ssm is not None:
        y = y + direction_oracle(layer.backward_ssm, u.flip(1)).flip(1)
    return layer.out_proj(y * F.silu(z))


@pytest.mark.parametrize("causal", [True, False])
def test_layer_equals_the_sequential_oracle(causal: bool) -> None:
    torch.manual_seed(0)
    layer = implementations.build("mamba", dim=8, heads=2, causal=causal, d_state=NSTATE)
    layer = layer.double().eval()
    x = torch.randn(B, N, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), layer_oracle(layer, x), atol=1e-10, rtol=1e-8)


def test_step_equals_causal_forward_in_float64() -> None:
    torch.manual_seed(0)
    layer = implementations.build("mamba", dim=8, heads=2, causal=True, d_state=NSTATE)
    layer = layer.double().eval()
    x = torch.randn(B, N, 8, dtype=torch.float64)
    state = layer.init_state(B, dtype=torch.float64)
    steps = []
    with torch.no_grad():
        for t in range(N):
            y_t, state = layer.step(x[:, t], state)
            steps.append(y_t)
        torch.testing.assert_close(torch.stack(steps, 1), layer(x), atol=1e-10, rtol=1e-8)


def test_padded_tokens_pass_the_state_through() -> None:
    """With padding only at the end, real outputs equal those of the unpadded sequence, and a
    padded token in the middle of the sequence does not change the SSM state (Delta = 0)."""
    torch.manual_seed(0)
    layer = implementations.build("mamba", dim=8, heads=2, causal=True, d_state=NSTATE).eval()
    x = torch.randn(1, N, 8)
    mask = torch.ones(1, N, dtype=torch.bool)
    mask[:, 30:] = False
    with torch.no_grad():
        torch.testing.assert_close(layer(x, mask)[:, :30], layer(x[:, :30]), atol=1e-6, rtol=1e-5)
        u = layer.in_proj(x).chunk(2, dim=-1)[0]
        ssm = layer.forward_ssm
        delta, _, _ = ssm.selection(u, mask)
    assert (delta[:, 30:] == 0).all() and (delta[:, :30] > 0).all()
