"""Shared helpers of the implementations, against explicit oracles."""

from __future__ import annotations

import pytest
import torch

from implementations._helpers import (
    reference_softmax_attention,
    sliding_window_blocks,
    softmax_attention,
)
from implementations._tiled import tile_scores


def band_oracle(x: torch.Tensor, before: int, after: int, key_ok: torch.Tensor) -> torch.Tensor:
    """Attention of every position over keys ``i - before .. i + after`` with an n x n mask."""
    n = x.shape[-2]
    lag = torch.arange(n)[None, :] - torch.arange(n)[:, None]  # [n, n]: key - query
    allowed = (lag >= -before) & (lag <= after) & key_ok[..., None, :]  # [..., n, n]
    return reference_softmax_attention(x, x, x, allowed)


@pytest.mark.parametrize(
    ("n", "before", "after"),
    [(12, 3, 3), (12, 4, 0), (10, 8, 0), (10, 9, 0), (10, 9, 9), (10, 30, 0), (7, 2, 6), (9, 8, 2)],
)
def test_sliding_window_blocks_compute_banded_attention(n: int, before: int, after: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, n, 8)  # [b, h, n, d]
    key_ok = torch.ones(2, 1, n, dtype=torch.bool)
    key_ok[1, :, -2:] = False  # padded keys
    blocks = sliding_window_blocks(x, x, x, before, after, mask=key_ok)
    out = softmax_attention(blocks.q, blocks.k, blocks.v, blocks.allowed)
    merged = out.flatten(-3, -2)[..., :n, :]  # [b, h, n, d]
    torch.testing.assert_close(merged, band_oracle(x, before, after, key_ok), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("before", [8, 9, 30])
def test_a_window_close_to_the_sequence_is_one_block(before: int) -> None:
    """Blocks of 8 or 9 would pad 10 positions to 16 or 18, each scoring as many keys."""
    x = torch.randn(1, 10, 4)
    blocks = sliding_window_blocks(x, x, x, before=before, after=0)
    assert blocks.q.shape == (1, 1, 10, 4)
    assert blocks.k.shape == (1, 1, 10, 4)
    lag = torch.arange(10)[None, :] - torch.arange(10)[:, None]
    assert torch.equal(blocks.allowed[0], (lag <= 0) & (lag >= -before))


def test_a_short_window_keeps_its_blocks() -> None:
    x = torch.randn(1, 64, 4)
    blocks = sliding_window_blocks(x, x, x, before=8, after=8)
    assert blocks.q.shape == (1, 8, 8, 4)  # 8 blocks of 8, each scoring 24 keys
    assert blocks.k.shape == (1, 8, 24, 4)


@pytest.mark.parametrize(("q_start", "k_start"), [(0, 0), (4, 0), (8, 0), (0, 4), (2, 5)])
def test_tile_scores_mask_exactly_the_future_keys(q_start: int, k_start: int) -> None:
    """Tiles on, below and above the diagonal, with key padding."""
    torch.manual_seed(0)
    q, k = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 4, 8)
    key_ok = torch.tensor([[True] * 4, [True, True, False, True]])
    tile = tile_scores(q, k, 0.5, q_start, k_start, key_ok, causal=True)
    i = torch.arange(q_start, q_start + 4)[:, None]
    j = torch.arange(k_start, k_start + 4)[None, :]
    allowed = (j <= i) & key_ok[:, None, None, :]  # [b, 1, nq, nk]
    expected = (q @ k.transpose(-1, -2) * 0.5).masked_fill(~allowed, -torch.inf)
    torch.testing.assert_close(tile, expected)
