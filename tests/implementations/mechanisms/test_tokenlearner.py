"""TokenLearner (Ryoo et al., 2021): learned spatial maps and weighted pooling vs oracles."""

from __future__ import annotations

import pytest
import torch

import implementations

B, DIM, N = 2, 16, 13


def build(**options: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return implementations.build("tokenlearner", dim=DIM, heads=4, **options)


def padding() -> torch.Tensor:
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 9:] = False
    mask[1, :2] = False
    return mask


@pytest.mark.parametrize("n", [1, 7, 50])
def test_output_length_is_num_tokens(n: int) -> None:
    layer = build(num_tokens=5)
    y = layer(torch.randn(B, n, DIM))
    assert y.shape == (B, 5, DIM) and layer.output_length(n) == 5


def test_sigmoid_maps_average_pool_the_real_positions() -> None:
    """z_i = (1 / n_real) sum_p sigmoid(alpha_i(x))_p x_p over the real positions p."""
    layer = build()
    x, mask = torch.randn(B, N, DIM), padding()
    y = layer(x, mask)
    logits = layer.maps(layer.norm(x))  # [b, n, S]
    for b in range(B):
        real = x[b, mask[b]]  # [n_real, dim]
        weights = torch.sigmoid(logits[b, mask[b]])  # [n_real, S]
        expected = (weights[:, :, None] * real[:, None, :]).mean(0)  # [S, dim]
        torch.testing.assert_close(y[b], expected, atol=1e-5, rtol=1e-4)


def test_softmax_maps_sum_to_one_over_real_positions() -> None:
    layer = build(normalization="softmax")
    x, mask = torch.randn(B, N, DIM), padding()
    weights = layer.attention_maps(x, mask)  # [b, S, n]
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, 8))
    logits = layer.maps(layer.norm(x))
    for b in range(B):
        expected = torch.softmax(logits[b, mask[b]].T, dim=-1)  # [S, n_real]
        torch.testing.assert_close(weights[b][:, mask[b]], expected, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(layer(x, mask)[b], expected @ x[b, mask[b]])


@pytest.mark.parametrize("normalization", ["sigmoid", "softmax"])
def test_padded_positions_have_zero_weight(normalization: str) -> None:
    layer = build(normalization=normalization)
    x, mask = torch.randn(B, N, DIM), padding()
    weights = layer.attention_maps(x, mask)
    assert (weights.transpose(1, 2)[~mask] == 0).all()
    assert (weights.transpose(1, 2)[mask] > 0).all()
    x_changed = torch.where(mask[..., None], x, torch.full_like(x, torch.inf))
    torch.testing.assert_close(layer(x_changed, mask), layer(x, mask))
    assert layer.output_mask(mask).shape == (B, 8) and layer.output_mask(mask).all()


def test_bad_normalization_is_named() -> None:
    with pytest.raises(ValueError, match="normalization"):
        build(normalization="relu")
