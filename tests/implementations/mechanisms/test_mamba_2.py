"""Mamba-2 / SSD (Dao and Gu, 2024): chunked SSD, recurrence and masked attention agree."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import implementations
from implementations.mamba_2 import Mamba2, SSDDirection, ssd_chunked, ssd_quadratic, ssd_recurrent

B, H, N, P, NSTATE = 2, 3, 29, 4, 5


def ssd_inputs() -> tuple[Tensor, ...]:
    torch.manual_seed(0)
    x = torch.randn(B, H, N, P, dtype=torch.float64)
    dt = F.softplus(torch.randn(B, H, N, dtype=torch.float64))
    A = -torch.rand(H, dtype=torch.float64) * 3 - 0.1
    Bm = torch.randn(B, N, NSTATE, dtype=torch.float64)
    C = torch.randn(B, N, NSTATE, dtype=torch.float64)
    return x, dt, A, Bm, C


def test_masked_attention_form_equals_the_recurrence() -> None:
    inputs = ssd_inputs()
    y, _ = ssd_recurrent(*inputs)
    torch.testing.assert_close(ssd_quadratic(*inputs), y, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("chunk_size", [1, 4, 7, 64])
def test_chunked_ssd_equals_recurrence_and_masked_attention(chunk_size: int) -> None:
    inputs = ssd_inputs()
    chunked = ssd_chunked(*inputs, chunk_size=chunk_size).double()  # computed in float32
    torch.testing.assert_close(chunked, ssd_recurrent(*inputs)[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(chunked, ssd_quadratic(*inputs), atol=1e-5, rtol=1e-4)


def test_chunked_ssd_gradients_equal_the_quadratic_form() -> None:
    inputs = [t.requires_grad_() for t in ssd_inputs()]
    weights = torch.randn(B, H, N, P, dtype=torch.float64)
    got = torch.autograd.grad((ssd_chunked(*inputs, chunk_size=8) * weights).sum(), inputs)
    want = torch.autograd.grad((ssd_quadratic(*inputs) * weights).sum(), inputs)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g.double(), w, atol=1e-4, rtol=1e-4)


def test_decay_mask_is_one_semiseparable() -> None:
    """Every block of L strictly below the diagonal has rank 1 (the paper's 1-SS mask)."""
    _, dt, A, _, _ = ssd_inputs()
    cs = (dt[0, 0] * A[0]).cumsum(-1)  # [n]
    lower = torch.ones(N, N, dtype=torch.bool).tril()
    mask = torch.exp(cs[:, None] - cs[None, :]) * lower  # L_ts = prod_{r=s+1}^t a_r
    assert torch.allclose(mask.diagonal(), torch.ones(N, dtype=torch.float64))
    for split in (1, 5, 14, N - 1):
        block = mask[split:, :split]
        assert torch.linalg.matrix_rank(block).item() == 1


def direction_oracle(ssd: SSDDirection, xbc: Tensor, dt_raw: Tensor) -> Tensor:
    """One direction in float64: explicit causal conv, then the SSD recurrence."""
    width = ssd.conv_weight.shape[1]
    padded = F.pad(xbc, (0, 0, width - 1, 0))
    conv = torch.stack(
        [(padded[:, t : t + width] * ssd.conv_weight.T).sum(1) for t in range(xbc.shape[1])], 1
    )
    x, dt, Bm, C = ssd.split(F.silu(conv + ssd.conv_bias), dt_raw, None)
    y, _ = ssd_recurrent(x, dt, -ssd.A_log.exp(), Bm, C)
    y = y + ssd.D[:, None, None] * x  # [b, H, n, P]
    return y.permute(0, 2, 1, 3).flatten(2)  # [b, n, H P]


def layer_oracle(layer: Mamba2, x: Tensor) -> Tensor:
    z, xbc, dt_raw = layer._project(x)
    y = direction_oracle(layer.forward_ssd, xbc, dt_raw)
    if layer.backward_ssd is not None:
        y = y + direction_oracle(layer.backward_ssd, xbc.flip(1), dt_raw.flip(1)).flip(1)
    return layer.out_proj(layer.norm(y * F.silu(z)))


@pytest.mark.parametrize("causal", [True, False])
def test_layer_equals_the_recurrent_oracle(causal: bool) -> None:
    torch.manual_seed(0)
    layer = implementations.build(
        "mamba-2", dim=8, heads=2, causal=causal, d_state=NSTATE, chunk_size=8
    )
    layer = layer.double().eval()
    x = torch.randn(B, N, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), layer_oracle(layer, x), atol=1e-5, rtol=1e-4)


def test_step_equals_causal_forward_in_float64() -> None:
    torch.manual_seed(0)
    layer = implementations.build("mamba-2", dim=8, heads=2, causal=True, chunk_size=8)
    layer = layer.double().eval()
    x = torch.randn(B, N, 8, dtype=torch.float64)
    state = layer.init_state(B, dtype=torch.float64)
    steps = []
    with torch.no_grad():
        for t in range(N):
            y_t, state = layer.step(x[:, t], state)
            steps.append(y_t)
        stepped = torch.stack(steps, 1)
        torch.testing.assert_close(stepped, layer_oracle(layer, x), atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(stepped, layer(x), atol=1e-5, rtol=1e-4)


def test_padded_tokens_are_identity_steps() -> None:
    """Right padding: real outputs equal the unpadded run's; padded steps have Delta = 0."""
    torch.manual_seed(0)
    layer = implementations.build("mamba-2", dim=8, heads=2, causal=True, chunk_size=8).eval()
    x = torch.randn(1, N, 8)
    mask = torch.ones(1, N, dtype=torch.bool)
    mask[:, 20:] = False
    with torch.no_grad():
        torch.testing.assert_close(layer(x, mask)[:, :20], layer(x[:, :20]), atol=1e-6, rtol=1e-5)
        _, xbc, dt_raw = layer._project(x)
        _, dt, _, _ = layer.forward_ssd.split(xbc, dt_raw, mask)
    assert (dt[..., 20:] == 0).all() and (dt[..., :20] > 0).all()


def test_heads_must_divide_the_inner_width() -> None:
    with pytest.raises(ValueError, match="heads"):
        Mamba2(dim=6, heads=4, expand=1)  # 6 channels cannot split into 4 heads
