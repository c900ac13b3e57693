"""Shared helpers of the implementations, against explicit oracles."""

from __future__ import annotations

import pytest
import torch

from implementations._helpers import (
    reference_softmax_attention,
    sliding_window_blocks,
    softmax_attention,
)


def band_oracle(x: torch.Tensor, before: int, after: int, key_ok: torch.Tensor) -> torch.Tensor:
    """Attention of every position over keys ``i - before .. i + after`` with an n x n mask."""
    n = x.shape[-2]
    lag = torch.arange(n)[None, :] - torch.arange(n)[:, None]  # [n, n]: key - query
    allowed = (lag >= -before) & (lag <= after) & key_ok[..., None, :]  # [..., n, n]
    return reference_softmax_attention(x, x, x, allowed)


@pytest.mark.parametrize(
    ("n", "before", "after"),
    [(12, 3, 3), (12, 4, 0), (10, 9, 0), (10, 9, 9), (10, 30, 0), (7, 2, 6), (9, 8, 2)],
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


def test_a_window_spanning_the_sequence_is_one_block() -> None:
    """No padding to 2(n - 1) positions when every query already sees every key it may."""
    x = torch.randn(1, 10, 4)
    blocks = sliding_window_blocks(x, x, x, before=9, after=0)
    assert blocks.q.shape == (1, 1, 10, 4)
    assert blocks.k.shape == (1, 1, 10, 4)
    assert torch.equal(blocks.allowed[0], torch.ones(10, 10, dtype=torch.bool).tril())
