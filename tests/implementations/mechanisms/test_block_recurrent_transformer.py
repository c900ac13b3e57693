"""Block-Recurrent Transformer: the gates, the block recurrence, and calls on halves."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import implementations
from implementations._helpers import merge_heads, split_heads
from implementations.block_recurrent_transformer import fixed_gate, lstm_gate


def build(gate: str = "fixed", causal: bool = True, window: int = 4, states: int = 3):
    torch.manual_seed(0)
    return implementations.build(
        "block-recurrent-transformer",
        dim=16,
        heads=2,
        causal=causal,
        window_size=window,
        state_size=states,
        gate=gate,
    )


def test_fixed_gate_formula() -> None:
    c, z, b = torch.randn(2, 3, 5), torch.randn(2, 3, 5), torch.randn(5)
    g = 1 / (1 + torch.exp(-b))
    torch.testing.assert_close(fixed_gate(c, z, b), c * g + z * (1 - g))


def test_lstm_gate_formula_and_its_bias_to_remember() -> None:
    c, z, f, i = (torch.randn(4, 6) for _ in range(4))
    expected = c / (1 + torch.exp(-(f + 1))) + z / (1 + torch.exp(-(i - 1)))
    torch.testing.assert_close(lstm_gate(c, z, f, i), expected)
    # With zero logits the cell keeps sigma(1) ~ 0.73 of the state and lets in sigma(-1) ~ 0.27.
    zero = torch.zeros(1)
    kept = lstm_gate(torch.ones(1), torch.zeros(1), zero, zero)
    torch.testing.assert_close(kept, torch.sigmoid(torch.ones(1)))


@pytest.mark.parametrize("gate", ["fixed", "lstm"])
def test_update_state_uses_the_configured_gate(gate: str) -> None:
    layer = build(gate)
    state, hidden = torch.randn(2, 3, 16), torch.randn(2, 3, 32)
    z = layer.to_z(hidden)
    if gate == "fixed":
        expected = fixed_gate(state, z, layer.gate_bias)
    else:
        expected = lstm_gate(state, z, layer.forget_gate(hidden), layer.input_gate(hidden))
    torch.testing.assert_close(layer.update_state(state, hidden), expected)


def attend(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor | None = None) -> Tensor:
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if allowed is not None:
        scores = scores.masked_fill(~allowed, -math.inf)
    return scores.softmax(-1) @ v


def oracle(layer: torch.nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """The cell written out in float64: dense masked token attention, blocks in a loop."""
    layer = layer.double()
    x = x.double()
    h, w, n = layer.heads, layer.window_size, x.shape[1]
    k, v = split_heads(layer.tok_k(x), h), split_heads(layer.tok_v(x), h)
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    window = (i - j < w) & (j - i < (1 if layer.causal else w))
    local = attend(split_heads(layer.tok_q_self(x), h), k, v, window)
    q_cross = split_heads(layer.tok_q_cross(x), h)
    state = layer.initial_state.expand(x.shape[0], -1, -1)
    reads = []
    for t in range(math.ceil(n / w)):
        block = slice(t * w, min((t + 1) * w, n))
        s = F.layer_norm(state, (layer.dim,), layer.state_norm.weight, layer.state_norm.bias)
        s = s + layer.state_pos
        k_s, v_s = split_heads(layer.st_k(s), h), split_heads(layer.st_v(s), h)
        reads.append(attend(q_cross[:, :, block], k_s, v_s))
        s_self = attend(split_heads(layer.st_q_self(s), h), k_s, v_s)
        s_cross = attend(split_heads(layer.st_q_cross(s), h), k[:, :, block], v[:, :, block])
        hidden = torch.cat([merge_heads(s_self), merge_heads(s_cross)], dim=-1)
        z = layer.to_z(hidden)
        g = torch.sigmoid(layer.gate_bias)
        state = state * g + z * (1 - g)
    cross = torch.cat(reads, dim=2)
    y = layer.to_out(torch.cat([merge_heads(local), merge_heads(cross)], dim=-1))
    return y, state


@pytest.mark.parametrize("causal", [True, False])
def test_forward_matches_the_written_out_recurrence(causal: bool) -> None:
    layer = build(causal=causal)
    x = torch.randn(2, 14, 16)  # three full blocks of 4 and a short one
    with torch.no_grad():
        y, memory = layer(x)
        y_ref, state_ref = oracle(layer, x)
    torch.testing.assert_close(y.double(), y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(memory.state.double(), state_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("gate", ["fixed", "lstm"])
def test_two_calls_on_block_aligned_halves_equal_one_call(gate: str) -> None:
    layer = build(gate).eval()
    x = torch.randn(2, 16, 16)
    with torch.no_grad():
        y, memory = layer(x)
        y1, memory1 = layer(x[:, :8])
        y2, memory2 = layer(x[:, 8:], memory=memory1)
    torch.testing.assert_close(torch.cat([y1, y2], dim=1), y, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(memory2.state, memory.state, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(memory2.keys, memory.keys)


def test_state_after_two_blocks_equals_two_one_block_calls() -> None:
    layer = build(window=5).eval()
    x = torch.randn(1, 10, 16)
    with torch.no_grad():
        _, both = layer(x)
        _, first = layer(x[:, :5])
        _, second = layer(x[:, 5:], memory=first)
    torch.testing.assert_close(second.state, both.state, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(first.state, both.state)  # the second block moved the state


@pytest.mark.parametrize("gate", ["fixed", "lstm"])
def test_gradients_reach_the_gates_through_the_recurrence(gate: str) -> None:
    layer = build(gate)
    y, _ = layer(torch.randn(2, 12, 16))
    y.sum().backward()
    gate_params = ["gate_bias"] if gate == "fixed" else ["forget_gate.weight", "input_gate.weight"]
    named = dict(layer.named_parameters())
    for name in gate_params:
        grad = named[name].grad
        assert grad is not None and bool(grad.abs().sum() > 0), name


def test_the_future_does_not_reach_the_past() -> None:
    layer = build().eval()
    x = torch.randn(1, 12, 16)
    changed = x.clone()
    changed[:, 7:] = torch.randn(1, 5, 16)
    with torch.no_grad():
        y, _ = layer(x)
        y_changed, _ = layer(changed)
    torch.testing.assert_close(y_changed[:, :7], y[:, :7])
