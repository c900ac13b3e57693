"""BigBird-ITC block-sparse attention (Zaheer et al., 2020) against explicit dense oracles."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import implementations
from implementations import dense
from implementations.big_bird import attention, random_blocks

B, H, D, BS = 2, 3, 8, 4


def qkv(n: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, B, H, n, D).unbind(0)
    mask = torch.ones(B, n, dtype=torch.bool)
    mask[0, n - 5 :] = False
    mask[1, 6:8] = False
    return q, k, v, mask


def real(t: Tensor, mask: Tensor) -> Tensor:
    """The real query rows of a per-head ``[b, h, n, d]`` tensor."""
    return t.transpose(1, 2)[mask]


def pattern_oracle(n: int, index: Tensor, valid: Tensor) -> Tensor:
    """Token-level bool ``[h, n, n]`` of the ITC pattern, built pair by pair."""
    n_blocks = index.shape[1]
    block = torch.zeros(H, n_blocks, n_blocks, dtype=torch.bool)
    for t in range(n_blocks):
        for s in (t - 1, t, t + 1, 0, n_blocks - 1):
            if 0 <= s < n_blocks:
                block[:, t, s] = True
        for head in range(H):
            block[head, t, index[head, t][valid[head, t]]] = True
    block[:, [0, n_blocks - 1], :] = True  # global rows
    token_block = torch.arange(n) // BS
    return block[:, token_block][:, :, token_block]


@pytest.mark.parametrize("n", [5, 18, 20])
def test_up_to_five_blocks_is_dense(n: int) -> None:
    """Window (3 blocks) + first + last block cover every key when there are <= 5 blocks."""
    q, k, v, mask = qkv(n)
    index, valid = random_blocks(H, -(-n // BS), 3, seed=0)
    out = attention(q, k, v, block_size=BS, random_index=index, random_valid=valid, mask=mask)
    expected = dense.attention(q, k, v, mask=mask)
    torch.testing.assert_close(real(out, mask), real(expected, mask), atol=1e-5, rtol=1e-4)


def test_window_random_and_global_covering_everything_is_dense() -> None:
    """With 7 blocks, 3 random blocks reach every block outside the window and globals."""
    n = 7 * BS - 1
    q, k, v, mask = qkv(n)
    index, valid = random_blocks(H, 7, 3, seed=1)
    assert valid[:, 1].all() and valid[:, 5].all()  # blocks 1 and 5 have exactly 3 candidates
    out = attention(q, k, v, block_size=BS, random_index=index, random_valid=valid, mask=mask)
    expected = dense.attention(q, k, v, mask=mask)
    torch.testing.assert_close(real(out, mask), real(expected, mask), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("r", [0, 1, 3])
def test_matches_dense_with_the_sparse_pattern(r: int) -> None:
    n = 13 * BS - 2
    q, k, v, mask = qkv(n)
    index, valid = random_blocks(H, 13, r, seed=2)
    out = attention(q, k, v, block_size=BS, random_index=index, random_valid=valid, mask=mask)
    allowed = pattern_oracle(n, index, valid)[None] & mask[:, None, None, :]
    expected = dense.attention(q, k, v, mask=allowed)
    torch.testing.assert_close(real(out, mask), real(expected, mask), atol=1e-5, rtol=1e-4)


def test_random_blocks_avoid_window_and_globals() -> None:
    n_blocks, r = 12, 3
    index, valid = random_blocks(H, n_blocks, r, seed=3)
    t = torch.arange(n_blocks)[None, :, None]
    assert valid[:, 2:-2].all()  # middle blocks always have >= r candidates here
    picked = index[valid]
    assert ((index - t).abs() > 1)[valid].all()
    assert ((picked > 0) & (picked < n_blocks - 1)).all()
    for head in range(H):  # distinct within each query block
        for row in range(n_blocks):
            chosen = index[head, row][valid[head, row]]
            assert chosen.unique().numel() == chosen.numel()
    again, _ = random_blocks(H, n_blocks, r, seed=3)
    assert torch.equal(index, again)
    assert not torch.equal(index, random_blocks(H, n_blocks, r, seed=4)[0])


def test_pattern_is_fixed_per_layer_and_saved() -> None:
    torch.manual_seed(5)
    layer = implementations.build("big-bird", dim=24, heads=H, block_size=BS).eval()
    x = torch.randn(B, 50, 24)
    y = layer(x)
    torch.testing.assert_close(layer(x), y, atol=0, rtol=0)
    torch.manual_seed(6)
    other = implementations.build("big-bird", dim=24, heads=H, block_size=BS).eval()
    assert other.seed != layer.seed
    other.load_state_dict(layer.state_dict())
    assert other.seed == layer.seed
    torch.testing.assert_close(other(x), y, atol=0, rtol=0)


def test_small_blocks_respect_padding() -> None:
    torch.manual_seed(7)
    layer = implementations.build("big-bird", dim=24, heads=H, block_size=BS).eval()
    n = 45
    x = torch.randn(B, n, 24)
    _, _, _, mask = qkv(n)
    y = layer(x, mask)
    y_changed = layer(torch.where(mask[..., None], x, torch.randn_like(x)), mask)
    torch.testing.assert_close(y_changed[mask], y[mask])


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"block_size": 0}, "block_size"),
        ({"num_random_blocks": -1}, "num_random_blocks"),
        ({"causal": True}, "causal"),
    ],
)
def test_bad_options_are_rejected(options: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        implementations.build("big-bird", dim=16, heads=4, **options)
