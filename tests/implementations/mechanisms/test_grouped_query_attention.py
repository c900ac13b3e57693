"""Grouped-query attention (Ainslie et al., 2023) against multi-head and multi-query attention.

Oracles: dense multi-head attention with the same weights (``kv_heads == heads``), the
multi-query layer (``kv_heads == 1``), a float64 per-head loop with explicitly repeated key and
value heads, and a per-group loop for the mean-pooled conversion.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import implementations
from implementations.grouped_query_attention import (
    GroupedQueryAttention,
    from_multi_head,
    grouped_attention,
    mean_pool_heads,
)

DIM, HEADS, N, B = 48, 6, 13, 2


def padding() -> Tensor:
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 9:] = False
    mask[1, :2] = False  # left padding: causal queries 0, 1 see no real key
    return mask


def build(id: str, causal: bool, **options: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return implementations.build(id, dim=DIM, heads=HEADS, causal=causal, **options).eval()


def naive(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool) -> Tensor:
    """Per query head, in float64: head i reads key/value head i // (h / g)."""
    h, g, n = q.shape[1], k.shape[1], q.shape[2]
    allowed = torch.ones(q.shape[0], n, n, dtype=torch.bool)
    if mask is not None:
        allowed &= mask[:, None, :]
    if causal:
        allowed &= torch.ones(n, n, dtype=torch.bool).tril()
    heads = []
    for i in range(h):
        kv = i // (h // g)
        scores = q[:, i].double() @ k[:, kv].double().transpose(-1, -2) / q.shape[-1] ** 0.5
        probs = scores.masked_fill(~allowed, -torch.inf).softmax(-1).nan_to_num(0.0)
        heads.append(probs @ v[:, kv].double())
    return torch.stack(heads, 1)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("kv_heads", [1, 2, 3, 6])
def test_core_equals_per_head_loop(causal: bool, masked: bool, kv_heads: int) -> None:
    torch.manual_seed(0)
    q = torch.randn(B, HEADS, N, 8)
    k, v = torch.randn(2, B, kv_heads, N, 8).unbind(0)
    mask = padding() if masked else None
    got = grouped_attention(q, k, v, mask, causal)
    torch.testing.assert_close(got.double(), naive(q, k, v, mask, causal), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kv_heads", [1, 2])
def test_fused_grouped_kernel_equals_the_stacked_form(causal: bool, kv_heads: int) -> None:
    """No padding takes the fused grouped kernel; an all-True mask takes the stacked form."""
    torch.manual_seed(0)
    q = torch.randn(B, HEADS, N, 8)
    k, v = torch.randn(2, B, kv_heads, N, 8).unbind(0)
    everything = torch.ones(B, N, dtype=torch.bool)
    fused = grouped_attention(q, k, v, None, causal)
    stacked = grouped_attention(q, k, v, everything, causal)
    torch.testing.assert_close(fused, stacked, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_as_many_kv_heads_as_heads_is_multi_head_attention(causal: bool) -> None:
    dense = build("dense", causal)
    gqa = build("grouped-query-attention", causal, kv_heads=HEADS)
    gqa.load_state_dict(dense.state_dict())  # the same weights, the same names
    x, mask = torch.randn(B, N, DIM), padding()
    torch.testing.assert_close(gqa(x, mask), dense(x, mask), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gqa(x), dense(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_one_kv_head_is_multi_query_attention(causal: bool) -> None:
    mqa = build("multi-query-attention", causal)
    gqa = build("grouped-query-attention", causal, kv_heads=1)
    gqa.load_state_dict(mqa.state_dict())
    x, mask = torch.randn(B, N, DIM), padding()
    torch.testing.assert_close(gqa(x, mask), mqa(x, mask), atol=1e-6, rtol=1e-6)


def test_default_is_the_papers_gqa_8_when_heads_allow() -> None:
    assert implementations.build("grouped-query-attention", dim=64, heads=16).kv_heads == 8
    assert implementations.build("grouped-query-attention", dim=64, heads=4).kv_heads == 4
    with pytest.raises(ValueError, match="kv_heads"):
        implementations.build("grouped-query-attention", dim=48, heads=6, kv_heads=4)


@pytest.mark.parametrize("kv_heads", [1, 2, 3])
def test_step_with_kv_cache_equals_causal_forward(kv_heads: int) -> None:
    layer = build("grouped-query-attention", True, kv_heads=kv_heads)
    x = torch.randn(B, N, DIM)
    state, outputs = layer.init_state(B), []
    for t in range(N):
        y_t, state = layer.step(x[:, t], state)
        outputs.append(y_t)
        assert state.keys.shape == (B, kv_heads, t + 1, DIM // HEADS)  # the cache grows by one
    torch.testing.assert_close(torch.stack(outputs, 1), layer(x), atol=1e-5, rtol=1e-5)


def test_step_refuses_a_bidirectional_layer() -> None:
    layer = build("grouped-query-attention", False, kv_heads=2)
    with pytest.raises(ValueError, match="causal"):
        layer.step(torch.randn(B, DIM), layer.init_state(B))


def test_mean_pool_heads_averages_each_group() -> None:
    torch.manual_seed(0)
    weight = torch.randn(HEADS * 8, DIM)  # 6 heads of width 8
    pooled = mean_pool_heads(weight, HEADS, 2)
    assert pooled.shape == (2 * 8, DIM)
    for group in range(2):
        members = [weight[i * 8 : (i + 1) * 8] for i in range(group * 3, group * 3 + 3)]
        torch.testing.assert_close(pooled[group * 8 : (group + 1) * 8], sum(members) / 3)


@pytest.mark.parametrize("kv_heads", [1, 2, 3])
def test_conversion_from_multi_head(kv_heads: int) -> None:
    """Queries and outputs are copied, keys and values mean-pooled; exact when a group's
    heads already agree."""
    dense = build("dense", True)
    gqa = from_multi_head(dense, kv_heads)
    assert isinstance(gqa, GroupedQueryAttention) and gqa.causal and gqa.kv_heads == kv_heads
    torch.testing.assert_close(gqa.proj.to_q.weight, dense.proj.to_q.weight)
    torch.testing.assert_close(gqa.proj.to_out.bias, dense.proj.to_out.bias)
    for name in ("to_k", "to_v"):
        got = getattr(gqa.proj, name).weight
        expected = mean_pool_heads(getattr(dense.proj, name).weight, HEADS, kv_heads)
        torch.testing.assert_close(got, expected)

    # Make the heads of each group identical: pooling loses nothing, outputs agree exactly.
    with torch.no_grad():
        for name in ("to_k", "to_v"):
            w = getattr(dense.proj, name).weight
            pooled = mean_pool_heads(w, HEADS, kv_heads)  # [g d, dim]
            w.copy_(
                pooled.view(kv_heads, 1, -1, DIM)
                .expand(-1, HEADS // kv_heads, -1, -1)
                .reshape(w.shape)
            )
    gqa = from_multi_head(dense, kv_heads)
    x, mask = torch.randn(B, N, DIM), padding()
    torch.testing.assert_close(gqa(x, mask), dense(x, mask), atol=1e-5, rtol=1e-5)
