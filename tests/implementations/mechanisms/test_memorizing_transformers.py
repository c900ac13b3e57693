"""Memorizing Transformers: exact kNN retrieval, the gate, local attention and the FIFO memory."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import implementations
import implementations.memorizing_transformers as memorizing
from implementations.memorizing_transformers import KNNMemory, knn_attention, topk_retrieval


def test_topk_retrieval_equals_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunked search (forced into several chunks) == sorting every score."""
    monkeypatch.setattr(memorizing, "_SEARCH_BUDGET", 64 * 10)  # 64-query chunks of 10 keys
    torch.manual_seed(0)
    q, keys = torch.randn(2, 3, 150, 8), torch.randn(2, 3, 10, 8)
    scores, idx = topk_retrieval(q, keys, 4)
    full = q @ keys.transpose(-1, -2)  # [b, h, n, m]
    order = full.argsort(dim=-1, descending=True)[..., :4]
    assert torch.equal(idx, order)
    torch.testing.assert_close(scores, full.gather(-1, order))


def test_knn_attention_is_softmax_over_the_nearest_entries() -> None:
    torch.manual_seed(1)
    q, keys, values = torch.randn(2, 2, 6, 4), torch.randn(2, 2, 20, 4), torch.randn(2, 2, 20, 5)
    tau = torch.tensor([1.5, 3.0])
    out = knn_attention(q, keys, values, k=7, scale=tau)
    for b in range(2):  # the memory rows of every (batch, head) are kept apart
        for h in range(2):
            for i in range(6):
                scores = keys[b, h].double() @ q[b, h, i].double()  # [m]
                near = scores.topk(7).indices
                weights = (tau[h].double() * scores[near]).softmax(-1)
                expected = weights @ values[b, h, near].double()
                torch.testing.assert_close(out[b, h, i].double(), expected, atol=1e-5, rtol=1e-5)


def test_knn_attention_gradients_pass_gradcheck() -> None:
    torch.manual_seed(3)
    q, keys, values = (
        torch.randn(2, 2, 3, 4, dtype=torch.float64, requires_grad=True),
        torch.randn(2, 2, 9, 4, dtype=torch.float64, requires_grad=True),
        torch.randn(2, 2, 9, 5, dtype=torch.float64, requires_grad=True),
    )
    tau = torch.tensor([1.5, 3.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda q, keys, values: knn_attention(q, keys, values, k=4, scale=tau),
        (q, keys, values),
    )


def _layer(causal: bool = True) -> torch.nn.Module:
    torch.manual_seed(2)
    return implementations.build(
        "memorizing-transformers",
        dim=16,
        heads=2,
        causal=causal,
        mem_len=40,
        topk=5,
        window_size=6,
    ).eval()


def _oracle_parts(layer: torch.nn.Module, x: Tensor, memory: KNNMemory) -> tuple[Tensor, Tensor]:
    """Local window attention over [memory tail; segment] and top-k memory attention."""
    q, k, v = layer.proj.qkv(x)
    q, k = F.normalize(q.double(), dim=-1), F.normalize(k.double(), dim=-1)
    v = v.double()
    tau = layer.log_scale.exp().double()[:, None, None]  # [h, 1, 1]
    w, m, n = layer.window_size, memory.keys.shape[-2], x.shape[1]
    tail = min(w, m)
    keys = torch.cat([memory.keys.double()[..., m - tail :, :], k], dim=-2)
    values = torch.cat([memory.values.double()[..., m - tail :, :], v], dim=-2)
    query_pos = torch.arange(n)[:, None] + tail  # positions in [tail; segment]
    key_pos = torch.arange(tail + n)[None, :]
    near = (query_pos - key_pos < w) & (key_pos - query_pos < (1 if layer.causal else w))
    scores = (tau * q @ keys.transpose(-1, -2)).masked_fill(~near, float("-inf"))
    local = scores.softmax(-1) @ values
    if m == 0:
        return local, torch.zeros_like(local)
    mem_scores = q @ memory.keys.double().transpose(-1, -2)  # [b, h, n, m]
    top = mem_scores.topk(layer.topk, dim=-1)
    picked = memory.values.double()[:, :, None].expand(-1, -1, n, -1, -1)  # [b, h, n, m, d]
    picked = picked.gather(3, top.indices[..., None].expand(-1, -1, -1, -1, v.shape[-1]))
    retrieved = torch.einsum("bhnk,bhnkd->bhnd", (tau * top.values).softmax(-1), picked)
    return local, retrieved


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize(("gate", "part"), [(-100.0, "local"), (100.0, "memory"), (0.3, "mix")])
def test_gate_mixes_local_and_memory_attention(causal: bool, gate: float, part: str) -> None:
    layer = _layer(causal)
    x0, x1 = torch.randn(2, 30, 16), torch.randn(2, 11, 16)
    with torch.no_grad():
        layer.gate_bias.fill_(gate)
        _, memory = layer(x0)
        y, _ = layer(x1, memory=memory)
        local, retrieved = _oracle_parts(layer, x1, memory)
    g = torch.sigmoid(torch.tensor(gate, dtype=torch.float64))
    expected = {"local": local, "memory": retrieved, "mix": retrieved * g + local * (1 - g)}[part]
    torch.testing.assert_close(
        y.double(), layer.proj.out(expected.float()).double(), atol=1e-5, rtol=1e-4
    )


def test_first_segment_is_local_attention_only() -> None:
    layer = _layer()
    x = torch.randn(2, 13, 16)
    empty = KNNMemory(torch.zeros(2, 2, 0, 8), torch.zeros(2, 2, 0, 8))
    with torch.no_grad():
        y, _ = layer(x)
        local, _ = _oracle_parts(layer, x, empty)
    torch.testing.assert_close(y, layer.proj.out(local.float()), atol=1e-5, rtol=1e-4)


def test_memory_is_a_detached_fifo_of_normalised_keys() -> None:
    layer = _layer().train()
    segments = [torch.randn(2, 17, 16) for _ in range(3)]
    memory, seen_k, seen_v = None, [], []
    for x in segments:
        _, memory = layer(x, memory=memory)
        _, k, v = layer.proj.qkv(x)
        seen_k.append(F.normalize(k, dim=-1))
        seen_v.append(v)
    assert memory is not None
    assert not memory.keys.requires_grad and not memory.values.requires_grad
    torch.testing.assert_close(memory.keys, torch.cat(seen_k, dim=-2)[..., -40:, :].detach())
    torch.testing.assert_close(memory.values, torch.cat(seen_v, dim=-2)[..., -40:, :].detach())


def test_a_stored_key_is_retrieved_first_by_its_own_query() -> None:
    torch.manual_seed(3)
    keys = F.normalize(torch.randn(1, 1, 50, 8), dim=-1)
    _, idx = topk_retrieval(keys[..., 10:20, :], keys, 1)
    assert torch.equal(idx[0, 0, :, 0], torch.arange(10, 20))
