"""Scaling Transformers' sparse FFN: one unit per block, chosen by the low-rank controller."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import implementations

DIM, D_FF, BLOCK = 16, 64, 8


def build(**options):
    torch.manual_seed(0)
    options = {"d_ff": D_FF, "block_size": BLOCK, "d_lowrank": 4, **options}
    return implementations.build("scaling-transformers", dim=DIM, heads=2, **options)


def dense_ffn(layer, x: torch.Tensor, unit_mask: torch.Tensor | None = None) -> torch.Tensor:
    """max(0, x W1 + b1) [* mask] W2 + b2, computing every unit."""
    h = F.relu(x @ layer.w_in.T + layer.b_in)  # [..., d_ff]
    if unit_mask is not None:
        h = h * unit_mask.flatten(-2)
    return h @ layer.w_out + layer.b_out


def test_inference_equals_the_dense_ffn_restricted_to_the_chosen_units() -> None:
    layer = build().eval()
    x = torch.randn(2, 9, DIM)
    choice = layer.controller_logits(x).argmax(-1)  # [b, n, d_ff / N]
    restricted = dense_ffn(layer, x, F.one_hot(choice, BLOCK).float())
    torch.testing.assert_close(layer(x)[0], restricted, atol=1e-5, rtol=1e-5)


def test_exactly_one_unit_per_block_is_active() -> None:
    layer = build()
    x = torch.randn(2, 9, DIM)
    for mode in (layer.train(), layer.eval()):
        mask = mode.unit_mask(x).detach()  # [b, n, d_ff / N, N]
        assert mask.shape == (2, 9, D_FF // BLOCK, BLOCK)
        assert torch.equal((mask != 0).sum(-1), torch.ones(2, 9, D_FF // BLOCK, dtype=torch.long))
        assert torch.equal(mask.sum(-1), torch.ones(2, 9, D_FF // BLOCK))


def test_inference_reads_only_the_chosen_units() -> None:
    """The gradient of a single token's output touches d_ff / N rows of W1 and W2."""
    layer = build().eval()
    x = torch.randn(1, 1, DIM)
    layer(x)[0].sum().backward()
    chosen = layer.controller_logits(x).argmax(-1)[0, 0] + torch.arange(D_FF // BLOCK) * BLOCK
    for weight in (layer.w_in, layer.w_out):
        touched = weight.grad.abs().sum(-1).nonzero().flatten()
        assert set(touched.tolist()) <= set(chosen.tolist())


def test_training_is_the_dense_ffn_masked_by_a_straight_through_sample() -> None:
    layer = build().train()
    x = torch.randn(2, 9, DIM)
    torch.manual_seed(4)
    y, _ = layer(x)
    torch.manual_seed(4)
    mask = layer.unit_mask(x)  # the same Gumbel noise
    torch.testing.assert_close(y, dense_ffn(layer, x, mask), atol=1e-5, rtol=1e-5)
    y.sum().backward()  # the straight-through estimator reaches the controller
    for p in (layer.controller_down.weight, layer.controller_up.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_zero_temperature_training_picks_the_inference_units() -> None:
    layer = build(temperature=0.0)
    x = torch.randn(2, 9, DIM)
    torch.testing.assert_close(layer.train()(x)[0], layer.eval()(x)[0], atol=1e-5, rtol=1e-5)


def test_block_size_one_is_the_dense_ffn() -> None:
    layer = build(block_size=1).eval()
    x = torch.randn(2, 9, DIM)
    torch.testing.assert_close(layer(x)[0], dense_ffn(layer, x), atol=1e-5, rtol=1e-5)


def test_training_samples_units_from_softmax_of_logits_over_temperature() -> None:
    """Gumbel-max: argmax(log p + tau G) ~ softmax(c / tau) per block."""
    layer = build(temperature=0.5).train()
    with torch.no_grad():  # spread the controller's logits so every unit has some mass
        layer.controller_up.weight.mul_(0.3)
    x = torch.randn(1, 1, DIM).expand(1, 20000, DIM)
    torch.manual_seed(6)
    frequency = layer.unit_mask(x).detach()[0].mean(0)  # [d_ff / N, N]
    expected = (layer.controller_logits(x[:, :1])[0, 0] / 0.5).softmax(-1)
    torch.testing.assert_close(frequency, expected, atol=0.015, rtol=0)
