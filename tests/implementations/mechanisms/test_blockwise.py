"""Blockwise self-attention (BlockBERT) against dense attention with the permutation mask."""

from __future__ import annotations

import math

import pytest
import torch

import implementations
from implementations import dense
from implementations.blockwise import attention

B, H, D = 2, 4, 8


def qkv(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, B, H, n, D).unbind(0)
    mask = torch.ones(B, n, dtype=torch.bool)
    mask[0, n - 4 :] = False
    mask[1, 1:3] = False
    return q, k, v, mask


def permutation_mask(n: int, n_blocks: int, shifts: torch.Tensor) -> torch.Tensor:
    """M[h, i, j] = 1 iff block(j) == (block(i) + shift_h) mod k (test oracle)."""
    size = math.ceil(n / n_blocks)
    block = torch.arange(n) // size
    target = (block[None, :, None] + shifts[:, None, None]) % n_blocks  # [h, n, 1]
    return target == block[None, None, :]  # [h, n, n]


@pytest.mark.parametrize(("n", "n_blocks"), [(24, 2), (23, 2), (25, 3), (7, 3)])
def test_matches_dense_with_permutation_mask(n: int, n_blocks: int) -> None:
    q, k, v, mask = qkv(n)
    shifts = torch.tensor([0, 0, 1, n_blocks - 1])
    out = attention(q, k, v, mask, n_blocks=n_blocks, shifts=shifts)
    allowed = permutation_mask(n, n_blocks, shifts)[None] & mask[:, None, None, :]
    torch.testing.assert_close(out, dense.attention(q, k, v, mask=allowed), atol=1e-5, rtol=1e-4)


def test_one_block_is_dense() -> None:
    q, k, v, mask = qkv(19)
    out = attention(q, k, v, mask, n_blocks=1, shifts=torch.zeros(H, dtype=torch.long))
    torch.testing.assert_close(out, dense.attention(q, k, v, mask=mask), atol=1e-5, rtol=1e-4)


def test_default_head_split_and_validation() -> None:
    assert implementations.build("blockwise", dim=96, heads=12).heads_per_shift == (10, 2)
    layer = implementations.build("blockwise", dim=96, heads=12, n_blocks=3)
    assert layer.heads_per_shift == (8, 2, 2)
    assert layer.shifts.tolist() == [0] * 8 + [1, 1, 2, 2]
    with pytest.raises(ValueError, match="heads_per_shift"):
        implementations.build("blockwise", dim=32, heads=4, heads_per_shift=(3, 2))
    with pytest.raises(ValueError, match="causal"):
        implementations.build("blockwise", dim=32, heads=4, causal=True)
