"""Set Transformer ISAB and PMA (Lee et al., 2019) against explicit computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import implementations
from implementations.set_transformer import PoolingByMultiheadAttention

B, N, DIM, HEADS, M = 2, 19, 24, 3, 5


def layer() -> nn.Module:
    torch.manual_seed(0)
    return implementations.build(
        "set-transformer", dim=DIM, heads=HEADS, num_inducing_points=M
    ).eval()


def multihead(x: Tensor, y: Tensor, proj: nn.Module, mask_y: Tensor | None) -> Tensor:
    """Multihead(X, Y, Y) written out head by head, with the module's weights."""
    q, k, v = proj.to_q(x), proj.to_k(y), proj.to_v(y)  # [b, n|m, h * e]
    e = q.shape[-1] // HEADS
    heads = []
    for i in range(HEADS):
        part = slice(i * e, (i + 1) * e)
        scores = q[..., part] @ k[..., part].transpose(1, 2) / math.sqrt(e)  # [b, n, m]
        if mask_y is not None:
            scores = scores.masked_fill(~mask_y[:, None, :], -math.inf)
        heads.append(scores.softmax(-1) @ v[..., part])
    return proj.to_out(torch.cat(heads, dim=-1))


def test_isab_matches_explicit_two_step_computation() -> None:
    isab = layer()
    torch.manual_seed(1)
    x = torch.randn(B, N, DIM)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[1, 12:] = False
    mab = isab.summarise
    # Step 1: H = MAB(I, X) = LN(H' + ReLU(W H' + b)), H' = LN(I + Multihead(I, X, X)).
    inducing = isab.inducing_points.expand(B, -1, -1)
    h = mab.norm_1(inducing + multihead(inducing, x, mab.attention, mask))
    h = mab.norm_2(h + F.relu(mab.rff[0](h)))
    # Step 2: every element attends to the m induced vectors.
    expected = multihead(x, h, isab.attend, None)
    torch.testing.assert_close(isab(x, mask), expected, atol=1e-5, rtol=1e-4)


def test_isab_is_permutation_equivariant() -> None:
    isab = layer()
    torch.manual_seed(2)
    x = torch.randn(B, N, DIM)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 3:6] = False
    perm = torch.randperm(N)
    torch.testing.assert_close(
        isab(x[:, perm], mask[:, perm]), isab(x, mask)[:, perm], atol=1e-5, rtol=1e-4
    )


def test_isab_padding_equals_the_shorter_set() -> None:
    isab = layer()
    torch.manual_seed(3)
    x = torch.randn(1, N, DIM)
    mask = torch.ones(1, N, dtype=torch.bool)
    mask[0, 11:] = False
    torch.testing.assert_close(isab(x, mask)[:, :11], isab(x[:, :11]), atol=1e-5, rtol=1e-4)


def test_pma_is_permutation_invariant_and_ignores_padding() -> None:
    torch.manual_seed(4)
    pma = PoolingByMultiheadAttention(DIM, HEADS, num_seeds=3).eval()
    x = torch.randn(B, N, DIM)
    perm = torch.randperm(N)
    y = pma(x)
    assert y.shape == (B, 3, DIM) and pma.output_length(N) == 3
    torch.testing.assert_close(pma(x[:, perm]), y, atol=1e-5, rtol=1e-4)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[:, 7:] = False
    torch.testing.assert_close(pma(x, mask), pma(x[:, :7]), atol=1e-5, rtol=1e-4)


def test_pma_matches_explicit_mab() -> None:
    torch.manual_seed(5)
    pma = PoolingByMultiheadAttention(DIM, HEADS, num_seeds=2, layer_norm=False).eval()
    x = torch.randn(B, N, DIM)
    z = F.relu(pma.rff[0](x))  # rFF(Z)
    seeds = pma.seeds.expand(B, -1, -1)
    h = seeds + multihead(seeds, z, pma.mab.attention, None)  # no layer norms
    expected = h + F.relu(pma.mab.rff[0](h))
    torch.testing.assert_close(pma(x), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    ("options", "name"),
    [({"num_inducing_points": 0}, "num_inducing_points"), ({"causal": True}, "causal")],
)
def test_bad_options_are_rejected(options: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        implementations.build("set-transformer", dim=16, heads=4, **options)
