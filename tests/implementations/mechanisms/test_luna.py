"""Luna (Ma et al., 2021): pack and unpack attention against explicit dense oracles."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import implementations
from implementations._helpers import merge_heads, split_heads

B, H, N, DIM, L = 2, 4, 13, 32, 5
D = DIM // H


def build(causal: bool = False, tie_kv: bool = True) -> nn.Module:
    torch.manual_seed(0)
    return implementations.build(
        "luna", dim=DIM, heads=H, causal=causal, projected_length=L, tie_kv=tie_kv
    )


def inputs() -> tuple[Tensor, Tensor]:
    torch.manual_seed(1)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 9:] = False
    mask[1, :2] = False
    mask[1, 6] = False
    return torch.randn(B, N, DIM), mask


def heads(t: Tensor) -> Tensor:
    return split_heads(t, H).double()  # [b, h, n, d]


def softmax_attend(q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None) -> Tensor:
    """Explicit softmax(Q K^T / sqrt(d)) V over a [b, h, nq, nk] score matrix, float64."""
    scores = q @ k.transpose(-1, -2) / D**0.5
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    return scores.softmax(-1) @ v


@pytest.mark.parametrize("tie_kv", [True, False])
def test_pack_and_unpack_equal_dense_oracles(tie_kv: bool) -> None:
    layer = build(tie_kv=tie_kv)
    x, mask = inputs()
    y, packed = layer.pack_unpack(x, mask=mask)

    p = layer.p.expand(B, -1, -1)
    pk = heads(layer.to_pack_k(x))
    pv = pk if tie_kv else heads(layer.to_pack_v(x))
    expected_packed = merge_heads(softmax_attend(heads(layer.to_pack_q(p)), pk, pv, mask))
    torch.testing.assert_close(packed.double(), expected_packed, atol=1e-5, rtol=1e-4)

    k = heads(layer.to_k(expected_packed.float()))
    v = k if tie_kv else heads(layer.to_v(expected_packed.float()))
    o = softmax_attend(heads(layer.to_q(x)), k, v, None)
    expected_y = layer.to_out(merge_heads(o).float())
    torch.testing.assert_close(y, expected_y, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("tie_kv", [True, False])
def test_causal_form_equals_an_explicit_prefix_oracle(tie_kv: bool) -> None:
    """Y_t = softmax(q_t K_t^T / sqrt d) V_t, K_t = (1/t) sum_{s<=t} A_s^T k_s (real s only)."""
    layer = build(causal=True, tie_kv=tie_kv)
    x, mask = inputs()
    y, packed = layer.pack_unpack(x, mask=mask)
    assert packed is None

    pq = heads(layer.to_pack_q(layer.p.expand(B, -1, -1)))  # [b, h, l, d]
    pk = heads(layer.to_pack_k(x))  # [b, h, n, d]
    a = F.elu(pk @ pq.transpose(-1, -2) / D**0.5) + 1  # [b, h, n, l]
    q, k = heads(layer.to_q(x)), heads(layer.to_k(x))
    v = k if tie_kv else heads(layer.to_v(x))
    outs = []
    for t in range(N):
        real = mask[:, : t + 1].double()[:, None, :, None]  # [b, 1, t+1, 1]
        count = real.sum(dim=2, keepdim=True).clamp_min(1)  # [b, 1, 1, 1]
        a_t = a[:, :, : t + 1] * real  # [b, h, t+1, l]
        k_t = a_t.transpose(-1, -2) @ k[:, :, : t + 1] / count  # [b, h, l, d]
        v_t = a_t.transpose(-1, -2) @ v[:, :, : t + 1] / count  # [b, h, l, d]
        outs.append(softmax_attend(q[:, :, t : t + 1], k_t, v_t, None))
    expected = layer.to_out(merge_heads(torch.cat(outs, dim=2)).float())
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-4)


def test_packed_output_carries_to_the_next_layer() -> None:
    layer = build()
    x, mask = inputs()
    _, packed = layer.pack_unpack(x, mask=mask)
    p_next = F.layer_norm(packed + layer.p, (DIM,))  # [b, l, dim], per sequence
    y_next, packed_next = layer.pack_unpack(x, p=p_next, mask=mask)
    assert packed_next.shape == (B, L, DIM)
    # A per-sequence P changes the result: it is really used.
    assert not torch.allclose(y_next, layer(x, mask))
    # forward() is pack_unpack with the layer's own P.
    torch.testing.assert_close(layer(x, mask), layer.pack_unpack(x, p=layer.p, mask=mask)[0])


def test_pack_attention_ignores_padding() -> None:
    layer = build()
    x, mask = inputs()
    changed = torch.where(mask[..., None], x, torch.randn_like(x) * 5)
    _, packed = layer.pack_unpack(x, mask=mask)
    _, packed_changed = layer.pack_unpack(changed, mask=mask)
    torch.testing.assert_close(packed_changed, packed)
