"""RetNet (Sun et al., 2023): parallel, recurrent and chunkwise retention agree, and the layer."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import implementations
from implementations.retnet import (
    chunkwise_retention,
    decay_rates,
    parallel_retention,
    recurrent_retention,
    rotate,
    rotation_angles,
)

B, H, N, D = 2, 3, 45, 8


def qkv(dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Rotated queries and keys, values and the paper's decays, for ``H`` heads."""
    torch.manual_seed(0)
    q, k, v = torch.randn(3, B, H, N, D, dtype=dtype).unbind(0)
    positions, angles = torch.arange(N), rotation_angles(D)
    return rotate(q, positions, angles), rotate(k, positions, angles) / D**0.5, v, decay_rates(H)


def dense_oracle(q: Tensor, k: Tensor, v: Tensor, gamma: Tensor, causal: bool) -> Tensor:
    r"""$\sum_m \gamma^{|n-m|} (q_n \cdot k_m) v_m$ by explicit loops over heads (float64)."""
    out = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=torch.float64)
    for h in range(q.shape[1]):
        for n in range(q.shape[2]):
            for m in range(q.shape[2] if not causal else n + 1):
                weight = gamma[h] ** abs(n - m) * (q[:, h, n] * k[:, h, m]).sum(-1)  # [b]
                out[:, h, n] += weight[:, None] * v[:, h, m]
    return out


def test_decays_are_the_papers() -> None:
    gamma = decay_rates(4)
    torch.testing.assert_close(
        gamma, torch.tensor([1 - 1 / 32, 1 - 1 / 64, 1 - 1 / 128, 1 - 1 / 256], dtype=torch.float64)
    )


def test_rotation_depends_only_on_the_offset() -> None:
    torch.manual_seed(1)
    q, k = torch.randn(2, 1, D, dtype=torch.float64).unbind(0)
    angles = rotation_angles(D).double()

    def score(n: int, m: int) -> Tensor:
        return (rotate(q, torch.tensor([n]), angles) * rotate(k, torch.tensor([m]), angles)).sum()

    torch.testing.assert_close(score(7, 3), score(104, 100))
    torch.testing.assert_close(score(0, 0), (q * k).sum())
    assert not torch.allclose(score(7, 3), score(3, 7))  # not symmetric: it encodes direction


@pytest.mark.parametrize("causal", [True, False])
def test_parallel_form_equals_the_definition(causal: bool) -> None:
    q, k, v, gamma = qkv()
    torch.testing.assert_close(
        parallel_retention(q, k, v, gamma, causal), dense_oracle(q, k, v, gamma, causal)
    )


def test_recurrent_form_equals_parallel_form() -> None:
    q, k, v, gamma = qkv()
    torch.testing.assert_close(
        recurrent_retention(q, k, v, gamma), parallel_retention(q, k, v, gamma, True)
    )


@pytest.mark.parametrize("chunk_size", [1, 7, 16, 64])
@pytest.mark.parametrize("causal", [True, False])
def test_chunkwise_form_equals_parallel_form_to_float32_round_off(
    chunk_size: int, causal: bool
) -> None:
    q, k, v, gamma = qkv()
    expected = parallel_retention(q, k, v, gamma, causal)
    got = chunkwise_retention(q.float(), k.float(), v.float(), gamma.float(), causal, chunk_size)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-4)


def test_chunkwise_gradients_equal_parallel_gradients() -> None:
    q, k, v, gamma = qkv()
    weights = torch.randn(B, H, N, D, dtype=torch.float64)
    grads = []
    for form in ("parallel", "chunkwise"):
        leaves = [t.clone().float().requires_grad_() for t in (q, k, v)]
        if form == "parallel":
            out = parallel_retention(*(t.double() for t in leaves), gamma, True)
        else:
            out = chunkwise_retention(*leaves, gamma.float(), True, chunk_size=8)
        (out.double() * weights).sum().backward()
        grads.append([t.grad for t in leaves])
    for got, expected in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def layer_reference(layer: torch.nn.Module, x: Tensor, mask: Tensor | None) -> Tensor:
    """The layer computed with the parallel form, padded keys removed from D."""
    q, k, v = layer._qkv(x, torch.arange(x.shape[1]))
    q, k, v = q.double(), k.double(), v.double()
    n = x.shape[1]
    i = torch.arange(n)
    distance = (i[:, None] - i[None, :]).double()
    decay = layer.gamma.double()[:, None, None] ** distance.abs()  # [h, n, n]
    if layer.causal:
        decay = decay * (distance >= 0)
    if mask is not None:
        decay = decay * mask[:, None, None, :]  # [b, h, n, n]
    o = ((q @ k.transpose(-1, -2)) * decay) @ v  # [b, h, n, dv]
    return layer._output(x, o.float())


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("rotation", [True, False])
def test_layer_equals_parallel_form_with_padding(causal: bool, rotation: bool) -> None:
    torch.manual_seed(2)
    layer = implementations.build(
        "retnet", dim=24, heads=3, causal=causal, rotation=rotation, chunk_size=8
    )
    x = torch.randn(2, 29, 24)
    mask = torch.ones(2, 29, dtype=torch.bool)
    mask[0, 20:] = False
    mask[1, 4:7] = False
    with torch.no_grad():
        torch.testing.assert_close(
            layer(x, mask), layer_reference(layer, x, mask), atol=1e-5, rtol=1e-4
        )
        torch.testing.assert_close(layer(x), layer_reference(layer, x, None), atol=1e-5, rtol=1e-4)


def test_group_norm_removes_a_per_head_rescaling() -> None:
    """Why the paper's score normalisations can be omitted: GroupNorm undoes row scalings."""
    torch.manual_seed(3)
    layer = implementations.build("retnet", dim=16, heads=2, causal=True)
    x = torch.randn(1, 5, 16)
    o = torch.randn(1, 2, 5, 16)
    scale = torch.rand(1, 2, 5, 1) * 10 + 0.5  # positive, per head and position
    torch.testing.assert_close(
        layer._output(x, o * scale), layer._output(x, o), atol=1e-4, rtol=1e-4
    )


def test_step_equals_causal_forward_past_several_chunks() -> None:
    torch.manual_seed(4)
    layer = implementations.build("retnet", dim=16, heads=2, causal=True, chunk_size=4)
    x = torch.randn(2, 19, 16)
    with torch.no_grad():
        y = layer(x)
        state, steps = layer.init_state(2), []
        for t in range(19):
            y_t, state = layer.step(x[:, t], state)
            steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), y, atol=1e-5, rtol=1e-4)
    assert int(state[1]) == 19


def test_step_refuses_the_non_causal_layer() -> None:
    layer = implementations.build("retnet", dim=16, heads=2)
    with pytest.raises(ValueError, match="causal"):
        layer.step(torch.randn(1, 16), layer.init_state(1))
