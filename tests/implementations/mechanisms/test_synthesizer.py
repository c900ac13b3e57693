"""Synthesizer (Tay et al., 2021): synthesised weights against explicit formulas."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import implementations
from implementations._helpers import merge_heads, split_heads
from implementations.synthesizer import attention

B, H, N, DIM, L = 2, 4, 11, 32, 16


def build(variant: str, causal: bool = False, **options: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return implementations.build(
        "synthesizer", dim=DIM, heads=H, causal=causal, variant=variant, max_seq_len=L, **options
    )


def inputs() -> tuple[Tensor, Tensor]:
    torch.manual_seed(1)
    return torch.randn(B, N, DIM), torch.randn(B, N, DIM)


@pytest.mark.parametrize("variant", ["random", "factorized-random"])
def test_random_weights_do_not_depend_on_the_input(variant: str) -> None:
    layer = build(variant, causal=True)
    x, other = inputs()
    weights = layer.attention_weights(x)
    torch.testing.assert_close(layer.attention_weights(other), weights, atol=0, rtol=0)
    shorter = layer.attention_weights(x[:, :5])
    torch.testing.assert_close(layer.attention_weights(other[:, :5]), shorter)
    # ... while the dense synthesizer's do.
    dense = build("dense")
    assert not torch.allclose(dense.attention_weights(x), dense.attention_weights(other))


def test_random_is_the_softmax_of_the_learned_matrix() -> None:
    layer = build("random", causal=True)
    x, _ = inputs()
    r = layer.random[0][:, :N, :N]  # [h, n, n]
    logits = r.masked_fill(~torch.ones(N, N, dtype=torch.bool).tril(), float("-inf"))
    expected = torch.softmax(logits, dim=-1)[None]
    torch.testing.assert_close(layer.attention_weights(x), expected)


def test_factorized_random_is_low_rank() -> None:
    layer = build("factorized-random", rank=3)
    r1, r2 = layer.random
    assert tuple(r1.shape) == (H, L, 3)
    expected = torch.softmax(r1[:, :N] @ r2[:, :N].transpose(-1, -2), dim=-1)[None]
    torch.testing.assert_close(layer.attention_weights(inputs()[0]), expected)


def test_dense_logits_are_a_per_token_two_layer_network() -> None:
    layer = build("dense")
    x, _ = inputs()
    hidden = split_heads(torch.relu(x @ layer.to_hidden.weight.T + layer.to_hidden.bias), H)
    w2, b2 = layer.w2[0], layer.b2[0]  # [h, d_head, l], [h, l]
    expected = (hidden @ w2 + b2[:, None, :])[..., :N]  # [b, h, n, n]
    torch.testing.assert_close(layer.logits(x), expected, atol=1e-5, rtol=1e-4)
    # Row i depends on token i alone: changing the other tokens leaves it unchanged.
    changed = x.clone()
    changed[:, 1:] = torch.randn(B, N - 1, DIM)
    torch.testing.assert_close(layer.logits(changed)[:, :, 0], layer.logits(x)[:, :, 0])


def test_factorized_dense_tiles_two_small_predictions() -> None:
    layer = build("factorized-dense", dense_factors=(4, 4))
    x, _ = inputs()
    hidden = split_heads(torch.relu(layer.to_hidden(x)), H)  # [b, h, n, d_head]
    f_a = hidden @ layer.w2[0] + layer.b2[0][:, None, :]  # [b, h, n, a]
    f_b = hidden @ layer.w2[1] + layer.b2[1][:, None, :]  # [b, h, n, b]
    j = torch.arange(N)
    expected = f_a[..., j % 4] * f_b[..., j // 4]  # C_j = A_{j mod a} B_{j // a}
    torch.testing.assert_close(layer.logits(x), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("variant", ["dense", "random", "factorized-dense", "factorized-random"])
def test_causal_and_padding_masks_remove_keys(variant: str) -> None:
    layer = build(variant, causal=True)
    x, _ = inputs()
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 7:] = False
    mask[1, 2:4] = False
    weights = layer.attention_weights(x, mask)  # [b, h, n, n]
    future = ~torch.ones(N, N, dtype=torch.bool).tril()
    assert (weights[..., future] == 0).all()
    padded_keys = ~mask[:, None, None, :].expand_as(weights)
    assert (weights[padded_keys] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, N))
    y = layer(x, mask)
    assert y.shape == (B, N, DIM)
    y.sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None, name


def _readable_forward(layer: torch.nn.Module, x: Tensor, mask: Tensor | None) -> Tensor:
    """softmax(B) G(X) with the logits B materialised: the module's readable form."""
    v = split_heads(layer.to_v(x), H)
    o = attention(layer.logits(x), v, mask=mask, causal=layer.causal)
    return layer.to_out(merge_heads(o))


@pytest.mark.parametrize("variant", ["dense", "factorized-random"])
@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
def test_fused_forward_equals_the_materialised_logits(
    variant: str, causal: bool, padded: bool
) -> None:
    layer = build(variant, causal=causal).double()
    x = inputs()[0].double().requires_grad_()
    mask = None
    if padded:
        mask = torch.ones(B, N, dtype=torch.bool)
        mask[0, 7:] = False
        mask[1, :3] = False  # causal: the first queries of row 1 see no key at all
    factors = layer.score_factors(x)
    assert factors is not None
    torch.testing.assert_close(factors[0] @ factors[1].transpose(-1, -2), layer.logits(x))
    fused, readable = layer(x, mask), _readable_forward(layer, x, mask)
    # The readable softmax runs in float32 (masked_softmax), hence float32 tolerances.
    torch.testing.assert_close(fused, readable, atol=1e-6, rtol=1e-5)
    grads = [
        torch.autograd.grad(y.square().sum(), [x, *layer.parameters()], allow_unused=True)
        for y in (layer(x, mask), _readable_forward(layer, x, mask))
    ]
    for got, want in zip(*grads, strict=True):
        assert (got is None) == (want is None)
        if got is not None:
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_random_and_factorized_dense_have_no_score_factors() -> None:
    x = inputs()[0]
    assert build("random").score_factors(x) is None
    assert build("factorized-dense").score_factors(x) is None


def test_fixed_random_is_not_trained() -> None:
    layer = build("random", fixed=True)
    frozen = [name for name, p in layer.named_parameters() if not p.requires_grad]
    assert frozen == ["random.0"]
    with pytest.raises(ValueError, match="fixed"):
        build("dense", fixed=True)


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="variant"):
        build("mixture")
    with pytest.raises(ValueError, match="dense_factors"):
        build("factorized-dense", dense_factors=(3, 4))
    layer = build("dense")
    with pytest.raises(ValueError, match="max_seq_len"):
        layer(torch.randn(1, L + 1, DIM))
