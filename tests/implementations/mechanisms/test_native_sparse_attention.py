"""Native Sparse Attention: each branch against a dense oracle on its own key set."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

import implementations
from implementations._helpers import merge_heads, split_heads
from implementations.native_sparse_attention import compression_blocks, selection_scores

L, S, BLOCK, TOP, WINDOW = 8, 4, 8, 3, 6  # l, s, l', k, w


def build(causal: bool, share: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    return implementations.build(
        "native-sparse-attention",
        dim=16,
        heads=2,
        causal=causal,
        compress_block=L,
        compress_stride=S,
        select_block=BLOCK,
        selected_blocks=TOP,
        window_size=WINDOW,
        share_selection=share,
    ).eval()


def test_compression_blocks_are_the_strided_windows() -> None:
    x = torch.randn(2, 23, 3)
    blocks = compression_blocks(x, length=8, stride=4)
    assert blocks.shape == (2, 4, 8, 3)  # starts 0, 4, 8, 12; 16 + 8 > 23
    for i in range(4):
        torch.testing.assert_close(blocks[:, i], x[:, 4 * i : 4 * i + 8])
    assert compression_blocks(x[:, :7], length=8, stride=4).shape == (2, 0, 8, 3)


@pytest.mark.parametrize(("length", "stride", "block"), [(8, 4, 8), (32, 16, 64), (4, 4, 8)])
def test_selection_scores_sum_the_overlapping_compression_blocks(
    length: int, stride: int, block: int
) -> None:
    n_cmp, n_sel = 11, 7
    p = torch.rand(3, n_cmp)
    scores = selection_scores(p, n_sel, length, stride, block)
    for j in range(n_sel):
        overlapping = [
            i
            for i in range(n_cmp)
            if i * stride < (j + 1) * block and i * stride + length > j * block
        ]
        torch.testing.assert_close(scores[:, j], p[:, overlapping].sum(-1))


def attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """softmax(q k^T / sqrt(d)) v for one query ``[d]`` over keys ``[m, d]`` (0 if m = 0)."""
    if k.shape[0] == 0:
        return torch.zeros_like(q)
    return (k @ q / math.sqrt(q.shape[-1])).softmax(-1) @ v


def oracle(layer: torch.nn.Module, x: Tensor, mask: Tensor, share: bool = False):
    """The three branches per query, in float64, with explicit key sets."""
    layer = layer.double()
    x = x.double()
    b, n, _ = x.shape
    h = layer.heads
    q = split_heads(layer.to_q(x), h)
    kv = layer.to_kv(x).masked_fill(~mask[..., None], 0)  # padding zeroed before compression
    k_cmp_in, v_cmp_in, k_slc, v_slc, k_win, v_win = (split_heads(t, h) for t in kv.chunk(6, -1))
    n_cmp = (n - L) // S + 1
    starts = [i * S for i in range(n_cmp)]
    k_cmp = torch.stack([layer.compress_k(k_cmp_in[:, :, s : s + L]) for s in starts], 2)
    v_cmp = torch.stack([layer.compress_v(v_cmp_in[:, :, s : s + L]) for s in starts], 2)
    n_sel = math.ceil(n / BLOCK)
    out = {name: torch.zeros(b, h, n, q.shape[-1], dtype=torch.float64) for name in ("cmp", "slc")}
    out["win"] = torch.zeros_like(out["cmp"])
    for bi in range(b):
        importance = {}
        for hi in range(h):
            for t in range(n):
                seen = [i for i in range(n_cmp) if not layer.causal or starts[i] + L - 1 <= t]
                scores = k_cmp[bi, hi, seen] @ q[bi, hi, t] / math.sqrt(q.shape[-1])
                p = scores.softmax(-1) if seen else scores
                out["cmp"][bi, hi, t] = p @ v_cmp[bi, hi, seen] if seen else 0
                full = torch.zeros(n_cmp, dtype=torch.float64)
                full[seen] = p
                importance[hi, t] = [
                    sum(
                        float(full[i])
                        for i in range(n_cmp)
                        if starts[i] < (j + 1) * BLOCK and starts[i] + L > j * BLOCK
                    )
                    for j in range(n_sel)
                ]
        for hi in range(h):
            for t in range(n):
                weight = (
                    [sum(importance[g, t][j] for g in range(h)) for j in range(n_sel)]
                    if share
                    else importance[hi, t]
                )
                own = t // BLOCK
                candidates = [j for j in range(n_sel) if not layer.causal or j <= own]
                forced = [j for j in candidates if j in (0, own, own - 1)]
                rest = sorted((j for j in candidates if j not in forced), key=lambda j: -weight[j])
                blocks = (forced + rest)[:TOP]
                keys = [
                    p
                    for j in blocks
                    for p in range(j * BLOCK, min((j + 1) * BLOCK, n))
                    if mask[bi, p] and (not layer.causal or p <= t)
                ]
                out["slc"][bi, hi, t] = attend(
                    q[bi, hi, t], k_slc[bi, hi, keys], v_slc[bi, hi, keys]
                )
                after = 0 if layer.causal else WINDOW - 1
                near = [
                    p for p in range(t - WINDOW + 1, t + after + 1) if 0 <= p < n and mask[bi, p]
                ]
                out["win"][bi, hi, t] = attend(
                    q[bi, hi, t], k_win[bi, hi, near], v_win[bi, hi, near]
                )
    gates = torch.sigmoid(layer.to_gates(x)).view(b, n, h, 3).permute(3, 0, 2, 1)[..., None]
    mixed = gates[0] * out["cmp"] + gates[1] * out["slc"] + gates[2] * out["win"]
    return out, layer.to_out(merge_heads(mixed))


def padding(b: int, n: int) -> Tensor:
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[1, 37:] = False
    mask[1, 5] = False
    return mask


@pytest.mark.parametrize("causal", [True, False])
def test_compressed_and_selected_branches_match_the_oracle(causal: bool) -> None:
    layer = build(causal)
    x = torch.randn(2, 45, 16)
    mask = padding(2, 45)
    with torch.no_grad():
        q = split_heads(layer.to_q(x), 2)
        kv = [
            split_heads(t, 2) for t in layer.to_kv(x).masked_fill(~mask[..., None], 0).chunk(6, -1)
        ]
        o_cmp, o_slc = layer.sparse_branches(
            q, layer.compressed_kv(kv[0], kv[1]), (kv[2], kv[3]), mask
        )
        expected, _ = oracle(layer, x, mask)
    rows = mask[:, None, :].expand(2, 2, 45)
    torch.testing.assert_close(o_cmp.double()[rows], expected["cmp"][rows], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(o_slc.double()[rows], expected["slc"][rows], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("share", [False, True])
@pytest.mark.parametrize("causal", [True, False])
def test_layer_is_the_gated_sum_of_the_three_branches(causal: bool, share: bool) -> None:
    layer = build(causal, share)
    x = torch.randn(2, 45, 16)
    mask = padding(2, 45)
    with torch.no_grad():
        y = layer(x, mask)
        _, expected = oracle(layer, x, mask, share)
    torch.testing.assert_close(y.double()[mask], expected[mask], atol=1e-5, rtol=1e-5)


def test_selecting_every_block_gives_exact_causal_attention() -> None:
    torch.manual_seed(1)
    layer = implementations.build(
        "native-sparse-attention",
        dim=16,
        heads=2,
        causal=True,
        compress_block=4,
        compress_stride=4,
        select_block=4,
        selected_blocks=10,
        window_size=2,
    )
    x = torch.randn(1, 37, 16)  # 10 selection blocks: all of them are selected
    mask = torch.ones(1, 37, dtype=torch.bool)
    with torch.no_grad():
        q = split_heads(layer.to_q(x), 2)
        kv = [split_heads(t, 2) for t in layer.to_kv(x).chunk(6, -1)]
        _, o_slc = layer.sparse_branches(q, layer.compressed_kv(kv[0], kv[1]), (kv[2], kv[3]), mask)
    scores = q @ kv[2].transpose(-1, -2) / math.sqrt(8)
    scores = scores.masked_fill(~torch.ones(37, 37, dtype=torch.bool).tril(), -math.inf)
    torch.testing.assert_close(o_slc, scores.softmax(-1) @ kv[3], atol=1e-5, rtol=1e-5)
