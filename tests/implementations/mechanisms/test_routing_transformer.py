"""Routing Transformer against exact softmax attention over explicit cluster masks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

import implementations
from implementations._helpers import merge_heads, split_heads
from implementations.routing_transformer import attention, normalize, update_centroids


def masked_dense(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor) -> Tensor:
    scores = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).masked_fill(~allowed, -math.inf)
    return torch.nan_to_num(scores.softmax(dim=-1)) @ v


def causal_allowed(n: int) -> Tensor:
    return torch.ones(n, n, dtype=torch.bool).tril()


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n", [1, 2, 29])
def test_one_cluster_equals_dense(causal: bool, n: int) -> None:
    torch.manual_seed(0)
    q = normalize(torch.randn(2, 3, n, 8))
    k = q if causal else normalize(torch.randn(2, 3, n, 8))
    v = torch.randn(2, 3, n, 8)
    centroids = normalize(torch.randn(3, 1, 8))
    out = attention(q, k, v, centroids, window=n, causal=causal)
    allowed = causal_allowed(n) if causal else torch.ones(n, n, dtype=torch.bool)
    torch.testing.assert_close(out, masked_dense(q, k, v, allowed), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_module_with_one_cluster_equals_dense(causal: bool) -> None:
    torch.manual_seed(1)
    layer = implementations.build(
        "routing-transformer", dim=16, heads=2, causal=causal, n_clusters=1
    ).eval()
    x = torch.randn(2, 21, 16)
    mask = torch.ones(2, 21, dtype=torch.bool)
    mask[1, 15:] = False
    q = normalize(split_heads(layer.to_q(x), 2))
    k = q if causal else normalize(split_heads(layer.to_k(x), 2))
    v = split_heads(layer.to_v(x), 2)
    allowed = mask[:, None, None, :] & (causal_allowed(21) if causal else True)
    expected = layer.to_out(merge_heads(masked_dense(q, k, v, allowed)))
    torch.testing.assert_close(layer(x, mask)[mask], expected[mask], atol=1e-5, rtol=1e-4)


def test_balanced_routing_matches_explicit_clusters() -> None:
    """Each centroid's top-w queries attend to its top-w keys; overlaps are averaged."""
    torch.manual_seed(2)
    b, h, n, w, c = 2, 2, 24, 6, 3
    q, k = normalize(torch.randn(b, h, n, 8)), normalize(torch.randn(b, h, n, 8))
    v = torch.randn(b, h, n, 8)
    centroids = normalize(torch.randn(h, c, 8))
    out = attention(q, k, v, centroids, window=w)

    total, picks = torch.zeros(b, h, n, 8), torch.zeros(b, h, n, 1)
    for cluster in range(c):
        top_q = (q @ centroids[:, cluster, :, None])[..., 0].topk(w, dim=-1).indices
        top_k = (k @ centroids[:, cluster, :, None])[..., 0].topk(w, dim=-1).indices
        is_q = torch.zeros(b, h, n, dtype=torch.bool).scatter(-1, top_q, True)
        is_k = torch.zeros(b, h, n, dtype=torch.bool).scatter(-1, top_k, True)
        o = masked_dense(q, k, v, is_k[..., None, :].expand(b, h, n, n))
        total += o * is_q[..., None]
        picks += is_q[..., None]
    expected = total / picks.clamp(min=1)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


def test_causal_routing_matches_explicit_windows() -> None:
    """Query i sees the w latest tokens <= i of its argmax cluster (shared QK)."""
    torch.manual_seed(3)
    b, h, n, w, c = 2, 2, 30, 4, 3
    q = normalize(torch.randn(b, h, n, 8))
    v = torch.randn(b, h, n, 8)
    centroids = normalize(torch.randn(h, c, 8))
    out = attention(q, q, v, centroids, window=w, causal=True)

    cluster = torch.einsum("bhnd,hcd->bhnc", q, centroids).argmax(-1)  # [b, h, n]
    same = cluster[..., :, None] == cluster[..., None, :]
    earlier = causal_allowed(n) & same
    # Rank of key j among its cluster's tokens <= i, counted from i backwards.
    newer = (earlier.flip(-1).cumsum(-1).flip(-1)) * earlier  # tokens of the cluster in [j, i]
    allowed = earlier & (newer <= w)
    torch.testing.assert_close(out, masked_dense(q, q, v, allowed), atol=1e-5, rtol=1e-4)


def test_centroids_move_by_moving_average_only_in_training() -> None:
    torch.manual_seed(4)
    layer = implementations.build("routing-transformer", dim=16, heads=2, n_clusters=3)
    assert "centroids" not in dict(layer.named_parameters())  # not trained by gradient
    x = torch.randn(2, 12, 16)
    before = layer.centroids.clone()
    layer.eval()(x)
    torch.testing.assert_close(layer.centroids, before)
    layer.train()(x).sum().backward()  # the graph survives the update
    assert not torch.allclose(layer.centroids, before)
    # Each moved centroid went (1 - decay) of the way towards its routed vectors' mean.
    q = normalize(split_heads(layer.to_q(x), 2)).detach()
    k = normalize(split_heads(layer.to_k(x), 2)).detach()
    mask = torch.ones(2, 12, dtype=torch.bool)
    torch.testing.assert_close(layer.centroids, update_centroids(before, [q, k], mask, 0.999))


def test_update_centroids_formula() -> None:
    mu = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]])  # [h=1, k=3, d=2]
    q = torch.tensor([[[[2.0, 0.2], [4.0, -0.2], [0.1, 3.0]]]])  # two near mu_0, one near mu_1
    k = torch.tensor([[[[0.0, 5.0], [9.0, 9.0], [3.0, 0.0]]]])  # the 2nd key is padding
    mask = torch.tensor([[True, False, True]])
    new = update_centroids(mu, [q, k], mask, decay=0.9)
    # mu_0: the query (2, .2) and the key (3, 0) [(4, -.2) is padding] -> mean (2.5, .1)
    expected_0 = 0.9 * mu[0, 0] + 0.1 * torch.tensor([2.5, 0.1])
    # mu_1: the query (.1, 3) and the key (0, 5) -> mean (.05, 4)
    expected_1 = 0.9 * mu[0, 1] + 0.1 * torch.tensor([0.05, 4.0])
    torch.testing.assert_close(new[0, 0], expected_0)
    torch.testing.assert_close(new[0, 1], expected_1)
    torch.testing.assert_close(new[0, 2], mu[0, 2])  # chosen by no token: unchanged


def test_invalid_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_clusters"):
        implementations.build("routing-transformer", dim=8, heads=1, n_clusters=0)
    with pytest.raises(ValueError, match="decay"):
        implementations.build("routing-transformer", dim=8, heads=1, decay=1.0)
