"""StreamingLLM (Xiao et al., 2024) against a dense masked oracle and a naive streaming cache.

Oracles: softmax attention over the explicit n x n set {sinks} ∪ {window} in float64; a
sequential decoder that keeps the sink tokens and the last w tokens in Python lists (an evicting
cache, no ring buffer) for the step form.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import implementations
from implementations.streaming_llm import attention

B, H, N, D = 2, 2, 23, 4


def seen(n: int, sinks: int, window: int, causal: bool) -> Tensor:
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    near = (i - j).abs() < window
    if causal:
        return (j <= i) & ((j < sinks) | near)
    return (j < sinks) | near


def oracle(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor) -> Tensor:
    scores = (q.double() @ k.double().transpose(-1, -2)) / q.shape[-1] ** 0.5
    probs = scores.masked_fill(~allowed, -torch.inf).softmax(-1).nan_to_num(0.0)
    return probs @ v.double()


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("sinks", "window"), [(4, 5), (0, 3), (2, 1), (3, 8), (30, 4), (1, 40)])
@pytest.mark.parametrize("masked", [False, True])
def test_equals_dense_masked_attention(causal: bool, sinks: int, window: int, masked: bool) -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, B, H, N, D).unbind(0)
    allowed = seen(N, sinks, window, causal)  # [n, n]
    mask = None
    if masked:
        mask = torch.ones(B, N, dtype=torch.bool)
        mask[0, 1] = False  # a padded sink
        mask[1, 15:] = False
        allowed = allowed & mask[:, None, None, :]
    got = attention(q, k, v, mask, causal, sink_tokens=sinks, window_size=window)
    torch.testing.assert_close(got.double(), oracle(q, k, v, allowed), atol=1e-5, rtol=1e-5)


def test_sinks_are_what_plain_window_attention_lacks() -> None:
    """With the first tokens' keys dominating, evicting them changes the outputs."""
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 1, 1, N, D).unbind(0)
    k[..., :2, :] = q.mean(-2, keepdim=True) * 5  # tokens 0, 1 attract every query
    with_sinks = attention(q, k, v, None, True, sink_tokens=2, window_size=4)
    window_only = attention(q, k, v, None, True, sink_tokens=0, window_size=4)
    # Queries 0..3 have both sinks inside their window of 4: nothing to add.
    torch.testing.assert_close(with_sinks[..., :4, :], window_only[..., :4, :])
    gap = (with_sinks - window_only)[..., 5:, :].abs().amax(-1)  # [1, 1, n - 5]
    assert (gap > 0.01).all() and gap.mean() > 0.1, gap


@pytest.mark.parametrize(("sinks", "window"), [(4, 6), (0, 5), (3, 1), (2, 50)])
def test_step_with_fixed_cache_equals_causal_forward(sinks: int, window: int) -> None:
    torch.manual_seed(0)
    layer = implementations.build(
        "streaming-llm", dim=16, heads=H, causal=True, sink_tokens=sinks, window_size=window
    )
    x = torch.randn(B, N, 16)
    state, outputs = layer.init_state(B), []
    for t in range(N):
        y_t, state = layer.step(x[:, t], state)
        outputs.append(y_t)
        assert state.keys.shape == (B, H, sinks + window, 16 // H)  # never grows
    torch.testing.assert_close(torch.stack(outputs, 1), layer(x), atol=1e-5, rtol=1e-5)


def test_step_equals_a_naive_evicting_cache() -> None:
    """The rolling buffer holds exactly the sinks and the last w tokens at every step."""
    torch.manual_seed(0)
    sinks, window = 2, 3
    layer = implementations.build(
        "streaming-llm", dim=16, heads=H, causal=True, sink_tokens=sinks, window_size=window
    )
    x = torch.randn(1, N, 16)
    state = layer.init_state(1)
    cached: list[int] = []
    for t in range(N):
        y_t, state = layer.step(x[:, t], state)
        cached.append(t)
        if len(cached) > sinks + window:
            cached.pop(sinks)  # evict the oldest token after the sinks
        keys = x[:, cached]  # [1, |cache|, 16]
        q, k, v = layer.proj.qkv(x[:, t : t + 1], context=keys)
        expected = layer.proj.out(
            oracle(q, k, v, torch.ones(1, len(cached), dtype=torch.bool)).float()
        )
        torch.testing.assert_close(y_t.double(), expected[:, 0].double(), atol=1e-5, rtol=1e-5)


def test_step_refuses_a_bidirectional_layer() -> None:
    layer = implementations.build("streaming-llm", dim=16, heads=H, window_size=4)
    with pytest.raises(ValueError, match="causal"):
        layer.step(torch.randn(B, 16), layer.init_state(B))
