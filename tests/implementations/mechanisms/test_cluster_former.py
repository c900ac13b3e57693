"""Cluster-Former: cluster and sliding-window layers against dense attention oracles."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

import implementations
from implementations._helpers import split_heads
from implementations.cluster_former import (
    assign_clusters,
    attention,
    kmeans,
    sliding_window_attention,
)


def masked_dense(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor) -> Tensor:
    scores = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).masked_fill(~allowed, -math.inf)
    return torch.nan_to_num(scores.softmax(dim=-1)) @ v


def padding_mask(b: int, n: int) -> Tensor:
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[0, n - 5 :] = False
    mask[-1, 1:3] = False
    return mask


@pytest.mark.parametrize("n", [1, 2, 27])
def test_one_cluster_one_chunk_equals_dense(n: int) -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 3, n, 8).unbind(0)
    mask = padding_mask(2, n) if n > 5 else torch.ones(2, n, dtype=torch.bool)
    out = attention(q, k, v, torch.zeros(2, n, dtype=torch.long), chunk_size=32, mask=mask)
    expected = masked_dense(q, k, v, mask[:, None, None, :])
    real = mask[:, None, :, None].expand_as(out)
    torch.testing.assert_close(out[real], expected[real], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("layer_type", ["cluster", "sliding"])
def test_module_covering_everything_equals_dense(layer_type: str) -> None:
    torch.manual_seed(1)
    layer = implementations.build(
        "cluster-former", dim=16, heads=2, layer_type=layer_type, n_clusters=1, window_size=64
    )
    x = torch.randn(2, 23, 16)
    mask = padding_mask(2, 23)
    q, k, v = (split_heads(f(x), 2) for f in (layer.proj.to_q, layer.proj.to_k, layer.proj.to_v))
    expected = layer.proj.out(masked_dense(q, k, v, mask[:, None, None, :]))
    torch.testing.assert_close(layer(x, mask)[mask], expected[mask], atol=1e-5, rtol=1e-4)


def test_clusters_are_sorted_then_chunked() -> None:
    """Tokens attend to the others in their chunk of the (cluster, position) order."""
    torch.manual_seed(2)
    n, size = 26, 5
    q, k, v = torch.randn(3, 2, 2, n, 8).unbind(0)
    clusters = torch.randint(0, 4, (2, n))
    mask = padding_mask(2, n)
    out = attention(q, k, v, clusters, chunk_size=size, mask=mask)

    allowed = torch.zeros(2, n, n, dtype=torch.bool)
    for b in range(2):
        real = mask[b].nonzero().flatten().tolist()
        ordered = sorted(real, key=lambda i: (int(clusters[b, i]), i))
        for start in range(0, len(ordered), size):
            members = ordered[start : start + size]
            allowed[b, torch.tensor(members)[:, None], torch.tensor(members)] = True
    expected = masked_dense(q, k, v, allowed[:, None])
    real = mask[:, None, :, None].expand_as(out)
    torch.testing.assert_close(out[real], expected[real], atol=1e-5, rtol=1e-4)


def test_sliding_windows_are_averaged_where_they_overlap() -> None:
    torch.manual_seed(3)
    n, window, stride = 22, 8, 5  # windows start at 0, 5, 10, 15 (padded to 23)
    q, k, v = torch.randn(3, 1, 2, n, 4).unbind(0)
    out = sliding_window_attention(q, k, v, window, stride)
    total, covered = torch.zeros(1, 2, n, 4), torch.zeros(n)
    for start in (0, 5, 10, 15):  # the last window runs into one padded position
        part = slice(start, min(start + window, n))
        allowed = torch.ones(part.stop - part.start, part.stop - part.start, dtype=torch.bool)
        total[:, :, part] += masked_dense(q[:, :, part], k[:, :, part], v[:, :, part], allowed)
        covered[part] += 1
    torch.testing.assert_close(out, total / covered[:, None], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("layer_type", ["cluster", "sliding"])
def test_padded_tokens_do_not_change_real_outputs(layer_type: str) -> None:
    torch.manual_seed(7)
    layer = implementations.build(
        "cluster-former", dim=8, heads=2, layer_type=layer_type, n_clusters=3, window_size=6
    )
    x, mask = torch.randn(2, 23, 8), padding_mask(2, 23)
    changed = torch.where(mask[..., None], x, 3 * torch.randn_like(x))
    torch.testing.assert_close(layer(changed, mask)[mask], layer(x, mask)[mask])


def test_assignment_is_nearest_centroid() -> None:
    torch.manual_seed(4)
    x, centroids = torch.randn(50, 6), torch.randn(7, 6)
    nearest = torch.cdist(x, centroids).argmin(dim=-1)
    torch.testing.assert_close(assign_clusters(x, centroids), nearest)


def test_kmeans_finds_separated_blobs() -> None:
    torch.manual_seed(5)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = (centres[:, None, :] + 0.1 * torch.randn(3, 40, 2)).flatten(0, 1)
    found = kmeans(x, x[[0, 40, 80]] + 1.0, iters=10)
    torch.testing.assert_close(found, x.view(3, 40, 2).mean(1), atol=1e-5, rtol=0)


def test_centroids_change_only_through_update() -> None:
    torch.manual_seed(6)
    layer = implementations.build("cluster-former", dim=8, heads=2, n_clusters=3, window_size=4)
    assert "centroids" not in dict(layer.named_parameters())
    before = layer.centroids.clone()
    layer.train()(torch.randn(2, 10, 8)).sum().backward()
    torch.testing.assert_close(layer.centroids, before)
    bank = torch.randn(4, 10, 8)
    mask = torch.ones(4, 10, dtype=torch.bool)
    mask[:, 7:] = False
    layer.update_centroids(bank, mask, iters=3)
    torch.testing.assert_close(layer.centroids, kmeans(bank[:, :7].reshape(-1, 8), before, 3))


def test_invalid_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="causal"):
        implementations.build("cluster-former", dim=8, heads=1, causal=True)
    with pytest.raises(ValueError, match="layer_type"):
        implementations.build("cluster-former", dim=8, heads=1, layer_type="global")
    with pytest.raises(ValueError, match="stride"):
        implementations.build(
            "cluster-former", dim=8, heads=1, layer_type="sliding", window_size=4, stride=5
        )
