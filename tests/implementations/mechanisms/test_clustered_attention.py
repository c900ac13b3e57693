"""Clustered attention: Hamming K-means, centroid attention and its improved variant."""

from __future__ import annotations

import math

import torch
from torch import Tensor

import implementations
from implementations.clustered_attention import (
    centroid_attention,
    hamming_kmeans,
    hash_codes,
    improved_centroid_attention,
)


def dense(q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
    scores = q.double() @ k.double().transpose(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask[:, None, None, :], -math.inf)
    return scores.softmax(-1) @ v.double()


def repeated_queries(b: int, h: int, n: int, d: int, distinct: int) -> Tensor:
    """Queries with exactly ``distinct`` different rows per head, in a random order."""
    table = torch.randn(b, h, distinct, d) * 2
    which = torch.randint(distinct, (b, h, n))
    which[..., :distinct] = torch.arange(distinct)  # every row is used
    return torch.gather(table, 2, which[..., None].expand(b, h, n, d))


def test_as_many_clusters_as_distinct_queries_is_exact() -> None:
    torch.manual_seed(0)
    b, h, n, d, distinct = 2, 3, 40, 8, 5
    q = repeated_queries(b, h, n, d, distinct)
    k, v = torch.randn(b, h, n, d), torch.randn(b, h, n, d)
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[1, 33:] = False
    codes = hash_codes(q, torch.randn(63, d + 1))
    assign = hamming_kmeans(codes, mask[:, None, :], clusters=distinct, iterations=10)
    # Identical queries share a cluster; different ones never do.
    same_query = (q[..., :, None, :] == q[..., None, :, :]).all(-1)  # [b, h, n, n]
    same_cluster = assign[..., :, None] == assign[..., None, :]
    real = mask[:, None, :, None] & mask[:, None, None, :]
    assert bool((same_query == same_cluster)[real.expand_as(same_query)].all())
    out = centroid_attention(q, k, v, assign, distinct, mask)
    rows = mask[:, None, :].expand(b, h, n)
    torch.testing.assert_close(out[rows].double(), dense(q, k, v, mask)[rows], atol=1e-5, rtol=1e-5)


def test_centroid_attention_matches_its_definition() -> None:
    """V_i = softmax(mean of the real queries of i's cluster . K^T / sqrt(d)) V."""
    torch.manual_seed(1)
    b, h, n, d, clusters = 2, 2, 23, 4, 4
    q, k, v = (torch.randn(b, h, n, d) for _ in range(3))
    assign = torch.randint(clusters, (b, h, n))
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[0, 18:] = False
    out = centroid_attention(q, k, v, assign, clusters, mask)
    for bi in range(b):
        for hi in range(h):
            for i in range(n):
                members = (assign[bi, hi] == assign[bi, hi, i]) & mask[bi]
                centroid = q[bi, hi][members].double().mean(0)
                scores = k[bi, hi].double() @ centroid / math.sqrt(d)
                weights = scores.masked_fill(~mask[bi], -math.inf).softmax(-1)
                expected = weights @ v[bi, hi].double()
                torch.testing.assert_close(out[bi, hi, i].double(), expected, atol=1e-5, rtol=1e-5)


def test_improved_attention_matches_its_definition() -> None:
    """Exact weights on the cluster's top-k keys, scaled to the centroid's mass there."""
    torch.manual_seed(2)
    b, h, n, d, clusters, topk = 1, 2, 19, 4, 3, 5
    q, k, v = (torch.randn(b, h, n, d) for _ in range(3))
    assign = torch.randint(clusters, (b, h, n))
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[0, 15:] = False
    out = improved_centroid_attention(q, k, v, assign, clusters, topk, mask)
    for hi in range(h):
        for i in range(n):
            members = (assign[0, hi] == assign[0, hi, i]) & mask[0]
            centroid = q[0, hi][members].double().mean(0)
            scores_c = (k[0, hi].double() @ centroid / math.sqrt(d)).masked_fill(
                ~mask[0], -math.inf
            )
            a_c = scores_c.softmax(-1)  # [n]
            top = a_c.topk(topk).indices
            mass = a_c[top].sum()
            exact = (k[0, hi, top].double() @ q[0, hi, i].double() / math.sqrt(d)).softmax(-1)
            weights = a_c.clone()
            weights[top] = mass * exact
            torch.testing.assert_close(weights.sum(), torch.tensor(1.0, dtype=torch.float64))
            expected = weights @ v[0, hi].double()
            torch.testing.assert_close(out[0, hi, i].double(), expected, atol=1e-5, rtol=1e-5)


def test_improved_with_every_key_recomputed_is_exact() -> None:
    torch.manual_seed(3)
    q, k, v = (torch.randn(2, 2, 16, 8) for _ in range(3))
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[1, :3] = False
    assign = torch.randint(2, (2, 2, 16))  # any clustering
    out = improved_centroid_attention(q, k, v, assign, 2, topk=16, mask=mask)
    torch.testing.assert_close(out.double(), dense(q, k, v, mask), atol=1e-5, rtol=1e-5)


def test_padding_neither_seeds_nor_moves_clusters() -> None:
    torch.manual_seed(4)
    codes = torch.where(torch.randn(2, 30, 16) > 0, 1.0, -1.0)
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[:, 20:] = False
    changed = codes.clone()
    changed[:, 20:] = -changed[:, 20:]
    a = hamming_kmeans(codes, mask, clusters=4, iterations=5)
    b = hamming_kmeans(changed, mask, clusters=4, iterations=5)
    assert torch.equal(a[:, :20], b[:, :20])


def test_layer_is_exact_when_every_query_has_its_cluster() -> None:
    """With C >= n (the default 100 at short lengths) the layer is dense attention."""
    torch.manual_seed(5)
    layer = implementations.build("clustered-attention", dim=16, heads=2)
    x = torch.randn(2, 21, 16)
    q, k, v = layer.proj.qkv(x)
    mask = torch.ones(2, 21, dtype=torch.bool)
    with torch.no_grad():
        expected = layer.proj.out(dense(q, k, v, mask).float())
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
