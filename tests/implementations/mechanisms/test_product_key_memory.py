"""Product-key memory: the product-key search is exact, the layer is a softmax memory read."""

from __future__ import annotations

import pytest
import torch

import implementations
from implementations.product_key_memory import product_key_topk


def full_keys(sub_keys: torch.Tensor) -> torch.Tensor:
    """All N = n_keys^2 keys [c_i; c'_j] of every head, ``[h, N, d_q]``, index i * n_keys + j."""
    h, _, n_keys, half = sub_keys.shape
    first = sub_keys[:, 0, :, None, :].expand(h, n_keys, n_keys, half)
    second = sub_keys[:, 1, None, :, :].expand(h, n_keys, n_keys, half)
    return torch.cat([first, second], dim=-1).reshape(h, n_keys * n_keys, 2 * half)


@pytest.mark.parametrize("topk", [1, 5, 12])
def test_product_key_topk_equals_brute_force_over_all_keys(topk: int) -> None:
    torch.manual_seed(0)
    tokens, heads, n_keys, d_q = 50, 3, 12, 10
    q = torch.randn(tokens, heads, d_q, dtype=torch.float64)
    sub_keys = torch.randn(heads, 2, n_keys, d_q // 2, dtype=torch.float64)
    scores, index = product_key_topk(q, sub_keys, topk)
    all_scores = torch.einsum("thd,hnd->thn", q, full_keys(sub_keys))  # [T, h, N]
    best, best_index = all_scores.topk(topk, dim=-1)
    torch.testing.assert_close(scores, best)
    assert torch.equal(index.sort(-1).values, best_index.sort(-1).values)
    torch.testing.assert_close(all_scores.gather(-1, index), scores)  # index -> [c_i; c'_j]


def test_layer_is_a_softmax_read_of_the_best_keys_summed_over_heads() -> None:
    torch.manual_seed(1)
    dim, heads, n_keys, k_dim, topk = 16, 2, 10, 8, 4
    layer = implementations.build(
        "product-key-memory", dim=dim, heads=heads, n_keys=n_keys, k_dim=k_dim, topk=topk
    )
    layer.train()(torch.randn(4, 30, dim))  # move the batch-norm running statistics
    layer.eval()
    x = torch.randn(2, 7, dim)
    y, aux_loss = layer(x)
    q = layer.query_norm(layer.query(x.reshape(-1, dim))).view(-1, heads, k_dim)  # [T, h, d_q]
    all_scores = torch.einsum("thd,hnd->thn", q, full_keys(layer.sub_keys))  # [T, h, N]
    best, index = all_scores.topk(topk, dim=-1)
    values = layer.values.weight[index]  # [T, h, k, dim]
    expected = torch.einsum("thk,thkd->td", best.softmax(-1), values).view(2, 7, dim)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    assert aux_loss.item() == 0.0


def test_without_batchnorm_tokens_are_read_independently_in_training() -> None:
    torch.manual_seed(2)
    layer = implementations.build(
        "product-key-memory", dim=16, heads=2, n_keys=10, k_dim=8, topk=4, query_batchnorm=False
    ).train()
    x = torch.randn(2, 9, 16)
    y, _ = layer(x)
    torch.testing.assert_close(layer(x[:, :3])[0], y[:, :3], atol=1e-6, rtol=1e-5)
