"""Transformer-XL: relative shift, relative scores, and the segment recurrence."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

import implementations
from implementations.transformer_xl import rel_shift, relative_attention, sinusoid_embedding


@pytest.mark.parametrize(("n_q", "n_k", "causal"), [(4, 4, True), (3, 7, True), (3, 7, False)])
def test_rel_shift_matches_explicit_gather(n_q: int, n_k: int, causal: bool) -> None:
    """out[i, j] = scores[i, n_q - 1 - i + j], wherever the distance i - j is listed."""
    length = n_k if causal else n_k + n_q - 1
    scores = torch.randn(2, 3, n_q, length)
    i = torch.arange(n_q)[:, None]
    j = torch.arange(n_k)[None, :]
    column = n_q - 1 - i + j  # [n_q, n_k]
    valid = column < length  # causal: exactly the keys up to the query's position
    expected = scores.gather(-1, column.clamp(max=length - 1).expand(2, 3, n_q, n_k))
    shifted = rel_shift(scores, n_k)
    assert shifted.shape == (2, 3, n_q, n_k)
    torch.testing.assert_close(shifted[..., valid], expected[..., valid])
    if causal:
        assert bool((valid == (j <= i + n_k - n_q)).all())
    else:
        assert bool(valid.all())


def relative_oracle(
    q: Tensor, k: Tensor, v: Tensor, r: Tensor, u: Tensor, v_bias: Tensor, causal: bool
) -> Tensor:
    """A_ij = q_i k_j + q_i W R_{i-j} + u k_j + v W R_{i-j}, one pair at a time."""
    n_q, n_k = q.shape[-2], k.shape[-2]
    top = n_k - 1  # r[:, c] is the distance top - c
    scores = torch.empty(*q.shape[:2], n_q, n_k)
    for i in range(n_q):
        for j in range(n_k):
            distance = (n_k - n_q + i) - j
            if causal and distance < 0:
                scores[..., i, j] = -math.inf
                continue
            r_ij = r[:, top - distance]  # [h, d]
            scores[..., i, j] = (
                (q[..., i, :] * k[..., j, :]).sum(-1)
                + (q[..., i, :] * r_ij).sum(-1)
                + (u * k[..., j, :]).sum(-1)
                + (v_bias * r_ij).sum(-1)
            )
    return (scores / math.sqrt(q.shape[-1])).softmax(-1) @ v


@pytest.mark.parametrize("causal", [True, False])
def test_relative_attention_matches_pairwise_scores(causal: bool) -> None:
    torch.manual_seed(0)
    n_q, n_k, h, d = 4, 7, 2, 5
    q, k, v = torch.randn(2, h, n_q, d), torch.randn(2, h, n_k, d), torch.randn(2, h, n_k, d)
    r = torch.randn(h, n_k if causal else n_k + n_q - 1, d)
    u, v_bias = torch.randn(h, d), torch.randn(h, d)
    out = relative_attention(q, k, v, r, u, v_bias, causal=causal)
    expected = relative_oracle(q, k, v, r, u, v_bias, causal)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


def test_sinusoids_follow_the_formula() -> None:
    r = sinusoid_embedding(torch.tensor([3.0, -1.0]), dim=6)
    freq = 1.0 / 10000 ** (torch.arange(3) * 2.0 / 6)
    expected = torch.stack([torch.cat([(t * freq).sin(), (t * freq).cos()]) for t in (3.0, -1.0)])
    torch.testing.assert_close(r, expected)


@pytest.mark.parametrize("causal", [True, False])
def test_memory_equals_attending_over_the_previous_segment(causal: bool) -> None:
    """With the previous segment as memory, segment 2 sees what a long pass would show it."""
    torch.manual_seed(1)
    layer = implementations.build("transformer-xl", dim=16, heads=2, causal=causal, mem_len=32)
    x1, x2 = torch.randn(2, 6, 16), torch.randn(2, 5, 16)
    _, memory = layer(x1)
    y2, _ = layer(x2, memory=memory)
    torch.testing.assert_close(memory, x1)
    torch.testing.assert_close(y2, layer.attend(x2, x1), atol=1e-6, rtol=0)
    if causal:  # ... the same as the last 5 outputs of one pass over both segments
        y_full, _ = layer(torch.cat([x1, x2], dim=1))
        torch.testing.assert_close(y2, y_full[:, 6:], atol=1e-5, rtol=1e-4)


def test_memory_changes_the_next_segment() -> None:
    torch.manual_seed(2)
    layer = implementations.build("transformer-xl", dim=16, heads=2, causal=True, mem_len=8)
    x = torch.randn(2, 5, 16)
    y_alone, _ = layer(x)
    y_after, _ = layer(x, memory=torch.randn(2, 8, 16))
    assert (y_after - y_alone).abs().max() > 1e-3


def test_no_gradient_flows_into_the_memory() -> None:
    torch.manual_seed(3)
    layer = implementations.build("transformer-xl", dim=16, heads=2, causal=True, mem_len=8)
    memory = torch.randn(2, 8, 16, requires_grad=True)
    x = torch.randn(2, 5, 16, requires_grad=True)
    y, new_memory = layer(x, memory=memory)
    assert not new_memory.requires_grad
    y.sum().backward()
    assert memory.grad is None
    assert x.grad is not None


def test_memory_keeps_the_last_mem_len_states() -> None:
    layer = implementations.build("transformer-xl", dim=8, heads=2, mem_len=7)
    segments = [torch.randn(1, 3, 8) for _ in range(4)]
    memory, seen = None, []
    for x in segments:
        _, memory = layer(x, memory=memory)
        seen.append(x)
        torch.testing.assert_close(memory, torch.cat(seen, dim=1)[:, -7:])
    _, no_memory = implementations.build("transformer-xl", dim=8, heads=2, mem_len=0)(x)
    assert no_memory.shape == (1, 0, 8)


@pytest.mark.parametrize("causal", [False, True])
def test_fused_relative_attention_matches_reference(causal: bool) -> None:
    from implementations.transformer_xl import (
        reference_relative_attention,
        rel_shift,
        rel_shift_view,
        relative_attention,
    )

    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 9, 8), torch.randn(2, 3, 9, 8)
    length = 9 if causal else 9 + 5 - 1
    r, u, v_bias = torch.randn(3, length, 8), torch.randn(3, 8), torch.randn(3, 8)
    with torch.no_grad():  # the fused path (with autograd, the reference runs)
        out = relative_attention(q, k, v, r, u, v_bias, causal=causal)
    expected = reference_relative_attention(q, k, v, r, u, v_bias, causal=causal)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    scores = torch.randn(2, 5, length)
    shifted = rel_shift(scores, 9)
    view = rel_shift_view(scores, 9)
    valid = torch.ones(5, 9, dtype=torch.bool)
    if causal:  # only entries up to each query's position are exact
        valid = torch.arange(9)[None, :] <= torch.arange(5)[:, None] + 4
    assert torch.equal(view[:, valid], shifted[:, valid])
