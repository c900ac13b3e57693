"""Fast weight programmers (Schlag et al., 2021): DPFP, sum normalisation and the delta rule."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import implementations
from implementations.fast_weight_programmers import dpfp, sum_normalise


def dpfp_by_definition(x: Tensor, nu: int) -> Tensor:
    r"""$\phi_{i + 2d(j-1)} = r_i\, r_{(i - j) \bmod 2d}$ for $j = 1..\nu$, element by element."""
    r = torch.cat([x.clamp_min(0), (-x).clamp_min(0)])  # [2d]
    size = r.shape[0]
    return torch.tensor(
        [float(r[i] * r[(i - j) % size]) for j in range(1, nu + 1) for i in range(size)],
        dtype=x.dtype,
    )


@pytest.mark.parametrize("nu", [1, 2, 3])
def test_dpfp_equals_its_definition(nu: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(5, dtype=torch.float64)
    phi = dpfp(x, nu)
    assert phi.shape == (2 * 5 * nu,)
    assert (phi >= 0).all()
    torch.testing.assert_close(phi, dpfp_by_definition(x, nu))


def test_sum_normalised_features_sum_to_one_and_bound_the_key_norm() -> None:
    torch.manual_seed(1)
    phi = sum_normalise(dpfp(torch.randn(50, 8), nu=2))
    torch.testing.assert_close(phi.sum(-1), torch.ones(50))
    assert (phi.norm(dim=-1) <= 1 + 1e-6).all()  # hence I - beta k k^T is a contraction


def fast_weight_loop(layer: torch.nn.Module, x: Tensor, read_before_write: bool = False) -> Tensor:
    r"""The paper's equations with the fast weights $W$ ``[d, m]``, one token at a time (float64).

    $\bar v = W \phi(k)$, $W \leftarrow W + \beta (v - \bar v) \otimes \phi(k)$,
    $y = W \phi(q)$ (read before the write when ``read_before_write``). Returns the
    heads' outputs ``[b, n, h d]`` before the output projection.
    """
    heads, d = layer.proj.heads, layer.proj.dim_head
    outputs = []
    for b in range(x.shape[0]):
        per_head = []
        for h in range(heads):
            rows = slice(h * d, (h + 1) * d)
            w_fast = torch.zeros(d, 2 * d * layer.nu, dtype=torch.float64)
            ys = []
            for t in range(x.shape[1]):
                xt = x[b, t].double()
                q = layer.proj.to_q.weight.double()[rows] @ xt
                k = layer.proj.to_k.weight.double()[rows] @ xt
                v = layer.proj.to_v.weight.double()[rows] @ xt
                beta = torch.sigmoid(layer.to_beta.weight.double()[h] @ xt)
                phi_q, phi_k = dpfp(q, layer.nu), dpfp(k, layer.nu)
                phi_q, phi_k = phi_q / phi_q.sum(), phi_k / phi_k.sum()
                if read_before_write:
                    ys.append(w_fast @ phi_q)
                v_bar = w_fast @ phi_k
                w_fast = w_fast + beta * torch.outer(v - v_bar, phi_k)
                if not read_before_write:
                    ys.append(w_fast @ phi_q)
            per_head.append(torch.stack(ys))  # [n, d]
        outputs.append(torch.cat(per_head, dim=-1))  # [n, h d]
    return torch.stack(outputs)  # [b, n, h d]


def project(layer: torch.nn.Module, o: Tensor) -> Tensor:
    """Scale by d^-1/2 (the authors' code) and apply the output projection."""
    return layer.proj.to_out((o * layer.proj.dim_head**-0.5).float())


@pytest.mark.parametrize("nu", [1, 2])
def test_layer_equals_the_papers_fast_weight_loop(nu: int) -> None:
    torch.manual_seed(2)
    layer = implementations.build(
        "fast-weight-programmers", dim=16, heads=2, causal=True, nu=nu, chunk_size=4
    )
    x = torch.randn(2, 13, 16)
    with torch.no_grad():
        expected = project(layer, fast_weight_loop(layer, x))
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-4)


def test_non_causal_adds_the_reversed_programmer_reading_before_writing() -> None:
    torch.manual_seed(3)
    layer = implementations.build("fast-weight-programmers", dim=16, heads=2, chunk_size=4)
    x = torch.randn(2, 11, 16)
    forward = fast_weight_loop(layer, x)
    backward = fast_weight_loop(layer, x.flip(1), read_before_write=True).flip(1)
    with torch.no_grad():
        expected = project(layer, forward + backward)
        torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-4)


def test_padding_equals_removing_the_padded_tokens() -> None:
    torch.manual_seed(4)
    layer = implementations.build(
        "fast-weight-programmers", dim=16, heads=2, causal=True, chunk_size=4
    )
    x = torch.randn(1, 15, 16)
    mask = torch.ones(1, 15, dtype=torch.bool)
    mask[0, 2:6] = False
    with torch.no_grad():
        torch.testing.assert_close(
            layer(x, mask)[mask], layer(x[mask][None])[0], atol=1e-5, rtol=1e-4
        )


def test_step_equals_causal_forward_past_several_chunks() -> None:
    torch.manual_seed(5)
    layer = implementations.build(
        "fast-weight-programmers", dim=16, heads=2, causal=True, chunk_size=4
    )
    x = torch.randn(2, 19, 16)
    with torch.no_grad():
        y = layer(x)
        state, steps = layer.init_state(2), []
        for t in range(19):
            y_t, state = layer.step(x[:, t], state)
            steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), y, atol=1e-5, rtol=1e-4)
    assert state.shape == (2, 2, 2 * 8 * 2, 8)  # [b, h, m = 2 d nu, d]
