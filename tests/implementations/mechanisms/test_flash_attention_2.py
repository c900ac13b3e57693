"""FlashAttention-2 (Dao, 2024): the tiled reference against exact dense attention.

Oracles: ``implementations.dense.attention`` (exact attention, its own autograd) for outputs
and the gradients of q, k and v; float64 finite differences (``gradcheck``) for the custom
backward; the materialised score matrix for the saved statistics; the live-tensor counter of
``tools.measure`` for the O(n) memory.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import implementations
from implementations.dense import attention as exact
from implementations.flash_attention import FlashAttention1Algorithm
from implementations.flash_attention_2 import FlashAttention2Algorithm, attention
from tools.measure.counters import peak_live_bytes

B, H, N, D = 2, 3, 29, 8
ATOL, RTOL = 1e-5, 1e-5


def qkv(dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor, Tensor]:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, B, H, N, D, dtype=dtype).unbind(0)
    return q * 1.5, k, v  # larger scores, so the online rescaling matters


def padding() -> Tensor:
    """Right padding in sequence 0; left padding (no real key before 3) and a hole in 1."""
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 20:] = False
    mask[1, :3] = False
    mask[1, 10:13] = False
    return mask


def with_grads(fn, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, ...]:
    """Output and the gradients of q, k, v of ``fn`` for a fixed random output gradient."""
    q, k, v = (t.detach().clone().requires_grad_() for t in (q, k, v))
    y = fn(q, k, v)
    torch.manual_seed(1)
    y.backward(torch.randn_like(y))
    return y.detach(), q.grad, k.grad, v.grad


@pytest.mark.parametrize("block", [1, 5, 8, 64])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_output_and_gradients_equal_dense(block: int, causal: bool, masked: bool) -> None:
    q, k, v = qkv()
    mask = padding() if masked else None
    got = with_grads(lambda *t: attention(*t, mask, causal, block), q, k, v)
    expected = with_grads(lambda *t: exact(*t, mask=mask, causal=causal), q, k, v)
    for name, g, e in zip(("out", "dq", "dk", "dv"), got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=ATOL, rtol=RTOL, msg=lambda m, n=name: f"{n}: {m}")


def test_a_query_that_sees_no_key_gets_zero_and_passes_no_gradient() -> None:
    q, k, v = qkv()
    mask = padding()  # sequence 1 is left-padded: causal queries 0..2 see no real key
    y, dq, dk, dv = with_grads(lambda *t: attention(*t, mask, True, 4), q, k, v)
    assert torch.isfinite(y).all() and torch.isfinite(dq).all()
    assert (y[1, :, :3] == 0).all()
    assert (dq[1, :, :3] == 0).all()
    assert (dk[~mask[:, None, :].expand(B, H, N)] == 0).all()  # padded keys get no gradient
    assert (dv[~mask[:, None, :].expand(B, H, N)] == 0).all()


@pytest.mark.parametrize("causal", [False, True])
def test_custom_backward_passes_gradcheck_in_float64(causal: bool) -> None:
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 7, 3, dtype=torch.float64, requires_grad=True) for _ in "qkv")
    mask = torch.tensor([[True, True, False, True, True, True, False]])
    assert torch.autograd.gradcheck(lambda *t: attention(*t, mask, causal, 3), (q, k, v))


def test_saved_statistic_is_the_log_sum_exp() -> None:
    q, k, v = qkv()
    mask = padding()
    scores = (q @ k.transpose(-1, -2)) * D**-0.5  # [b, h, n, n]
    allowed = mask[:, None, None, :] & torch.ones(N, N, dtype=torch.bool).tril()
    scores = scores.masked_fill(~allowed, -torch.inf)
    _, (lse,) = FlashAttention2Algorithm().forward(q, k, v, mask, True, block=6)
    # logsumexp of an all -inf row is -inf: the queries of sequence 1 before its first key.
    torch.testing.assert_close(lse, scores.logsumexp(-1), atol=1e-5, rtol=1e-5)
    assert (lse[1, :, :3] == -torch.inf).all()


@pytest.mark.parametrize("causal", [False, True])
def test_same_output_as_flashattention_one_without_rescaling_in_the_loop(causal: bool) -> None:
    """FlashAttention-1 normalises O after every key block, FA-2 once at the end: same O."""
    q, k, v = qkv()
    mask = padding()
    o1, (ell, m) = FlashAttention1Algorithm().forward(q, k, v, mask, causal, block=4)
    o2, (lse,) = FlashAttention2Algorithm().forward(q, k, v, mask, causal, block=4)
    torch.testing.assert_close(o2, o1, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(lse, m + ell.log(), atol=1e-6, rtol=1e-5)


def test_only_linear_size_tensors_are_saved_for_the_backward() -> None:
    """Q, K, V, O, the mask and the log-sum-exp L only: never an [n, n] or [n, block] tile."""
    q, k, v = (t.requires_grad_() for t in qkv())
    saved: list[Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        attention(q, k, v, padding(), True, 4)
    shapes = sorted(tuple(t.shape) for t in saved)
    assert shapes == sorted([(B, H, N, D)] * 4 + [(B, N)] + [(B, H, N)]), shapes


@pytest.mark.parametrize("causal", [False, True])
def test_training_memory_grows_linearly(causal: bool) -> None:
    """Peak live bytes of forward + backward on meta tensors: doubling n doubles them."""
    peaks = []
    for n in (1024, 2048, 4096):
        q, k, v = (torch.randn(1, 2, n, 16, device="meta", requires_grad=True) for _ in "qkv")

        def run(q: Tensor = q, k: Tensor = k, v: Tensor = v) -> None:
            attention(q, k, v, causal=causal, block_size=64).sum().backward()

        peaks.append(peak_live_bytes(run))
    assert 1.9 < peaks[1] / peaks[0] < 2.1 and 1.9 < peaks[2] / peaks[1] < 2.1, peaks
    # Far below the n x n float32 score matrix of one head at the largest length.
    assert peaks[-1] < 4096 * 4096 * 4 / 4, peaks


def test_fused_kernel_option_equals_reference() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 37, 32)
    mask = torch.ones(2, 37, dtype=torch.bool)
    mask[1, 25:] = False
    for causal in (False, True):
        torch.manual_seed(3)
        ref = implementations.build("flash-attention-2", dim=32, heads=4, causal=causal)
        torch.manual_seed(3)
        fused = implementations.build(
            "flash-attention-2", dim=32, heads=4, causal=causal, kernel="fused"
        )
        torch.testing.assert_close(ref(x, mask), fused(x, mask), atol=ATOL, rtol=RTOL)


def test_bfloat16_inputs_accumulate_in_float32() -> None:
    q, k, v = qkv()
    y16 = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), causal=True, block_size=8)
    assert y16.dtype == torch.bfloat16
    y = exact(q.bfloat16().float(), k.bfloat16().float(), v.bfloat16().float(), causal=True)
    torch.testing.assert_close(y16.float(), y, atol=1e-2, rtol=1e-2)
