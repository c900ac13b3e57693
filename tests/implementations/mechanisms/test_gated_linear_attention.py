"""Gated linear attention (Yang et al., 2024): chunkwise == recurrence == dense gated form."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import implementations
from implementations._chunked_linear import (
    bidirectional,
    gated_chunkwise,
    gated_recurrent,
)

B, H, N, DK, DV = 2, 3, 41, 5, 4


def inputs(strength: float = 1.0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """float64 ``q, k, v`` and log gates in ``(-strength, 0)``."""
    torch.manual_seed(0)
    q, k = torch.randn(2, B, H, N, DK, dtype=torch.float64).unbind(0)
    v = torch.randn(B, H, N, DV, dtype=torch.float64)
    log_alpha = -torch.rand(B, H, N, DK, dtype=torch.float64) * strength
    return q, k, v, log_alpha


def dense_oracle(q: Tensor, k: Tensor, v: Tensor, log_alpha: Tensor, causal: bool) -> Tensor:
    r"""$\sum_j (q_i \odot \prod_{s \in (\min, \max]} \alpha_s)^\top k_j v_j$, as ``[n, n]``."""
    cum = log_alpha.cumsum(-2)  # [b, h, n, dk]
    gap = cum[..., :, None, :] - cum[..., None, :, :]  # [b, h, i, j, dk]: cum_i - cum_j
    decay = torch.where(gap <= 0, gap, -gap).exp()  # exp(-|cum_i - cum_j|)
    scores = torch.einsum("bhid,bhjd,bhijd->bhij", q, k, decay)
    if causal:
        scores = scores.tril()
    return scores @ v


@pytest.mark.parametrize(
    ("chunk_size", "sub_chunk"), [(1, 1), (8, 4), (16, 16), (64, 16), (12, 16)]
)
def test_chunkwise_equals_recurrence(chunk_size: int, sub_chunk: int) -> None:
    q, k, v, log_alpha = inputs()
    expected, _ = gated_recurrent(q, k, v, log_alpha)
    got = gated_chunkwise(q, k, v, log_alpha, chunk_size=chunk_size, sub_chunk=sub_chunk)
    torch.testing.assert_close(got, expected)


def test_recurrence_equals_the_dense_gated_form() -> None:
    q, k, v, log_alpha = inputs()
    torch.testing.assert_close(
        gated_recurrent(q, k, v, log_alpha)[0], dense_oracle(q, k, v, log_alpha, True)
    )


def test_float32_chunkwise_matches_float64_recurrence() -> None:
    q, k, v, log_alpha = inputs()
    got = gated_chunkwise(q.float(), k.float(), v.float(), log_alpha.float())
    assert got.dtype == torch.float32
    torch.testing.assert_close(
        got.double(), gated_recurrent(q, k, v, log_alpha)[0], atol=1e-5, rtol=1e-4
    )


def test_strong_gates_stay_finite_thanks_to_secondary_chunking() -> None:
    """With log gates down to -30 per step the single-level factorisation would overflow."""
    q, k, v, log_alpha = inputs(strength=30.0)
    got = gated_chunkwise(q.float(), k.float(), v.float(), log_alpha.float(), chunk_size=64)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(
        got.double(), gated_recurrent(q, k, v, log_alpha)[0], atol=1e-5, rtol=1e-4
    )


def test_excluding_the_current_token_drops_the_diagonal() -> None:
    q, k, v, log_alpha = inputs()
    inclusive, _ = gated_recurrent(q, k, v, log_alpha)
    exclusive = gated_chunkwise(q, k, v, log_alpha, chunk_size=16, include_current=False)
    torch.testing.assert_close(exclusive, inclusive - (q * k).sum(-1, keepdim=True) * v)


def test_bidirectional_equals_the_symmetric_dense_form() -> None:
    q, k, v, log_alpha = inputs()
    got = bidirectional(gated_chunkwise, q, k, v, log_alpha, gate_is_decay=True, chunk_size=8)
    torch.testing.assert_close(got, dense_oracle(q, k, v, log_alpha, causal=False))


def test_chunkwise_gradients_equal_recurrence_gradients() -> None:
    leaves = [t.requires_grad_() for t in inputs()]
    weights = torch.randn(B, H, N, DV, dtype=torch.float64)
    (gated_chunkwise(*leaves, chunk_size=16, sub_chunk=4) * weights).sum().backward()
    chunk_grads = [t.grad.clone() for t in leaves]
    for t in leaves:
        t.grad = None
    (gated_recurrent(*leaves)[0] * weights).sum().backward()
    for got, leaf in zip(chunk_grads, leaves, strict=True):
        torch.testing.assert_close(got, leaf.grad)


def test_gates_are_sigmoid_to_the_one_over_tau() -> None:
    torch.manual_seed(1)
    layer = implementations.build("gated-linear-attention", dim=32, heads=4, causal=True)
    x = torch.randn(2, 7, 32)
    _, _, _, log_alpha = layer._project(x)
    logits = layer.to_gate(x).view(2, 7, 4, -1).transpose(1, 2)  # [b, h, n, dk]
    torch.testing.assert_close(log_alpha.exp(), torch.sigmoid(logits) ** (1 / 16))
    assert log_alpha.shape[-1] == 32 // 2 // 4  # d_k = d / 2 split over heads
    assert (log_alpha < 0).all()


def layer_reference(layer: torch.nn.Module, x: Tensor) -> Tensor:
    """The layer with its mixing computed by the float64 recurrence (or its reverse)."""
    q, k, v, log_alpha = (t.double() for t in layer._project(x))
    o, _ = gated_recurrent(q, k, v, log_alpha)
    if not layer.causal:
        o = dense_oracle(q, k, v, log_alpha, causal=False)
    o = F.layer_norm(o, o.shape[-1:])
    r = F.silu(layer.to_r(x)).double()
    return (r * o.transpose(1, 2).flatten(2)) @ layer.to_out.weight.double().T


@pytest.mark.parametrize("causal", [True, False])
def test_layer_equals_the_paper_equations(causal: bool) -> None:
    torch.manual_seed(2)
    layer = implementations.build(
        "gated-linear-attention", dim=32, heads=4, causal=causal, chunk_size=8, sub_chunk=4
    )
    x = torch.randn(2, 21, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            layer(x).double(), layer_reference(layer, x), atol=1e-5, rtol=1e-4
        )


def test_padding_equals_removing_the_padded_tokens() -> None:
    """Padded tokens neither write nor decay: real outputs equal the run without them."""
    torch.manual_seed(3)
    layer = implementations.build(
        "gated-linear-attention", dim=16, heads=2, causal=True, chunk_size=4
    )
    x = torch.randn(1, 15, 16)
    mask = torch.ones(1, 15, dtype=torch.bool)
    mask[0, 5:9] = False
    with torch.no_grad():
        padded = layer(x, mask)[mask]
        alone = layer(x[mask][None])[0]
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-4)


def test_step_equals_causal_forward_past_several_chunks() -> None:
    torch.manual_seed(4)
    layer = implementations.build(
        "gated-linear-attention", dim=16, heads=2, causal=True, chunk_size=4
    )
    x = torch.randn(2, 19, 16)
    with torch.no_grad():
        y = layer(x)
        state, steps = layer.init_state(2), []
        for t in range(19):
            y_t, state = layer.step(x[:, t], state)
            steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), y, atol=1e-5, rtol=1e-4)
