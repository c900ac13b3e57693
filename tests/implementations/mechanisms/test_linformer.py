"""Linformer (Wang et al., 2020) against dense attention and explicit projections."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import implementations
from implementations import dense
from implementations.linformer import attention

B, H, N, D = 2, 4, 13, 8
DIM = H * D


def test_identity_projections_with_k_equal_n_give_dense_attention() -> None:
    for sharing in ("none", "headwise", "key-value", "layerwise"):
        torch.manual_seed(0)
        layer = implementations.build(
            "linformer", dim=DIM, heads=H, k=N, max_seq_len=N, sharing=sharing
        )
        with torch.no_grad():
            layer.projection.copy_(torch.eye(N).expand_as(layer.projection))
        x = torch.randn(B, N, DIM)
        q, k, v = layer.proj.qkv(x)
        expected = layer.proj.out(dense.attention(q, k, v))
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-4)


def test_functional_core_is_the_papers_formula() -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, B, H, N, D).unbind(0)
    e, f = torch.randn(2, H, 5, N).unbind(0)
    k_proj = e @ k  # [b, h, 5, d]: E_i K_i
    v_proj = f @ v  # [b, h, 5, d]: F_i V_i
    expected = torch.softmax(q @ k_proj.transpose(-1, -2) / D**0.5, dim=-1) @ v_proj
    torch.testing.assert_close(attention(q, k, v, e, f), expected, atol=1e-5, rtol=1e-4)


def test_padding_equals_the_shorter_sequence() -> None:
    """Zeroing padded keys before the projection = a shorter input using fewer columns."""
    torch.manual_seed(0)
    layer = implementations.build("linformer", dim=DIM, heads=H, k=6, max_seq_len=32)
    x = torch.randn(1, 20, DIM)
    mask = torch.ones(1, 20, dtype=torch.bool)
    mask[:, 13:] = False
    torch.testing.assert_close(layer(x, mask)[:, :13], layer(x[:, :13]), atol=1e-5, rtol=1e-4)


def test_sharing_modes_shape_the_projections() -> None:
    shapes = {
        "none": (2, H, 6, 32),
        "headwise": (2, 1, 6, 32),
        "key-value": (1, 1, 6, 32),
        "layerwise": (1, 1, 6, 32),
    }
    for sharing, shape in shapes.items():
        layer = implementations.build(
            "linformer", dim=DIM, heads=H, k=6, max_seq_len=32, sharing=sharing
        )
        assert tuple(layer.projection.shape) == shape


def test_layerwise_sharing_ties_one_parameter_across_layers() -> None:
    layers = nn.ModuleList(
        implementations.build(
            "linformer", dim=DIM, heads=H, k=6, max_seq_len=32, sharing="layerwise"
        )
        for _ in range(3)
    )
    for layer in layers[1:]:
        layer.tie_projection(layers[0])
    projections = [p for name, p in layers.named_parameters() if name.endswith("projection")]
    assert len(projections) == 1  # deduplicated: a single shared matrix
    x = torch.randn(1, 9, DIM)
    layers[2](layers[1](layers[0](x))).sum().backward()
    assert layers[0].projection.grad is not None
    other = implementations.build("linformer", dim=DIM, heads=H, k=6, max_seq_len=32)
    with pytest.raises(ValueError, match="layerwise"):
        other.tie_projection(layers[0])


def test_longer_than_max_seq_len_is_rejected() -> None:
    layer = implementations.build("linformer", dim=DIM, heads=H, k=6, max_seq_len=8)
    with pytest.raises(ValueError, match="max_seq_len"):
        layer(torch.randn(1, 9, DIM))


def test_bad_sharing_is_rejected() -> None:
    with pytest.raises(ValueError, match="sharing"):
        implementations.build("linformer", dim=DIM, heads=H, sharing="all")


def test_docstring_states_theorem_2() -> None:
    """The bound is the paper's Theorem 2, not the looser k = O(d / eps^2)."""
    import implementations.linformer as module

    text = module.__doc__ or ""
    assert r"\min\{\Theta(9 d \log d / \epsilon^2),\ 5\Theta(\log n / \epsilon^2)\}" in text
    assert r"O(d / \epsilon^2)" not in text
