"""Image Transformer local 1D / 2D attention against dense attention with explicit masks."""

from __future__ import annotations

import pytest
import torch

import implementations
from implementations import dense
from implementations.image_transformer import attention, attention_2d

B, H, D = 2, 3, 8


def qkv(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, B, H, n, D).unbind(0)
    mask = torch.ones(B, n, dtype=torch.bool)
    mask[0, n - 5 :] = False
    mask[1, 3:5] = False
    return q, k, v, mask


def oracle_1d(n: int, lq: int, flange: int, causal: bool) -> torch.Tensor:
    """allowed[i, j] for local 1D attention, built densely (test only)."""
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    start = (i // lq) * lq
    after = 0 if causal else flange
    allowed = (j >= start - flange) & (j < start + lq + after)
    return allowed & (j <= i) if causal else allowed


def oracle_2d(
    n: int, size: tuple[int, int], qs: tuple[int, int], fl: tuple[int, int], causal: bool
) -> torch.Tensor:
    """allowed[i, j] for local 2D attention over a block-raster-ordered image."""
    (height, width), (qh, qw), (fh, fw) = size, qs, fl
    p = torch.arange(height * width)
    block, offset = p // (qh * qw), p % (qh * qw)
    row = (block // (width // qw)) * qh + offset // qw
    col = (block % (width // qw)) * qw + offset % qw
    top, left = (row // qh) * qh, (col // qw) * qw  # of each query's block
    below = 0 if causal else fh
    allowed = (
        (row[None, :] >= top[:, None] - fh)
        & (row[None, :] < top[:, None] + qh + below)
        & (col[None, :] >= left[:, None] - fw)
        & (col[None, :] < left[:, None] + qw + fw)
    )
    if causal:
        allowed = allowed & (p[None, :] <= p[:, None])
    return allowed[:n, :n]


@pytest.mark.parametrize("causal", [False, True])
def test_1d_with_wide_flange_is_dense(causal: bool) -> None:
    q, k, v, mask = qkv(23)
    out = attention(q, k, v, mask, causal, query_block=5, memory_flange=23)
    torch.testing.assert_close(
        out, dense.attention(q, k, v, mask=mask, causal=causal), atol=1e-5, rtol=1e-4
    )


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("lq", "flange"), [(4, 4), (5, 3), (6, 0)])
def test_1d_matches_explicit_mask(causal: bool, lq: int, flange: int) -> None:
    n = 23
    q, k, v, mask = qkv(n)
    out = attention(q, k, v, mask, causal, query_block=lq, memory_flange=flange)
    allowed = oracle_1d(n, lq, flange, causal) & mask[:, None, None, :]
    torch.testing.assert_close(out, dense.attention(q, k, v, mask=allowed), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n", [48, 37])  # a full 6x8 image, and a partial one
def test_2d_matches_explicit_mask(causal: bool, n: int) -> None:
    size, qs, fl = (6, 8), (2, 4), (2, 1)
    q, k, v, mask = qkv(n)
    out = attention_2d(q, k, v, mask, causal, image_size=size, query_shape=qs, memory_flange=fl)
    allowed = oracle_2d(n, size, qs, fl, causal) & mask[:, None, None, :]
    torch.testing.assert_close(out, dense.attention(q, k, v, mask=allowed), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_2d_with_wide_flange_is_dense(causal: bool) -> None:
    """A flange of the whole image makes each memory block cover every pixel."""
    q, k, v, mask = qkv(48)
    out = attention_2d(
        q, k, v, mask, causal, image_size=(6, 8), query_shape=(3, 4), memory_flange=(6, 8)
    )
    torch.testing.assert_close(
        out, dense.attention(q, k, v, mask=mask, causal=causal), atol=1e-5, rtol=1e-4
    )


def test_module_2d_rejects_long_sequences_and_bad_options() -> None:
    layer = implementations.build(
        "image-transformer",
        dim=16,
        heads=2,
        attention_type="2d",
        image_size=(4, 4),
        query_shape=(2, 2),
        memory_flange_2d=(1, 1),
    )
    with pytest.raises(ValueError, match="exceeds"):
        layer(torch.randn(1, 17, 16))
    with pytest.raises(ValueError, match="image_size"):
        implementations.build("image-transformer", dim=16, heads=2, attention_type="2d")
    with pytest.raises(ValueError, match="tile"):
        implementations.build(
            "image-transformer",
            dim=16,
            heads=2,
            attention_type="2d",
            image_size=(5, 4),
            query_shape=(2, 2),
        )
    with pytest.raises(ValueError, match="attention_type"):
        implementations.build("image-transformer", dim=16, heads=2, attention_type="3d")
