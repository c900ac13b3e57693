"""DeltaNet (Yang et al., 2024): the chunkwise WY form equals the sequential delta rule."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import implementations
from implementations._chunked_linear import (
    bidirectional,
    delta_chunkwise,
    delta_recurrent,
    ut_transform,
)
from implementations.deltanet import feature_map

B, H, N, D, DV = 2, 3, 45, 6, 5


def inputs() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """float64 queries, unit keys, values and learning rates."""
    torch.manual_seed(0)
    q = torch.randn(B, H, N, D, dtype=torch.float64)
    k = F.normalize(torch.randn(B, H, N, D, dtype=torch.float64), dim=-1)
    v = torch.randn(B, H, N, DV, dtype=torch.float64)
    beta = torch.rand(B, H, N, dtype=torch.float64)
    return q, k, v, beta


def naive_delta_rule(q: Tensor, k: Tensor, v: Tensor, beta: Tensor) -> Tensor:
    r"""The paper's $S_t = S_{t-1} - \beta_t (S_{t-1} k_t - v_t) k_t^\top$, $o_t = S_t q_t$.

    Written in the paper's orientation (``S`` is ``[dv, dk]``), one token at a time.
    """
    s = torch.zeros(*q.shape[:-2], v.shape[-1], q.shape[-1], dtype=q.dtype)  # [b, h, dv, dk]
    out = []
    for t in range(q.shape[-2]):
        k_t, v_t, b_t = k[..., t, :], v[..., t, :], beta[..., t, None, None]
        s = s - b_t * ((s @ k_t[..., None]) - v_t[..., None]) @ k_t[..., None, :]
        out.append((s @ q[..., t, :, None])[..., 0])
    return torch.stack(out, dim=-2)


def test_shared_recurrence_equals_the_papers_update() -> None:
    q, k, v, beta = inputs()
    torch.testing.assert_close(delta_recurrent(q, k, v, beta)[0], naive_delta_rule(q, k, v, beta))


@pytest.mark.parametrize("chunk_size", [1, 4, 16, 64])
def test_chunkwise_equals_sequential_delta_rule(chunk_size: int) -> None:
    q, k, v, beta = inputs()
    got = delta_chunkwise(q, k, v, beta, chunk_size=chunk_size)
    torch.testing.assert_close(got, naive_delta_rule(q, k, v, beta))


def test_chunkwise_gradients_equal_sequential_gradients() -> None:
    leaves = [t.requires_grad_() for t in inputs()]
    weights = torch.randn(B, H, N, DV, dtype=torch.float64)
    (delta_chunkwise(*leaves, chunk_size=8) * weights).sum().backward()
    chunk_grads = [t.grad.clone() for t in leaves]
    for t in leaves:
        t.grad = None
    (naive_delta_rule(*leaves) * weights).sum().backward()
    for got, leaf in zip(chunk_grads, leaves, strict=True):
        torch.testing.assert_close(got, leaf.grad)


def test_float32_chunkwise_matches_float64() -> None:
    q, k, v, beta = inputs()
    got = delta_chunkwise(*(t.float() for t in (q, k, v, beta)))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), naive_delta_rule(q, k, v, beta), atol=1e-5, rtol=1e-4)


def test_wy_representation_of_the_householder_product() -> None:
    r"""$\prod_t (I - \beta_t k_t k_t^\top) = I - K^\top W$ and the states' $\sum k_i u_i^\top$."""
    _, k, v, beta = inputs()
    k, v, beta = k[0, 0, :9], v[0, 0, :9], beta[0, 0, :9]
    w, u = ut_transform(k, v, beta)
    product = torch.eye(D, dtype=torch.float64)
    for t in range(9):
        product = (torch.eye(D, dtype=torch.float64) - beta[t] * torch.outer(k[t], k[t])) @ product
    torch.testing.assert_close(product, torch.eye(D, dtype=torch.float64) - k.T @ w)
    _, state = delta_recurrent(k[None], k[None], v[None], beta[None])  # from a zero state
    torch.testing.assert_close(state[0], k.T @ u)


def test_beta_one_with_orthonormal_keys_stores_exactly() -> None:
    """The delta rule overwrites: re-writing a key replaces its value instead of adding."""
    keys = torch.eye(4, dtype=torch.float64)[[0, 1, 0, 2]]  # key 0 written twice
    values = torch.randn(4, 3, dtype=torch.float64)
    _, state = delta_recurrent(keys, keys, values, torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(state[0], values[2])  # the last value written for key 0
    torch.testing.assert_close(state[1], values[1])
    torch.testing.assert_close(state[3], torch.zeros(3, dtype=torch.float64))


def test_bidirectional_is_forward_plus_exclusive_backward() -> None:
    q, k, v, beta = inputs()
    got = bidirectional(delta_chunkwise, q, k, v, beta, gate_is_decay=False, chunk_size=8)
    flipped = (q.flip(-2), k.flip(-2), v.flip(-2), beta.flip(-1))
    # Backward, current token excluded: position t reads the state before its own write.
    state = torch.zeros(B, H, D, DV, dtype=torch.float64)
    reads = []
    for t in range(N):
        reads.append(torch.einsum("bhd,bhde->bhe", flipped[0][..., t, :], state))
        one = [x[..., t : t + 1, :] for x in flipped[:3]]
        _, state = delta_recurrent(*one, flipped[3][..., t : t + 1], state)
    exclusive = torch.stack(reads, dim=-2)  # [b, h, n, dv], reversed order
    torch.testing.assert_close(
        delta_chunkwise(*flipped, chunk_size=5, include_current=False), exclusive
    )
    forward, _ = delta_recurrent(q, k, v, beta)
    torch.testing.assert_close(got, forward + exclusive.flip(-2))


def test_feature_map_is_silu_then_l2_normalisation() -> None:
    x = torch.randn(4, 7)
    phi = feature_map(x)
    torch.testing.assert_close(phi, F.silu(x) / F.silu(x).norm(dim=-1, keepdim=True))
    torch.testing.assert_close(phi.norm(dim=-1), torch.ones(4))


def test_layer_equals_the_sequential_delta_rule() -> None:
    torch.manual_seed(1)
    layer = implementations.build("deltanet", dim=24, heads=3, causal=True, chunk_size=8)
    x = torch.randn(2, 21, 24)
    q, k, v, beta = (t.double() for t in layer._project(x))
    assert ((beta > 0) & (beta < 1)).all()
    o = naive_delta_rule(q, k, v, beta)
    o = F.rms_norm(o, o.shape[-1:], layer.norm.weight.double(), layer.norm.eps)
    expected = layer.proj.to_out(o.transpose(1, 2).flatten(2).float())
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-4)


def test_padding_equals_removing_the_padded_tokens() -> None:
    """A padded token has beta = 0: it leaves the state as it was."""
    torch.manual_seed(2)
    layer = implementations.build("deltanet", dim=16, heads=2, causal=True, chunk_size=4)
    x = torch.randn(1, 15, 16)
    mask = torch.ones(1, 15, dtype=torch.bool)
    mask[0, 3:8] = False
    with torch.no_grad():
        torch.testing.assert_close(
            layer(x, mask)[mask], layer(x[mask][None])[0], atol=1e-5, rtol=1e-4
        )


def test_step_equals_causal_forward_past_several_chunks() -> None:
    torch.manual_seed(3)
    layer = implementations.build("deltanet", dim=16, heads=2, causal=True, chunk_size=4)
    x = torch.randn(2, 19, 16)
    with torch.no_grad():
        y = layer(x)
        state, steps = layer.init_state(2), []
        for t in range(19):
            y_t, state = layer.step(x[:, t], state)
            steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), y, atol=1e-5, rtol=1e-4)
