"""Axial attention against dense attention under row / column masks, and the layer's wiring."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import implementations
from implementations import dense
from implementations.axial_transformer import attention

B, H, D = 2, 3, 8


def qkv(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, B, H, n, D).unbind(0)
    mask = torch.ones(B, n, dtype=torch.bool)
    mask[0, n - 4 :] = False
    mask[1, 5] = False
    return q, k, v, mask


def axis_mask(n: int, width: int, axis: str, causal: bool) -> torch.Tensor:
    """allowed[i, j]: same row (or column) of the row-major grid (test oracle)."""
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    same = (i // width == j // width) if axis == "row" else (i % width == j % width)
    return same & (j <= i) if causal else same


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("axis", ["row", "column"])
@pytest.mark.parametrize(("n", "width"), [(24, 6), (23, 5), (7, 3)])
def test_axis_matches_dense_with_mask(causal: bool, axis: str, n: int, width: int) -> None:
    q, k, v, mask = qkv(n)
    out = attention(q, k, v, mask, causal, width=width, axis=axis)
    allowed = axis_mask(n, width, axis, causal) & mask[:, None, None, :]
    torch.testing.assert_close(out, dense.attention(q, k, v, mask=allowed), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_single_row_or_column_is_dense(causal: bool) -> None:
    q, k, v, mask = qkv(11)
    expected = dense.attention(q, k, v, mask=mask, causal=causal)
    row = attention(q, k, v, mask, causal, width=11, axis="row")
    column = attention(q, k, v, mask, causal, width=1, axis="column")
    torch.testing.assert_close(row, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(column, expected, atol=1e-5, rtol=1e-4)


def dense_axial(
    layer: torch.nn.Module,
    x: torch.Tensor,
    n: int,
    width: int,
    causal: bool,
    keys: torch.Tensor | None = None,
) -> torch.Tensor:
    """One axial sub-layer computed with dense attention and an explicit mask (oracle)."""
    q, k, v = layer.proj.qkv(x)
    allowed = axis_mask(n, width, layer.axis, causal)[None, None]  # [1, 1, n, n]
    if keys is not None:
        allowed = allowed & keys[None, None, None, :]
    return layer.proj.out(dense.attention(q, k, v, mask=allowed))


@pytest.mark.parametrize("causal", [False, True])
def test_layer_matches_the_papers_composition(causal: bool) -> None:
    n, width, dim = 22, 5, 12
    torch.manual_seed(0)
    layer = implementations.build("axial-transformer", dim=dim, heads=3, causal=causal, width=width)
    x = torch.randn(B, n, dim)
    with torch.no_grad():
        y = layer(x)
        if causal:
            shifted = F.pad(x, (0, 0, width, 0))[:, :n]
            # Row 0 of the shifted input is padding: it is never a key, so it has no context.
            above = torch.arange(n) >= width
            context = dense_axial(layer.context_row, shifted, n, width, False, above)
            context = dense_axial(layer.context_column, context, n, width, True, above)
            expected = dense_axial(layer.row, x + context, n, width, True)
        else:
            expected = dense_axial(
                layer.column, dense_axial(layer.row, x, n, width, False), n, width, False
            )
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_one_layer_reaches_every_allowed_position(causal: bool) -> None:
    """Row then column attention connects all pairs (all past pairs when causal)."""
    n, dim = 20, 8
    torch.manual_seed(0)
    layer = implementations.build("axial-transformer", dim=dim, heads=2, causal=causal, width=4)
    x = torch.randn(1, n, dim, requires_grad=True)
    target = n - 1 if causal else 0
    layer(x)[0, target].sum().backward()
    reached = x.grad[0].abs().sum(-1) > 0
    assert reached.all(), f"position {target} does not see {(~reached).nonzero().flatten()}"
