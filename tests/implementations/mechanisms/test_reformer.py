"""Reformer (LSH attention) against exact shared-QK softmax attention oracles."""

from __future__ import annotations

import importlib
import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import implementations
from implementations._helpers import merge_heads, split_heads
from implementations.reformer import attention, hash_buckets


def shared_qk_oracle(qk: Tensor, v: Tensor, allowed: Tensor) -> tuple[Tensor, Tensor]:
    """Dense attention with keys = normalised queries over an explicit mask ``[.., n, n]``.

    ``allowed`` must already exclude self; self is added for queries with no target.
    Returns the output and the log-normaliser of every query.
    """
    n = qk.shape[-2]
    eye = torch.eye(n, dtype=torch.bool)
    scores = qk @ F.normalize(qk, dim=-1).transpose(-1, -2) / math.sqrt(qk.shape[-1])
    allowed = allowed | (eye & ~allowed.any(dim=-1, keepdim=True))
    scores = scores.masked_fill(~allowed, -math.inf)
    return scores.softmax(dim=-1) @ v, scores.logsumexp(dim=-1)


def dense_self_masked(qk: Tensor, v: Tensor, causal: bool, mask: Tensor | None = None) -> Tensor:
    """The single-bucket limit: every other (earlier, real) token is a target."""
    n = qk.shape[-2]
    allowed = ~torch.eye(n, dtype=torch.bool)
    if causal:
        allowed = allowed & torch.ones(n, n, dtype=torch.bool).tril()
    if mask is not None:
        allowed = allowed & mask[:, None, None, :]
    return shared_qk_oracle(qk, v, allowed)[0]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n", [1, 2, 23])
def test_single_bucket_equals_dense_shared_qk(causal: bool, n: int) -> None:
    torch.manual_seed(0)
    qk, v = torch.randn(2, 3, n, 8), torch.randn(2, 3, n, 8)
    out = attention(qk, v, n_buckets=1, bucket_size=32, n_hashes=3, causal=causal)
    torch.testing.assert_close(out, dense_self_masked(qk, v, causal), atol=1e-5, rtol=1e-4)


def test_single_bucket_with_padding_equals_dense() -> None:
    torch.manual_seed(1)
    qk, v = torch.randn(2, 2, 20, 8), torch.randn(2, 2, 20, 8)
    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[0, 15:] = False
    mask[1, 3:6] = False
    out = attention(qk, v, n_buckets=1, bucket_size=32, n_hashes=2, mask=mask)
    expected = dense_self_masked(qk, v, causal=False, mask=mask)
    real = mask[:, None, :, None].expand_as(out)
    torch.testing.assert_close(out[real], expected[real], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_module_single_bucket_equals_dense(causal: bool) -> None:
    torch.manual_seed(2)
    layer = implementations.build(
        "reformer", dim=16, heads=2, causal=causal, bucket_size=32, n_hashes=2, n_buckets=1
    )
    x = torch.randn(2, 19, 16)
    qk = split_heads(layer.to_qk(x), 2)
    v = split_heads(layer.to_v(x), 2)
    expected = layer.to_out(merge_heads(dense_self_masked(qk, v, causal)))
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-4)


def lsh_oracle(qk: Tensor, v: Tensor, rotations: Tensor, m: int, causal: bool) -> Tensor:
    """The paper's sets P_i^(r), built as dense n x n masks, combined by logsumexp weights."""
    n = qk.shape[-2]
    buckets = hash_buckets(qk, rotations)  # [b, h, r, n]
    rounds = buckets.shape[2]
    pos = torch.arange(n)
    masks = []
    for r in range(rounds):
        order = (buckets[:, :, r] * n + pos).argsort(-1)  # [b, h, n]
        sorted_idx = order.argsort(-1)  # s_i of every position
        s_i, s_j = sorted_idx[..., :, None], sorted_idx[..., None, :]
        same = buckets[:, :, r, :, None] == buckets[:, :, r, None, :]
        if causal:
            near = (pos[None, :] <= pos[:, None]) & (s_i - s_j <= m)
        else:
            near = (s_j // m == s_i // m) | (s_j // m == s_i // m - 1)
        masks.append(same & near & ~torch.eye(n, dtype=torch.bool))
    lonely = ~torch.stack([mk.any(-1) for mk in masks]).any(0)  # no target in any round
    outs, lses = [], []
    for mk in masks:
        mk = mk | (torch.eye(n, dtype=torch.bool) & lonely[..., None])
        has = mk.any(-1)
        scores = qk @ F.normalize(qk, dim=-1).transpose(-1, -2) / math.sqrt(qk.shape[-1])
        scores = scores.masked_fill(~mk, -math.inf)
        outs.append(torch.nan_to_num(scores.softmax(-1)) @ v)
        lses.append(scores.logsumexp(-1).masked_fill(~has, -math.inf))
    weights = torch.stack(lses).softmax(0)  # [r, b, h, n]
    return (weights[..., None] * torch.stack(outs)).sum(0)


@pytest.mark.parametrize("causal", [False, True])
def test_chunked_lsh_matches_explicit_sets(causal: bool) -> None:
    torch.manual_seed(3)
    qk, v = torch.randn(2, 2, 40, 8), torch.randn(2, 2, 40, 8)
    rotations = torch.randn(2, 8, 3, 2)  # 3 rounds, 4 buckets
    out = attention(
        qk, v, n_buckets=4, bucket_size=8, n_hashes=3, causal=causal, rotations=rotations
    )
    expected = lsh_oracle(qk, v, rotations, m=8, causal=causal)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


def test_causal_lsh_ignores_the_future() -> None:
    torch.manual_seed(4)
    qk, v = torch.randn(1, 2, 48, 8), torch.randn(1, 2, 48, 8)
    rotations = torch.randn(2, 8, 2, 3)
    out = attention(qk, v, 6, 8, causal=True, rotations=rotations)
    qk2, v2 = qk.clone(), v.clone()
    qk2[:, :, 30:], v2[:, :, 30:] = torch.randn(1, 2, 18, 8), 5.0
    out2 = attention(qk2, v2, 6, 8, causal=True, rotations=rotations)
    torch.testing.assert_close(out2[:, :, :30], out[:, :, :30], atol=1e-6, rtol=0)


def test_angular_hash_is_scale_invariant_and_antipodal() -> None:
    torch.manual_seed(5)
    x = torch.randn(1, 2, 30, 8)
    rotations = torch.randn(2, 8, 2, 4)  # 8 buckets
    buckets = hash_buckets(x, rotations)
    torch.testing.assert_close(hash_buckets(3.0 * x, rotations), buckets)
    # argmax [xR; -xR] of -x is the opposite signed axis: bucket + b/2 (mod b).
    torch.testing.assert_close(hash_buckets(-x, rotations), (buckets + 4) % 8)


def test_default_bucket_count_follows_the_paper() -> None:
    """Chunks of m hold two average buckets: n_buckets = 2n / m (Reformer, Section 2)."""
    layer = implementations.build("reformer", dim=8, heads=1, bucket_size=4)
    assert [layer.buckets_for(n) for n in (1, 4, 9, 12, 16)] == [2, 2, 6, 6, 8]
    for n in (64, 256, 4096):
        m = 64
        paper = implementations.build("reformer", dim=8, heads=1, bucket_size=m)
        assert m == 2 * n // paper.buckets_for(n)  # the paper's m = 2l / n_buckets
    doc = implementations.mechanism("reformer").cls.__module__
    text = importlib.import_module(doc).__doc__ or ""
    assert "m = 2l / n_{buckets}" in text and "$2n / m$" in text


def test_invalid_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_buckets"):
        implementations.build("reformer", dim=8, heads=1, n_buckets=3)
    with pytest.raises(ValueError, match="bucket_size"):
        implementations.build("reformer", dim=8, heads=1, bucket_size=0)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_combined_rounds_match_per_round_reference(causal: bool, padded: bool) -> None:
    from implementations.reformer import reference_attention

    torch.manual_seed(0)
    qk = torch.randn(2, 3, 45, 8, requires_grad=True)
    v = torch.randn(2, 3, 45, 8)
    rotations = torch.randn(3, 8, 3, 2)  # 3 rounds, 4 buckets
    mask = None
    if padded:
        mask = torch.ones(2, 45, dtype=torch.bool)
        mask[0, 30:] = False
        mask[1, :4] = False
    options = {"causal": causal, "mask": mask, "rotations": rotations}
    out = attention(qk, v, 4, 8, **options)
    expected = reference_attention(qk, v, 4, 8, **options)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    (grad,) = torch.autograd.grad(out.sum(), qk)
    (expected_grad,) = torch.autograd.grad(expected.sum(), qk)
    torch.testing.assert_close(grad, expected_grad, atol=1e-5, rtol=1e-4)
