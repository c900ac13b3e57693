"""Multi-query attention (Shazeer, 2019) against multi-head attention with repeated key/value heads.

Oracles: ``implementations.dense.attention`` over the single key and value head copied to every
query head, and the causal forward for the step form with its key/value cache.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import implementations
from implementations._helpers import split_heads
from implementations.dense import attention

DIM, HEADS, N, B = 32, 4, 11, 2


def build(causal: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    return implementations.build("multi-query-attention", dim=DIM, heads=HEADS, causal=causal)


def padding() -> Tensor:
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 8:] = False
    mask[1, :3] = False
    return mask


def test_one_key_and_value_projection() -> None:
    layer = build(False)
    assert layer.proj.to_k.weight.shape == (DIM // HEADS, DIM)
    assert layer.proj.to_v.weight.shape == (DIM // HEADS, DIM)
    assert layer.proj.to_q.weight.shape == (DIM, DIM)


@pytest.mark.parametrize("causal", [False, True])
def test_equals_multi_head_attention_over_a_shared_head(causal: bool) -> None:
    layer = build(causal)
    x, mask = torch.randn(B, N, DIM), padding()
    q = split_heads(layer.proj.to_q(x), HEADS)  # [b, h, n, d]
    k = layer.proj.to_k(x)[:, None].expand(-1, HEADS, -1, -1)  # the one head, for every query head
    v = layer.proj.to_v(x)[:, None].expand(-1, HEADS, -1, -1)
    expected = layer.proj.out(attention(q, k, v, mask=mask, causal=causal))
    torch.testing.assert_close(layer(x, mask), expected, atol=1e-5, rtol=1e-5)


def test_step_with_kv_cache_equals_causal_forward() -> None:
    layer = build(True)
    x = torch.randn(B, N, DIM)
    state = layer.init_state(B)
    outputs = []
    for t in range(N):
        y_t, state = layer.step(x[:, t], state)
        outputs.append(y_t)
    torch.testing.assert_close(torch.stack(outputs, 1), layer(x), atol=1e-5, rtol=1e-5)
    # The cache after n tokens: one key head and one value head of width d_k per position,
    # h times smaller than multi-head attention's [b, h, n, d_k].
    assert state.keys.shape == state.values.shape == (B, 1, N, DIM // HEADS)


def test_step_refuses_a_bidirectional_layer() -> None:
    layer = build(False)
    with pytest.raises(ValueError, match="causal"):
        layer.step(torch.randn(B, DIM), layer.init_state(B))
