"""Perceiver (Jaegle et al., 2021): latent cross-attention against an explicit oracle."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import implementations
from implementations.perceiver import CrossAttend, LatentSelfAttend

B, DIM, LATENTS = 2, 16, 6


def build(**options: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return implementations.build("perceiver", dim=DIM, heads=2, num_latents=LATENTS, **options)


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """Explicit softmax(q k^T / sqrt d) v on [b, nq, d] x [b, nk, d], single head."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # [b, nq, nk]
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, :], -torch.inf)
    return scores.softmax(-1) @ v


def cross_attend_oracle(
    block: CrossAttend, z: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """The paper's cross-attend, one head: residual attention of LN(z) over LN(x), then MLP."""
    zn = F.layer_norm(z, (DIM,), block.latent_norm.weight, block.latent_norm.bias)
    xn = F.layer_norm(x, (DIM,), block.input_norm.weight, block.input_norm.bias)
    p = block.proj
    z = z + p.to_out(attend(p.to_q(zn), p.to_k(xn), p.to_v(xn), mask))
    return z + block.mlp(block.mlp_norm(z))


@pytest.mark.parametrize("n", [1, 5, 40])
def test_output_length_is_num_latents(n: int) -> None:
    layer = build()
    y = layer(torch.randn(B, n, DIM))
    assert y.shape == (B, LATENTS, DIM) and layer.output_length(n) == LATENTS


def test_cross_attention_matches_oracle() -> None:
    layer = build(self_attends_per_block=0)
    x = torch.randn(B, 11, DIM)
    z0 = layer.latents.expand(B, -1, -1)
    expected = cross_attend_oracle(layer.cross_attends[0], z0, x)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-4)


def test_padded_inputs_are_not_keys() -> None:
    layer = build(self_attends_per_block=0)
    x = torch.randn(B, 11, DIM)
    mask = torch.ones(B, 11, dtype=torch.bool)
    mask[0, 7:] = False
    mask[1, :3] = False
    z0 = layer.latents.expand(B, -1, -1)
    expected = cross_attend_oracle(layer.cross_attends[0], z0, x, mask)
    torch.testing.assert_close(layer(x, mask), expected, atol=1e-5, rtol=1e-4)
    assert layer.output_mask(mask).all() and layer.output_mask(mask).shape == (B, LATENTS)


def test_repeats_share_weights_but_the_first_cross_attend() -> None:
    """num_blocks = 3: cross_0, latent stack, cross_1, latent stack, cross_1, latent stack."""
    layer = build(num_blocks=3, self_attends_per_block=1)
    assert len(layer.cross_attends) == 2 and len(layer.self_attends) == 1
    x = torch.randn(B, 9, DIM)
    latent: LatentSelfAttend = layer.self_attends[0]
    z = layer.latents.expand(B, -1, -1)
    for cross in (layer.cross_attends[0], layer.cross_attends[1], layer.cross_attends[1]):
        z = cross_attend_oracle(cross, z, x)
        zn = latent.attn_norm(z)
        heads = [slice(0, DIM // 2), slice(DIM // 2, DIM)]  # two latent heads
        q, k, v = latent.proj.to_q(zn), latent.proj.to_k(zn), latent.proj.to_v(zn)
        o = torch.cat([attend(q[..., s], k[..., s], v[..., s], None) for s in heads], dim=-1)
        z = z + latent.proj.to_out(o)
        z = z + latent.mlp(latent.mlp_norm(z))
    torch.testing.assert_close(layer(x), z, atol=1e-5, rtol=1e-4)


def test_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="num_latents"):
        implementations.build("perceiver", dim=DIM, heads=2, num_latents=0)
    with pytest.raises(ValueError, match="cross_heads"):
        implementations.build("perceiver", dim=DIM, heads=2, cross_heads=3)
