"""Long-Short Transformer (Zhu et al., 2021) against explicit dense oracles."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

import implementations
from implementations import dense
from implementations._helpers import masked_softmax
from implementations.long_short_transformer import attention

B, H, N, D, DIM = 2, 2, 23, 8, 16


def inputs() -> tuple[Tensor, Tensor]:
    torch.manual_seed(0)
    x = torch.randn(B, N, DIM)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 17:] = False
    mask[1, 2:4] = False
    return x, mask


def layer(causal: bool, **options: int) -> nn.Module:
    torch.manual_seed(1)
    return implementations.build(
        "long-short-transformer", dim=DIM, heads=H, causal=causal, **options
    ).eval()


def real(t: Tensor, mask: Tensor) -> Tensor:
    """The real query rows of a per-head ``[b, h, n, d]`` tensor."""
    return t.transpose(1, 2)[mask]


def test_dynamic_projection_is_a_softmax_over_positions() -> None:
    """K_bar = P^T K with P = softmax(X W^P) over the real positions (bidirectional)."""
    module = layer(False, rank=3)
    x, mask = inputs()
    _, k, v = module.proj.qkv(x)
    k_bar, v_bar, bar_mask, _ = module.project(x, k, v, mask)
    logits = module.to_p(x).view(B, N, H, 3).permute(0, 2, 1, 3)  # [b, h, n, r]
    p = logits.masked_fill(~mask[:, None, :, None], -math.inf).softmax(dim=2)
    torch.testing.assert_close(k_bar, p.transpose(-1, -2) @ k, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(v_bar, p.transpose(-1, -2) @ v, atol=1e-5, rtol=1e-4)
    assert bar_mask.all()


def test_causal_dynamic_projection_is_segment_wise() -> None:
    module = layer(True, rank=2, segment_size=5)
    x, mask = inputs()
    _, k, v = module.proj.qkv(x)
    k_bar, _, bar_mask, bar_segment = module.project(x, k, v, mask)
    logits = module.to_p(x).view(B, N, H, 2).permute(0, 2, 1, 3)  # [b, h, n, r]
    for s in range(-(-N // 5)):
        part = slice(5 * s, 5 * s + 5)
        p = logits[:, :, part].masked_fill(~mask[:, None, part, None], -math.inf).softmax(dim=2)
        expected = p.transpose(-1, -2) @ k[:, :, part]  # [b, h, r, d]
        real_segments = mask[:, part].any(-1)
        torch.testing.assert_close(
            k_bar[real_segments, :, 2 * s : 2 * s + 2],
            expected[real_segments],
            atol=1e-5,
            rtol=1e-4,
        )
        assert torch.equal(bar_mask[:, 2 * s], real_segments)
    assert torch.equal(bar_segment, torch.arange(5).repeat_interleave(2))


@pytest.mark.parametrize("causal", [False, True])
def test_window_covering_everything_without_projection_is_dense(causal: bool) -> None:
    torch.manual_seed(2)
    q, k, v = torch.randn(3, B, H, N, D).unbind(0)
    _, mask = inputs()
    empty = torch.zeros(B, H, 0, D)
    out = attention(
        q, k, v, empty, empty, window_size=N, mask=mask, causal=causal, bar_segment=torch.zeros(0)
    )
    expected = dense.attention(q, k, v, mask=mask, causal=causal)
    torch.testing.assert_close(real(out, mask), real(expected, mask), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    ("causal", "options"),
    [
        (False, {"window_size": 4, "rank": 3}),
        (False, {"window_size": 7, "rank": 1}),
        (True, {"window_size": 4, "rank": 2, "segment_size": 3}),
        (True, {"window_size": 6, "rank": 1, "segment_size": 8}),
    ],
)
def test_module_matches_dense_oracle(causal: bool, options: dict[str, int]) -> None:
    """softmax(Q [LN_L(K_window); LN_G(K_bar)]^T) [LN_L(V_window); LN_G(V_bar)], written out."""
    module = layer(causal, **options)
    x, mask = inputs()
    w = options["window_size"]
    q, k, v = module.proj.qkv(x)
    k_bar, v_bar, bar_mask, bar_segment = module.project(x, k, v, mask)
    k, v = (
        module.layer_norm_heads(module.norm_local, k),
        module.layer_norm_heads(module.norm_local, v),
    )
    k_bar = module.layer_norm_heads(module.norm_global, k_bar)
    v_bar = module.layer_norm_heads(module.norm_global, v_bar)

    i, j = torch.arange(N)[:, None], torch.arange(N)[None, :]
    if causal:
        window = (j <= i) & (j > i - w)
        earlier = bar_segment[None, :] < (torch.arange(N) // options["segment_size"])[:, None]
    else:
        start = (i // w) * w  # the query's segment, widened by w // 2 on each side
        window = (j >= start - w // 2) & (j < start + w + w // 2)
        earlier = torch.ones(N, k_bar.shape[2], dtype=torch.bool)
    allowed = torch.cat(
        [
            window[None] & mask[:, None, :],
            earlier[None] & bar_mask[:, None, :],
        ],
        dim=-1,
    )[:, None]  # [b, 1, n, n + n_bar]
    scores = q @ torch.cat([k, k_bar], dim=2).transpose(-1, -2) / math.sqrt(D)
    o = masked_softmax(scores, allowed) @ torch.cat([v, v_bar], dim=2)
    expected = module.proj.out(o)
    torch.testing.assert_close(module(x, mask)[mask], expected[mask], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_small_window_respects_padding_and_causality(causal: bool) -> None:
    module = layer(causal, window_size=4, rank=2, segment_size=3)
    x, mask = inputs()
    y = module(x, mask)
    y_changed = module(torch.where(mask[..., None], x, torch.randn_like(x)), mask)
    torch.testing.assert_close(y_changed[mask], y[mask])
    if causal:
        x_future = x.clone()
        x_future[:, 10:] = torch.randn(B, N - 10, DIM)
        torch.testing.assert_close(module(x_future)[:, :10], module(x)[:, :10])


def test_paper_defaults_per_mode() -> None:
    bidirectional, causal = layer(False), layer(True)
    assert (bidirectional.window_size, bidirectional.rank) == (8, 32)
    assert (causal.window_size, causal.rank, causal.segment_size) == (512, 1, 16)


@pytest.mark.parametrize("name", ["window_size", "rank", "segment_size"])
def test_bad_options_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        implementations.build("long-short-transformer", dim=16, heads=4, **{name: 0})


@pytest.mark.parametrize("causal", [False, True])
def test_fused_attention_matches_reference(causal: bool) -> None:
    from implementations.long_short_transformer import attention, reference_attention

    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 30, 8).unbind(0)
    k_bar, v_bar = torch.randn(2, 2, 4, 6, 8).unbind(0)
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[0, 25:] = False
    bar_mask = torch.ones(2, 6, dtype=torch.bool)
    bar_mask[1, 4:] = False
    options = {"window_size": 8, "mask": mask, "bar_mask": bar_mask, "causal": causal}
    if causal:
        options |= {"segment_size": 5, "bar_segment": torch.arange(6)}
    out = attention(q, k, v, k_bar, v_bar, **options)
    expected = reference_attention(q, k, v, k_bar, v_bar, **options)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
