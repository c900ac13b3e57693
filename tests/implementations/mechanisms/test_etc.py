"""ETC global-local attention (Ainslie et al., 2020) against explicit dense oracles."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

import implementations
from implementations import dense
from implementations._helpers import masked_softmax, merge_heads
from implementations.etc import attention

B, H, N, D = 2, 3, 27, 8


def qkv() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, B, H, N, D).unbind(0)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 20:] = False
    mask[1, 1] = False  # a padded global token
    mask[1, 9:11] = False
    return q, k, v, mask


def real(t: Tensor, mask: Tensor) -> Tensor:
    """The real query rows of a per-head ``[b, h, n, d]`` tensor."""
    return t.transpose(1, 2)[mask]


def oracle(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor,
    g: int,
    radius: int,
    relative: tuple[Tensor, Tensor] | None = None,
    max_distance: int = 0,
) -> Tensor:
    """Full n x n ETC attention: explicit pieces mask and explicit relative labels."""
    n = q.shape[-2]
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    same_part = (i < g) == (j < g)
    allowed = (i < g) | (j < g) | ((i - j).abs() <= radius)  # g2g, g2l, l2g, l2l band
    scores = torch.einsum("bhid,bhjd->bhij", q, k)
    if relative is not None:
        a, beta = relative
        label = torch.where(
            same_part,
            (j - i).clamp(-max_distance, max_distance) + max_distance,
            2 * max_distance + 1,
        )  # [n, n]
        scores = scores + torch.einsum("bhid,ijhd->bhij", q, a[label])
        scores = scores + beta[label].permute(2, 0, 1)  # [h, n, n]
    probs = masked_softmax(scores / math.sqrt(q.shape[-1]), allowed & mask[:, None, None, :])
    return probs @ v


@pytest.mark.parametrize("g", [0, 1, 4])
def test_radius_covering_everything_is_dense(g: int) -> None:
    q, k, v, mask = qkv()
    out = attention(q, k, v, global_tokens=g, local_radius=N, mask=mask)
    expected = dense.attention(q, k, v, mask=mask)
    torch.testing.assert_close(real(out, mask), real(expected, mask), atol=1e-5, rtol=1e-4)


def test_every_token_global_is_dense() -> None:
    q, k, v, mask = qkv()
    out = attention(q, k, v, global_tokens=N, local_radius=1, mask=mask)
    expected = dense.attention(q, k, v, mask=mask)
    torch.testing.assert_close(real(out, mask), real(expected, mask), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(("g", "radius"), [(0, 2), (3, 1), (3, 4), (5, 7)])
@pytest.mark.parametrize("with_relative", [False, True])
def test_matches_full_oracle(g: int, radius: int, with_relative: bool) -> None:
    q, k, v, mask = qkv()
    k_max = 2
    relative = None
    if with_relative:
        relative = (torch.randn(2 * k_max + 2, H, D), torch.randn(2 * k_max + 2, H))
    out = attention(
        q,
        k,
        v,
        global_tokens=g,
        local_radius=radius,
        mask=mask,
        relative=relative,
        max_distance=k_max,
    )
    expected = oracle(q, k, v, mask, g, radius, relative, k_max)
    torch.testing.assert_close(real(out, mask), real(expected, mask), atol=1e-5, rtol=1e-4)


def test_module_uses_separate_output_projections() -> None:
    torch.manual_seed(1)
    dim, g = 24, 3
    layer = implementations.build(
        "etc", dim=dim, heads=H, global_tokens=g, local_radius=2, relative_max_distance=3
    )
    x = torch.randn(B, N, dim)
    _, _, _, mask = qkv()
    q, k, v = layer.proj.qkv(x)
    o = oracle(q, k, v, mask, g, 2, (layer.relative_keys, layer.relative_bias), 3)
    expected = torch.cat(
        [layer.global_out(merge_heads(o[:, :, :g])), layer.proj.out(o[:, :, g:])], dim=1
    )
    torch.testing.assert_close(layer(x, mask)[mask], expected[mask], atol=1e-5, rtol=1e-4)


def test_small_radius_respects_padding() -> None:
    torch.manual_seed(2)
    layer = implementations.build("etc", dim=16, heads=2, global_tokens=2, local_radius=2).eval()
    x = torch.randn(B, N, 16)
    _, _, _, mask = qkv()
    y = layer(x, mask)
    y_changed = layer(torch.where(mask[..., None], x, torch.randn_like(x)), mask)
    torch.testing.assert_close(y_changed[mask], y[mask])


def test_short_input_is_all_global() -> None:
    layer = implementations.build("etc", dim=16, heads=2, global_tokens=8, local_radius=2)
    assert layer(torch.randn(1, 5, 16)).shape == (1, 5, 16)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"global_tokens": -1}, "global_tokens"),
        ({"local_radius": 0}, "local_radius"),
        ({"relative_max_distance": 0}, "relative_max_distance"),
        ({"causal": True}, "causal"),
    ],
)
def test_bad_options_are_rejected(options: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        implementations.build("etc", dim=16, heads=4, **options)
