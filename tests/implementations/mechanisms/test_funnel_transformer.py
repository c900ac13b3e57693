"""Funnel-Transformer (Dai et al., 2020): pooled-query attention and the up-sampling path."""

from __future__ import annotations

import math

import pytest
import torch

import implementations
from implementations._helpers import merge_heads, split_heads
from implementations.funnel_transformer import FunnelUpsampler, pool, upsample

B, DIM, HEADS = 2, 16, 2


def build(**options: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return implementations.build("funnel-transformer", dim=DIM, heads=HEADS, **options)


def oracle(layer: torch.nn.Module, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """Explicit multi-head softmax attention of ``queries`` over ``context`` (no mask)."""
    p = layer.proj
    q = split_heads(p.to_q(queries), HEADS)  # [b, h, nq, d]
    k = split_heads(p.to_k(context), HEADS)  # [b, h, nk, d]
    v = split_heads(p.to_v(context), HEADS)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return p.to_out(merge_heads(weights @ v))


@pytest.mark.parametrize(("n", "stride"), [(1, 2), (2, 2), (7, 2), (12, 2), (10, 3)])
def test_output_length_is_ceil_n_over_stride(n: int, stride: int) -> None:
    layer = build(stride=stride)
    y = layer(torch.randn(B, n, DIM))
    assert y.shape == (B, math.ceil(n / stride), DIM) and layer.output_length(n) == y.shape[1]


def test_queries_are_pooled_keys_and_values_are_not() -> None:
    layer = build()
    x = torch.randn(B, 9, DIM)
    # Windows [0, 1], [2, 3], ..., [8]: the last one holds a single token.
    pooled = torch.cat([x[:, :8].view(B, 4, 2, DIM).mean(2), x[:, 8:]], dim=1)  # [b, 5, dim]
    torch.testing.assert_close(layer(x), oracle(layer, pooled, x), atol=1e-5, rtol=1e-4)


def test_pool_everything_variant() -> None:
    layer = build(pool_query_only=False)
    x = torch.randn(B, 8, DIM)
    pooled = x.view(B, 4, 2, DIM).mean(2)
    torch.testing.assert_close(layer(x), oracle(layer, pooled, pooled), atol=1e-5, rtol=1e-4)


def test_padding_is_excluded_from_pooling_and_keys() -> None:
    """A padded token neither enters its window's mean nor serves as a key."""
    layer = build()
    x = torch.randn(B, 8, DIM)
    mask = torch.ones(B, 8, dtype=torch.bool)
    mask[:, 5:] = False  # 5 real tokens: windows [0 1] [2 3] [4 pad] [pad pad]
    y = layer(x, mask)
    real = x[:, :5]
    pooled = torch.cat([real[:, :4].view(B, 2, 2, DIM).mean(2), real[:, 4:]], dim=1)
    torch.testing.assert_close(y[:, :3], oracle(layer, pooled, real), atol=1e-5, rtol=1e-4)
    assert layer.output_mask(mask).tolist() == [[True, True, True, False]] * B


def test_max_pooling() -> None:
    x = torch.tensor([[[1.0], [5.0], [-2.0], [3.0], [4.0]]])
    mask = torch.tensor([[True, True, True, False, True]])
    pooled, pooled_mask = pool(x, mask, stride=2, mode="max")
    assert pooled.flatten().tolist() == [5.0, -2.0, 4.0]
    assert pooled_mask.tolist() == [[True, True, True]]


def test_upsampling_restores_the_full_length() -> None:
    """Two pooling layers (n -> n/2 -> n/4), then repeat x4 + the full-length residual."""
    n = 11
    x = torch.randn(B, n, DIM)
    h = build()(build()(x))  # [b, 3, dim]
    assert h.shape[1] == math.ceil(math.ceil(n / 2) / 2)
    g = FunnelUpsampler(factor=4)(h, x)
    assert g.shape == x.shape
    expected = x + torch.stack([h[:, i // 4] for i in range(n)], dim=1)
    torch.testing.assert_close(g, expected)


def test_upsample_rejects_too_short_input() -> None:
    with pytest.raises(ValueError, match="cannot cover"):
        upsample(torch.zeros(1, 2, 3), factor=2, length=5)
