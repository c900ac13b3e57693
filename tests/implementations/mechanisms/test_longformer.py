"""Longformer (Beltagy et al., 2020) against explicit dense oracles."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import implementations
from implementations import dense
from implementations._helpers import split_heads
from implementations.longformer import attention

B, H, N, D = 2, 4, 29, 8


def qkv() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, B, H, N, D).unbind(0)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 21:] = False
    mask[1, 5:7] = False
    return q, k, v, mask


def real(t: Tensor, mask: Tensor) -> Tensor:
    """The real query rows of a per-head ``[b, h, n, d]`` tensor."""
    return t.transpose(1, 2)[mask]


def longformer_mask(n: int, window: int, dilation: int, g: int, causal: bool) -> Tensor:
    """Bool ``[n, n]``: the keys a non-global query may see (window ∪ global columns)."""
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    diff = j - i
    in_window = (diff % dilation == 0) & (diff.abs() <= (window // 2) * dilation)
    allowed = in_window | (j < g)
    return allowed & (diff <= 0) if causal else allowed


def oracle(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor,
    window: int,
    dilations: list[int],
    g: int,
    causal: bool,
    global_qkv: tuple[Tensor, Tensor, Tensor] | None = None,
) -> Tensor:
    n = q.shape[-2]
    allowed = torch.stack([longformer_mask(n, window, d, g, causal) for d in dilations])
    out = dense.attention(q, k, v, mask=allowed[None] & mask[:, None, None, :])  # [b, h, n, d]
    if g:
        qg, kg, vg = (q, k, v) if global_qkv is None else global_qkv
        glob = dense.attention(qg, kg, vg, mask=mask[:, None, None, :], causal=causal)
        out = torch.cat([glob[:, :, :g], out[:, :, g:]], dim=2)
    return out


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("window", "dilation", "g"), [(4, 1, 0), (6, 2, 0), (4, 3, 3), (10, 1, 2)])
def test_attention_matches_banded_dense_oracle(
    window: int, dilation: int, g: int, causal: bool
) -> None:
    q, k, v, mask = qkv()
    out = attention(
        q, k, v, window=window, dilation=dilation, causal=causal, mask=mask, global_tokens=g
    )
    expected = oracle(q, k, v, mask, window, [dilation] * H, g, causal)
    torch.testing.assert_close(real(out, mask), real(expected, mask), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_window_covering_everything_is_dense(causal: bool) -> None:
    q, k, v, mask = qkv()
    out = attention(q, k, v, window=2 * N, causal=causal, mask=mask)
    expected = dense.attention(q, k, v, mask=mask, causal=causal)
    torch.testing.assert_close(real(out, mask), real(expected, mask), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_every_token_global_is_dense_with_global_projections(causal: bool) -> None:
    q, k, v, mask = qkv()
    qg, kg, vg = torch.randn(3, B, H, N, D).unbind(0)
    out = attention(
        q, k, v, window=2, causal=causal, mask=mask, global_tokens=N, global_qkv=(qg, kg, vg)
    )
    expected = dense.attention(qg, kg, vg, mask=mask, causal=causal)
    torch.testing.assert_close(real(out, mask), real(expected, mask), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_module_with_per_head_dilation_and_globals(causal: bool) -> None:
    """The module = projections + per-head-dilation oracle, global rows with Q_g, K_g, V_g."""
    torch.manual_seed(1)
    dim, dilations = 32, [1, 2, 1, 3]
    layer = implementations.build(
        "longformer",
        dim=dim,
        heads=H,
        causal=causal,
        attention_window=4,
        attention_dilation=dilations,
        global_tokens=2,
    )
    x = torch.randn(B, N, dim)
    _, _, _, mask = qkv()
    q, k, v = layer.proj.qkv(x)
    global_qkv = tuple(
        split_heads(p(x), H) for p in (layer.to_q_global, layer.to_k_global, layer.to_v_global)
    )
    expected = layer.proj.out(oracle(q, k, v, mask, 4, dilations, 2, causal, global_qkv))
    torch.testing.assert_close(layer(x, mask)[mask], expected[mask], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_small_window_respects_padding_and_causality(causal: bool) -> None:
    """With a window far smaller than n: padded tokens never matter; no future leaks."""
    torch.manual_seed(2)
    layer = implementations.build(
        "longformer",
        dim=16,
        heads=2,
        causal=causal,
        attention_window=4,
        attention_dilation=(1, 2),
        global_tokens=2,
    ).eval()
    x = torch.randn(B, N, 16)
    _, _, _, mask = qkv()
    y = layer(x, mask)
    y_changed = layer(torch.where(mask[..., None], x, torch.randn_like(x)), mask)
    torch.testing.assert_close(y_changed[mask], y[mask])
    if causal:
        x_future = x.clone()
        x_future[:, 15:] = torch.randn(B, N - 15, 16)
        torch.testing.assert_close(layer(x_future, mask)[:, :15], y[:, :15])


def test_global_projections_exist_only_with_global_tokens() -> None:
    without = implementations.build("longformer", dim=16, heads=2, attention_window=4)
    with_globals = implementations.build(
        "longformer", dim=16, heads=2, attention_window=4, global_tokens=1
    )
    assert not hasattr(without, "to_q_global")
    assert hasattr(with_globals, "to_q_global")


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"attention_window": 5}, "attention_window"),
        ({"attention_window": 0}, "attention_window"),
        ({"attention_dilation": 0}, "attention_dilation"),
        ({"attention_dilation": (1, 2)}, "attention_dilation"),
        ({"global_tokens": -1}, "global_tokens"),
    ],
)
def test_bad_options_are_rejected(options: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        implementations.build("longformer", dim=16, heads=4, **options)
