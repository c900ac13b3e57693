"""Sparse Transformer patterns against dense attention under the equivalent explicit mask."""

from __future__ import annotations

import pytest
import torch

import implementations
from implementations import dense
from implementations.sparse_transformer import attention

B, H, D = 2, 4, 8


def qkv(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, B, H, n, D).unbind(0)
    mask = torch.ones(B, n, dtype=torch.bool)
    mask[0, n - 6 :] = False
    mask[1, :2] = False
    mask[1, n // 2] = False
    return q, k, v, mask


def patterns(
    n: int, pattern: str, stride: int, summary: int, causal: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's A(1) and A(2) as dense [n, n] masks (test oracle only)."""
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    if pattern == "strided":
        first = (i - j).abs() < stride
        second = (i - j) % stride == 0
    else:
        first = i // stride == j // stride
        second = j % stride >= stride - summary
    if causal:
        first, second = first & (j <= i), second & (j <= i)
    return first.expand(n, n), second.expand(n, n)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("pattern", ["strided", "fixed"])
@pytest.mark.parametrize("n", [40, 37, 5])
def test_merged_equals_dense_over_the_union(causal: bool, pattern: str, n: int) -> None:
    q, k, v, mask = qkv(n)
    out = attention(q, k, v, mask, causal, pattern=pattern, stride=8, summary=3)
    first, second = patterns(n, pattern, 8, 3, causal)
    allowed = (first | second) & mask[:, None, None, :]
    torch.testing.assert_close(out, dense.attention(q, k, v, mask=allowed), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("pattern", ["strided", "fixed"])
def test_heads_split_the_patterns(causal: bool, pattern: str) -> None:
    n = 37
    q, k, v, mask = qkv(n)
    out = attention(
        q, k, v, mask, causal, pattern=pattern, stride=6, summary=2, integration="heads"
    )
    first, second = patterns(n, pattern, 6, 2, causal)
    per_head = torch.stack([first, first, second, second])[None]  # [1, h, n, n]
    allowed = per_head & mask[:, None, None, :]
    torch.testing.assert_close(out, dense.attention(q, k, v, mask=allowed), atol=1e-5, rtol=1e-4)


def test_stride_one_and_full_summary_are_dense() -> None:
    """Every key is some A(2) member: stride 1 (strided) or c = l (fixed)."""
    q, k, v, mask = qkv(13)
    expected = dense.attention(q, k, v, mask=mask, causal=True)
    strided = attention(q, k, v, mask, True, pattern="strided", stride=1)
    fixed = attention(q, k, v, mask, True, pattern="fixed", stride=4, summary=4)
    torch.testing.assert_close(strided, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fixed, expected, atol=1e-5, rtol=1e-4)


def test_bad_options() -> None:
    build = implementations.build
    with pytest.raises(ValueError, match="pattern"):
        build("sparse-transformer", dim=16, heads=2, pattern="dilated")
    with pytest.raises(ValueError, match="summary"):
        build("sparse-transformer", dim=16, heads=2, pattern="fixed", stride=4, summary=5)
    with pytest.raises(ValueError, match="heads"):
        build("sparse-transformer", dim=16, heads=1, integration="heads")
