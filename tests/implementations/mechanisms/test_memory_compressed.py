"""Memory-compressed attention (Liu et al., 2018) against explicit dense oracles."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import implementations
from implementations import dense
from implementations.memory_compressed import attention

B, H, N, D = 2, 3, 23, 8


def qkv() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, B, H, N, D).unbind(0)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 17:] = False
    mask[1, 4:6] = False
    return q, k, v, mask


@pytest.mark.parametrize("causal", [False, True])
def test_local_with_one_block_is_dense(causal: bool) -> None:
    q, k, v, mask = qkv()
    out = attention(q, k, v, mask, causal, block_size=N)
    expected = dense.attention(q, k, v, mask=mask, causal=causal)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_local_blocks_equal_dense_with_block_diagonal_mask(causal: bool) -> None:
    q, k, v, mask = qkv()
    block = torch.arange(N) // 5
    allowed = (block[:, None] == block[None, :]) & mask[:, None, None, :]  # [b, 1, n, n]
    out = attention(q, k, v, mask, causal, block_size=5)
    expected = dense.attention(q, k, v, mask=allowed, causal=causal)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_memory_equals_dense_over_compressed_keys(causal: bool) -> None:
    """Slot j (tokens 3j .. 3j+2) is visible to query i iff 3j + 2 <= i when causal."""
    q, k, v, mask = qkv()
    s, m = 3, 8  # ceil(23 / 3) slots
    k_mem, v_mem = torch.randn(2, B, H, m, D).unbind(0)
    mask_mem = torch.ones(B, m, dtype=torch.bool)
    mask_mem[0, 6:] = False
    out = attention(q, k, v, mask, causal, memory=(k_mem, v_mem, mask_mem), compression=s)
    allowed = mask_mem[:, None, None, :].expand(B, 1, N, m)
    if causal:
        slot_end = (torch.arange(m) + 1) * s - 1
        allowed = allowed & (slot_end[None, :] <= torch.arange(N)[:, None])
    expected = dense.attention(q, k_mem, v_mem, mask=allowed)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    if causal:  # queries 0 and 1 precede the end of the first slot: nothing to see
        assert torch.all(out[:, :, :2] == 0)


def test_local_plus_memory_duplicated_keys_is_dense() -> None:
    """Local block = whole sequence and memory = the same keys: duplicates renormalise away."""
    q, k, v, mask = qkv()
    out = attention(q, k, v, mask, block_size=N, memory=(k, v, mask), compression=1)
    torch.testing.assert_close(out, dense.attention(q, k, v, mask=mask), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_module_matches_conv_oracle(causal: bool) -> None:
    """The module equals dense attention of its queries over its own conv-compressed keys."""
    torch.manual_seed(0)
    layer = implementations.build(
        "memory-compressed", dim=24, heads=3, causal=causal, compression=3
    ).eval()
    x = torch.randn(B, N, 24)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[1, 20:] = False
    with torch.no_grad():
        y = layer(x, mask)
        proj = layer.proj
        q, _, _ = proj.qkv(x)
        zeroed = x.masked_fill(~mask[..., None], 0)
        keys = F.pad(proj.to_k(zeroed), (0, 0, 0, 1)).transpose(1, 2)  # pad 23 -> 24 tokens
        values = F.pad(proj.to_v(zeroed), (0, 0, 0, 1)).transpose(1, 2)
        k_mem = layer.compress_k(keys).transpose(1, 2).unflatten(-1, (3, 8)).transpose(1, 2)
        v_mem = layer.compress_v(values).transpose(1, 2).unflatten(-1, (3, 8)).transpose(1, 2)
        slot_real = F.pad(mask, (0, 1)).view(B, 8, 3).any(-1)  # [b, m]
        allowed = slot_real[:, None, None, :].expand(B, 1, N, 8)
        if causal:
            allowed = allowed & ((torch.arange(8) + 1) * 3 - 1 <= torch.arange(N)[:, None])
        expected = proj.out(dense.attention(q, k_mem, v_mem, mask=allowed))
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-4)


def test_local_mode_has_no_compression_parameters() -> None:
    layer = implementations.build("memory-compressed", dim=16, heads=2, mode="local")
    assert layer.compress_k is None and layer.compress_v is None


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="mode"):
        implementations.build("memory-compressed", dim=16, heads=2, mode="global")
    with pytest.raises(ValueError, match="compression"):
        implementations.build("memory-compressed", dim=16, heads=2, compression=0)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("block_size", [None, 5])
def test_fused_path_matches_reference(causal: bool, padded: bool, block_size: int | None) -> None:
    from implementations.memory_compressed import reference_attention

    q, k, v, mask = qkv()
    s, m = 3, 8
    k_mem, v_mem = torch.randn(2, B, H, m, D).unbind(0)
    mask_mem = torch.ones(B, m, dtype=torch.bool)
    mask_mem[0, 6:] = False
    memory = (k_mem, v_mem, mask_mem if padded else None)
    options = {"block_size": block_size, "memory": memory, "compression": s}
    key_mask = mask if padded else None
    out = attention(q, k, v, key_mask, causal, **options)
    expected = reference_attention(q, k, v, key_mask, causal, **options)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
