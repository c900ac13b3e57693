"""Sparse Sinkhorn Attention: the sorting matrix, and attention against dense oracles."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

import implementations
from implementations.sinkhorn_transformer import attention, causal_sinkhorn, sinkhorn


def masked_dense(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor) -> Tensor:
    scores = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).masked_fill(~allowed, -math.inf)
    return scores.softmax(dim=-1) @ v


def permutation_matrix(perm: list[int]) -> Tensor:
    """``S[i, perm[i]] = 1``: query block i is sorted next to key block perm[i]."""
    return torch.eye(len(perm))[perm]


def test_sinkhorn_is_doubly_stochastic() -> None:
    torch.manual_seed(0)
    s = sinkhorn(torch.randn(4, 3, 6, 6) / 0.75, iters=50)
    assert (s >= 0).all()
    torch.testing.assert_close(s.sum(dim=-1), torch.ones(4, 3, 6), atol=1e-4, rtol=0)
    torch.testing.assert_close(s.sum(dim=-2), torch.ones(4, 3, 6), atol=1e-4, rtol=0)


def test_module_sorting_matrix_is_doubly_stochastic() -> None:
    torch.manual_seed(1)
    layer = implementations.build(
        "sinkhorn-transformer", dim=16, heads=2, block_size=4, sinkhorn_iters=40
    )
    x = torch.randn(2, 24, 16)
    mask = torch.ones(2, 24, dtype=torch.bool)
    s = layer.sorting_matrix(layer.block_summaries(x, mask, 4))  # [b, h, 6, 6]
    assert s.shape == (2, 2, 6, 6)
    torch.testing.assert_close(s.sum(dim=-1), torch.ones(2, 2, 6), atol=1e-3, rtol=0)
    torch.testing.assert_close(s.sum(dim=-2), torch.ones(2, 2, 6), atol=1e-3, rtol=0)


def prefix_sinkhorn_oracle(log_alpha: Tensor, iters: int, row: int) -> Tensor:
    """Row ``row`` of masked Sinkhorn on blocks 1..row x 0..row-1 (columns, then rows)."""
    sub = log_alpha[..., 1 : row + 1, :row]
    allowed = torch.ones(row, row, dtype=torch.bool).tril()
    x = sub.masked_fill(~allowed, -math.inf)
    for _ in range(iters):
        x = x - x.logsumexp(dim=-2, keepdim=True)
        x = x - x.logsumexp(dim=-1, keepdim=True)
    return x.exp()[..., -1, :]


def test_causal_sinkhorn_rows_are_prefix_balancings() -> None:
    torch.manual_seed(2)
    log_alpha = torch.randn(3, 7, 7)
    s = causal_sinkhorn(log_alpha, iters=6)
    assert (s.triu() == 0).all()  # only strictly earlier blocks
    torch.testing.assert_close(s[:, 1:].sum(-1), torch.ones(3, 6), atol=1e-5, rtol=0)
    for row in range(1, 7):
        expected = prefix_sinkhorn_oracle(log_alpha, 6, row)
        torch.testing.assert_close(s[:, row, :row], expected, atol=1e-5, rtol=1e-4)


def test_causal_sinkhorn_ignores_later_rows() -> None:
    torch.manual_seed(3)
    log_alpha = torch.randn(2, 6, 6)
    s = causal_sinkhorn(log_alpha, iters=5)
    changed = log_alpha.clone()
    changed[:, 4:] = torch.randn(2, 2, 6) * 3
    torch.testing.assert_close(causal_sinkhorn(changed, iters=5)[:, :4], s[:, :4])


@pytest.mark.parametrize("causal", [False, True])
def test_single_block_equals_dense(causal: bool) -> None:
    torch.manual_seed(4)
    q, k, v = torch.randn(3, 2, 3, 16, 8).unbind(0)
    # One block: the (only) sort is the identity, or nothing at all when causal.
    sort = torch.zeros(2, 3, 1, 1) if causal else torch.ones(2, 3, 1, 1)
    allowed = torch.ones(16, 16, dtype=torch.bool)
    if causal:
        allowed = allowed.tril()
    out = attention(q, k, v, sort, block_size=16, causal=causal)
    torch.testing.assert_close(out, masked_dense(q, k, v, allowed), atol=1e-5, rtol=1e-4)


def block_mask(pairs: dict[int, list[int]], blocks: int, size: int) -> Tensor:
    """Token mask ``[n, n]``: query block i sees the key blocks ``pairs[i]``."""
    allowed = torch.zeros(blocks, blocks, dtype=torch.bool)
    for i, js in pairs.items():
        allowed[i, js] = True
    return allowed.repeat_interleave(size, 0).repeat_interleave(size, 1)


def test_hard_sort_attends_own_and_sorted_block() -> None:
    """With a permutation, block i attends exactly to key blocks {perm[i], i}."""
    torch.manual_seed(5)
    perm = [2, 0, 3, 1]
    q, k, v = torch.randn(3, 1, 2, 16, 8).unbind(0)
    sort = permutation_matrix(perm).expand(1, 2, 4, 4)
    out = attention(q, k, v, sort, block_size=4)
    allowed = block_mask({i: [p, i] for i, p in enumerate(perm)}, blocks=4, size=4)
    torch.testing.assert_close(out, masked_dense(q, k, v, allowed), atol=1e-5, rtol=1e-4)


def test_causal_hard_sort_attends_past_block_and_causal_local() -> None:
    torch.manual_seed(6)
    perm = [0, 0, 0, 1]  # blocks 1, 2 -> block 0; block 3 -> block 1; block 0: none
    sort = permutation_matrix(perm)
    sort[0] = 0
    q, k, v = torch.randn(3, 1, 2, 16, 8).unbind(0)
    out = attention(q, k, v, sort.expand(1, 2, 4, 4), block_size=4, causal=True)
    allowed = block_mask({1: [0], 2: [0], 3: [1]}, blocks=4, size=4)
    allowed = allowed | (
        block_mask({i: [i] for i in range(4)}, 4, 4) & torch.ones(16, 16).tril().bool()
    )
    torch.testing.assert_close(out, masked_dense(q, k, v, allowed), atol=1e-5, rtol=1e-4)


def test_sortcut_attends_first_sorted_blocks_only() -> None:
    torch.manual_seed(7)
    perm = [3, 1, 0, 2]
    q, k, v = torch.randn(3, 1, 2, 16, 8).unbind(0)
    sort = permutation_matrix(perm).expand(1, 2, 4, 4)
    out = attention(q, k, v, sort, block_size=4, sortcut_blocks=2)
    # Every query sees the key blocks sorted to positions 0 and 1: blocks 3 and 1.
    allowed = block_mask({i: [3, 1] for i in range(4)}, blocks=4, size=4)
    torch.testing.assert_close(out, masked_dense(q, k, v, allowed), atol=1e-5, rtol=1e-4)


def test_padded_keys_are_weighted_by_their_real_share() -> None:
    """Sorted keys mix blocks; a padded token counts with its share of real tokens."""
    torch.manual_seed(8)
    q, k, v = torch.randn(3, 1, 1, 8, 4).unbind(0)
    mask = torch.tensor([[True] * 6 + [False] * 2])
    sort = torch.tensor([[0.5, 0.5], [0.5, 0.5]]).expand(1, 1, 2, 2)
    out = attention(q, k, v, sort, block_size=4, mask=mask)
    k_blocks, v_blocks = (t.masked_fill(~mask[..., None], 0).view(1, 1, 2, 4, 4) for t in (k, v))
    mixed_k, mixed_v = k_blocks.mean(2), v_blocks.mean(2)  # the same sorted block for both
    share = torch.tensor([1.0, 1.0, 0.5, 0.5])  # slots 2, 3 are padding in block 1
    for i in range(2):
        keys = torch.cat([mixed_k[0, 0], k[0, 0, 4 * i : 4 * i + 4]])
        values = torch.cat([mixed_v[0, 0], v[0, 0, 4 * i : 4 * i + 4]])
        scores = q[0, 0, 4 * i : 4 * i + 4] @ keys.T / 2.0
        weights = torch.cat([share, mask[0, 4 * i : 4 * i + 4].float()])
        probs = scores.exp() * weights
        expected = (probs / probs.sum(-1, keepdim=True)) @ values
        torch.testing.assert_close(out[0, 0, 4 * i : 4 * i + 4], expected, atol=1e-5, rtol=1e-4)


def test_invalid_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="sortcut_blocks"):
        implementations.build("sinkhorn-transformer", dim=8, heads=1, causal=True, sortcut_blocks=2)
    layer = implementations.build(
        "sinkhorn-transformer", dim=8, heads=1, block_size=2, max_blocks=3
    )
    with pytest.raises(ValueError, match="max_blocks"):
        layer(torch.randn(1, 7, 8))


@pytest.mark.parametrize("n_blocks", [1, 2, 7, 20])
@pytest.mark.parametrize("rows_per_step", [1, 3, 16])
def test_chunked_causal_sinkhorn_matches_vectorised_reference(
    n_blocks: int, rows_per_step: int
) -> None:
    from implementations.sinkhorn_transformer import reference_causal_sinkhorn

    torch.manual_seed(0)
    log_alpha = torch.randn(2, 3, n_blocks, n_blocks, requires_grad=True)
    out = causal_sinkhorn(log_alpha, iters=5, rows_per_step=rows_per_step)
    expected = reference_causal_sinkhorn(log_alpha, iters=5)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
    if n_blocks > 1:
        (grad,) = torch.autograd.grad(out.sin().sum(), log_alpha)
        (expected_grad,) = torch.autograd.grad(expected.sin().sum(), log_alpha)
        torch.testing.assert_close(grad, expected_grad, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("sortcut", [None, 2])
def test_fused_attention_matches_reference(causal: bool, padded: bool, sortcut: int | None) -> None:
    from implementations.sinkhorn_transformer import reference_attention

    if causal and sortcut is not None:
        pytest.skip("SortCut is encoder-only")
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 24, 8).unbind(0)
    mask = None
    if padded:
        mask = torch.ones(2, 24, dtype=torch.bool)
        mask[0, 17:] = False
        mask[1, :9] = False  # a whole padded block (and a query block with no real key)
    balance = causal_sinkhorn if causal else sinkhorn
    sort = balance(torch.randn(2, 4, 4, 4), iters=5)
    out = attention(q, k, v, sort, 6, causal, mask, sortcut)
    expected = reference_attention(q, k, v, sort, 6, causal, mask, sortcut)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
