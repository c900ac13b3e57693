"""The shared helpers' fast paths against their readable forms."""

from __future__ import annotations

import pytest
import torch

from implementations._helpers import (
    gather_positions,
    heads_in_turn,
    masked_softmax,
    reference_softmax_attention,
    softmax_attention,
)


def reference_masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The original three-pass form: fill, softmax, zero the masked entries."""
    filled = scores.float().masked_fill(~mask, torch.finfo(torch.float32).min)
    return filled.softmax(-1).masked_fill(~mask, 0).to(scores.dtype)


def test_masked_softmax_matches_the_three_pass_form() -> None:
    torch.manual_seed(0)
    scores = torch.randn(3, 5, 7, requires_grad=True)
    mask = torch.rand(3, 5, 7) > 0.4
    mask[0, 1] = False  # a fully masked row
    probs = masked_softmax(scores, mask)
    expected = reference_masked_softmax(scores, mask)
    assert torch.equal(probs, expected)
    (grad,) = torch.autograd.grad(probs.pow(2).sum(), scores)
    (expected_grad,) = torch.autograd.grad(expected.pow(2).sum(), scores)
    torch.testing.assert_close(grad, expected_grad)
    assert torch.equal(grad[0, 1], torch.zeros(7))


CASES = {
    # name: (q lead shape, k lead shape, mask shape or None, bias)
    "plain": ((2, 3), (2, 3), None, False),
    "key-padding": ((2, 3), (2, 3), (2, 1, 1, 9), False),
    "blocks-band": ((2, 3, 4), (2, 3, 4), (4, 6, 9), False),
    "blocks-padding": ((2, 3, 4), (2, 3, 4), (2, 1, 4, 1, 9), False),
    "shared-keys": ((2, 3, 4), (2, 3, 1), (2, 1, 4, 6, 9), False),
    "bias": ((2, 3, 4), (2, 3, 4), (2, 3, 4, 6, 9), True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_softmax_attention_matches_reference(case: str) -> None:
    q_lead, k_lead, mask_shape, with_bias = CASES[case]
    torch.manual_seed(0)
    q = torch.randn(*q_lead, 6, 8, requires_grad=True)
    k = torch.randn(*k_lead, 9, 8, requires_grad=True)
    v = torch.randn(*k_lead, 9, 5, requires_grad=True)
    mask = None
    if mask_shape is not None:
        mask = torch.rand(mask_shape) > 0.5
        mask[..., 0, :] = False  # fully masked query rows: zero output
    bias = torch.randn(mask_shape).log_softmax(-1) if with_bias and mask_shape else None
    out = softmax_attention(q, k, v, mask, bias=bias)
    expected = reference_softmax_attention(q, k, v, mask, bias=bias)
    with torch.no_grad():  # no autograd: the fused kernel (a bias needing a gradient is not)
        fused = softmax_attention(q, k, v, mask, bias=bias)
    torch.testing.assert_close(fused, expected.detach(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    grads = torch.autograd.grad(out.pow(2).sum(), (q, k, v))
    expected_grads = torch.autograd.grad(expected.pow(2).sum(), (q, k, v))
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad, atol=1e-5, rtol=1e-4)
    if mask is not None:
        assert torch.equal(out[..., 0, :], torch.zeros_like(out[..., 0, :]))


def test_gather_positions_matches_elementwise_gather() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 1, 7, 4)  # broadcast over 5 rounds
    index = torch.rand(2, 3, 5, 7).argsort(-1)
    expected = x.expand(2, 3, 5, 7, 4).gather(-2, index[..., None].expand(2, 3, 5, 7, 4))
    assert torch.equal(gather_positions(x, index), expected)


def test_gather_positions_backward_stays_in_the_inputs_shape() -> None:
    """Rows picked from a tensor broadcast over 64 clusters: the gradient is the same as
    through an expanded copy, and the backward never allocates that expanded shape."""
    from tools.measure.counters import LiveTensorBytes

    torch.manual_seed(0)
    x = torch.randn(1, 2, 1, 512, 16, requires_grad=True)  # [b, h, 1, n, d]
    index = torch.randint(0, 512, (1, 2, 64, 8))  # [b, h, clusters, picked]
    grad = torch.randn(1, 2, 64, 8, 16)
    expanded = x.expand(1, 2, 64, 512, 16)
    reference = expanded.gather(-2, index[..., None].expand(-1, -1, -1, -1, 16))
    (expected,) = torch.autograd.grad(reference, x, grad)
    picked = gather_positions(x, index)
    with LiveTensorBytes() as live:
        (got,) = torch.autograd.grad(picked, x, grad)
    torch.testing.assert_close(got, expected)
    assert live.peak < expanded.numel() * 4 // 8, live.peak  # x's shape, not 64 copies


@pytest.mark.parametrize("causal", [False, True])
def test_heads_in_turn_is_the_vectorised_computation(causal: bool) -> None:
    from implementations.performer import attention, gaussian_orthogonal_random_matrix

    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 20, 8).unbind(0)
    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[1, 15:] = False
    w = gaussian_orthogonal_random_matrix(16, 8)
    vectorised = attention(q, k, v, w, mask=mask, causal=causal)  # autograd on: all heads
    assert heads_in_turn(attention, {"q": (q, 1), "k": (k, 1), "v": (v, 1)}, projection=w) is None
    with torch.no_grad():
        by_head = attention(q, k, v, w, mask=mask, causal=causal)
    torch.testing.assert_close(by_head, vectorised, atol=1e-6, rtol=1e-5)
