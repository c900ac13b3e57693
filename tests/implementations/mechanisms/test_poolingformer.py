"""Poolingformer (Zhang et al., 2021) against explicit dense oracles."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import implementations
from implementations import dense
from implementations._helpers import split_heads
from implementations.poolingformer import local_attention, pool, pooling_attention

B, H, N, D, DIM = 2, 2, 26, 8, 16


def mask_() -> Tensor:
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 19:] = False
    mask[1, 5:9] = False
    return mask


def real(t: Tensor, mask: Tensor) -> Tensor:
    """The real query rows of a per-head ``[b, h, n, d]`` tensor."""
    return t.transpose(1, 2)[mask]


def pool_oracle(
    x: Tensor, mask: Tensor, kernel: int, stride: int, mode: str, conv: nn.Conv1d | None = None
) -> tuple[Tensor, Tensor]:
    """Window m covers tokens m * stride - p + [0, kernel), with p = (kernel - stride) // 2."""
    n, left = x.shape[1], (kernel - stride) // 2
    pooled, ok = [], []
    for m in range(-(-n // stride)):
        idx = torch.arange(m * stride - left, m * stride - left + kernel)
        inside = (idx >= 0) & (idx < n)
        real_tokens = torch.zeros(x.shape[0], kernel, dtype=torch.bool)
        real_tokens[:, inside] = mask[:, idx[inside]]
        window = torch.zeros(x.shape[0], kernel, x.shape[2])
        window[:, inside] = x[:, idx[inside]]
        window = window * real_tokens[..., None]
        if mode == "mean":
            value = window.sum(1) / real_tokens.sum(1, keepdim=True).clamp(min=1)
        elif mode == "max":
            value = window.masked_fill(~real_tokens[..., None], -torch.inf).amax(1)
            value = torch.where(real_tokens.any(1, keepdim=True), value, 0.0)
        else:
            value = torch.einsum("bkc,ck->bc", window, conv.weight[:, 0]) + conv.bias
        pooled.append(value)
        ok.append(real_tokens.any(1))
    return torch.stack(pooled, 1), torch.stack(ok, 1)


@pytest.mark.parametrize("mode", ["mean", "max", "conv"])
@pytest.mark.parametrize(("kernel", "stride"), [(1, 1), (3, 2), (5, 4), (4, 4)])
def test_pool_matches_window_by_window_oracle(mode: str, kernel: int, stride: int) -> None:
    torch.manual_seed(0)
    x, mask = torch.randn(B, N, 6), mask_()
    conv = nn.Conv1d(6, 6, kernel, stride=stride, groups=6) if mode == "conv" else None
    pooled, ok = pool(x, mask, kernel_size=kernel, stride=stride, mode=mode, conv=conv)
    expected, expected_ok = pool_oracle(x, mask, kernel, stride, mode, conv)
    assert torch.equal(ok, expected_ok)
    torch.testing.assert_close(pooled, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("window", [2, 6, 2 * N])
def test_first_level_is_banded_dense(window: int) -> None:
    torch.manual_seed(1)
    q, k, v = torch.randn(3, B, H, N, D).unbind(0)
    mask = mask_()
    i, j = torch.arange(N)[:, None], torch.arange(N)[None, :]
    band = (i - j).abs() <= window // 2
    out = local_attention(q, k, v, window=window, mask=mask)
    expected = dense.attention(q, k, v, mask=band & mask[:, None, None, :])
    torch.testing.assert_close(real(out, mask), real(expected, mask), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(("radius", "stride"), [(0, 2), (1, 3), (2, 4), (20, 2)])
def test_second_level_is_dense_over_the_pooled_window(radius: int, stride: int) -> None:
    torch.manual_seed(2)
    m = -(-N // stride)
    q = torch.randn(B, H, N, D)
    k, v = torch.randn(2, B, H, m, D).unbind(0)
    pooled_mask = torch.ones(B, m, dtype=torch.bool)
    pooled_mask[0, -2:] = False
    out = pooling_attention(q, k, v, pooled_mask, radius=radius, stride=stride)
    cell = torch.arange(N)[:, None] // stride
    allowed = ((torch.arange(m)[None, :] - cell).abs() <= radius) & pooled_mask[:, None, None, :]
    expected = dense.attention(q, k, v, mask=allowed)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("pooling", ["mean", "max", "conv"])
def test_module_is_the_two_level_composition(pooling: str) -> None:
    torch.manual_seed(3)
    layer = implementations.build(
        "poolingformer",
        dim=DIM,
        heads=H,
        first_level_window=4,
        second_level_window=12,
        pooling_kernel_size=3,
        pooling_stride=2,
        pooling=pooling,
    )
    x, mask = torch.randn(B, N, DIM), mask_()
    i, j = torch.arange(N)[:, None], torch.arange(N)[None, :]
    q, k, v = layer.first.qkv(x)
    y = layer.first.out(
        dense.attention(q, k, v, mask=((i - j).abs() <= 2) & mask[:, None, None, :])
    )
    k2, ok = pool_oracle(layer.second.to_k(y), mask, 3, 2, pooling, layer.key_pool)
    v2, _ = pool_oracle(layer.second.to_v(y), mask, 3, 2, pooling, layer.value_pool)
    cells = (torch.arange(k2.shape[1])[None, :] - i // 2).abs() <= 12 // 4  # R = w2 / (2 xi)
    z = dense.attention(
        split_heads(layer.second.to_q(y), H),
        split_heads(k2, H),
        split_heads(v2, H),
        mask=cells & ok[:, None, None, :],
    )
    expected = y + layer.second.out(z)
    torch.testing.assert_close(layer(x, mask)[mask], expected[mask], atol=1e-5, rtol=1e-4)


def test_full_windows_without_pooling_are_two_dense_attentions() -> None:
    torch.manual_seed(4)
    layer = implementations.build(
        "poolingformer",
        dim=DIM,
        heads=H,
        first_level_window=2 * N,
        second_level_window=2 * N,
        pooling_kernel_size=1,
        pooling_stride=1,
    )
    x, mask = torch.randn(B, N, DIM), mask_()
    y = layer.first.out(dense.attention(*layer.first.qkv(x), mask=mask))
    expected = y + layer.second.out(dense.attention(*layer.second.qkv(y), mask=mask))
    torch.testing.assert_close(layer(x, mask)[mask], expected[mask], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("pooling", ["mean", "max", "conv"])
def test_small_windows_respect_padding(pooling: str) -> None:
    torch.manual_seed(5)
    layer = implementations.build(
        "poolingformer",
        dim=DIM,
        heads=H,
        first_level_window=4,
        second_level_window=8,
        pooling_kernel_size=3,
        pooling_stride=2,
        pooling=pooling,
    ).eval()
    x, mask = torch.randn(B, N, DIM), mask_()
    y = layer(x, mask)
    y_changed = layer(torch.where(mask[..., None], x, torch.randn_like(x) * 3), mask)
    torch.testing.assert_close(y_changed[mask], y[mask])


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"first_level_window": 0}, "first_level_window"),
        ({"pooling_stride": 0}, "pooling_stride"),
        ({"pooling_kernel_size": 2, "pooling_stride": 3}, "pooling_kernel_size"),
        ({"pooling": "sum"}, "pooling"),
        ({"causal": True}, "causal"),
    ],
)
def test_bad_options_are_rejected(options: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        implementations.build("poolingformer", dim=16, heads=4, **options)
