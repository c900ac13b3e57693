"""Compressive Transformer: memory rollover, compression, and the reconstruction loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import implementations
from implementations._helpers import split_heads
from implementations.compressive_transformer import CompressiveMemory


def build(**options: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return implementations.build("compressive-transformer", dim=8, heads=2, **options)


def test_memory_rollover_and_compression_lengths() -> None:
    """n_s = 6, n_m = 8, c = 2, n_cm = 4: 6 states evicted per segment become 3 slots."""
    layer = build(causal=True, mem_len=8, cmem_len=4, compression_rate=2)
    memory, lengths = None, []
    for _ in range(4):
        _, memory = layer(torch.randn(2, 6, 8), memory=memory)
        lengths.append((memory.mem.shape[1], memory.cmem.shape[1]))
    # seen 6 -> (6, 0); 12 -> (8, 2); 18 -> (8, 2 + 3); 24 -> (8, min(4, 5 + 3)).
    assert lengths == [(6, 0), (8, 2), (8, 4), (8, 4)]
    assert isinstance(memory, CompressiveMemory)
    assert not memory.mem.requires_grad and not memory.cmem.requires_grad


def test_mean_compression_stores_means_of_evicted_states() -> None:
    layer = build(mem_len=4, cmem_len=10, compression_rate=2, compression="mean")
    x1, x2 = torch.randn(1, 4, 8), torch.randn(1, 4, 8)
    _, memory = layer(x1)
    _, memory = layer(x2, memory=memory)
    torch.testing.assert_close(memory.mem, x2)  # the 4 newest states
    torch.testing.assert_close(memory.cmem, x1.view(1, 2, 2, 8).mean(2))  # x1, 2:1


def test_max_compression_and_a_partial_group_waits_in_memory() -> None:
    layer = build(mem_len=4, cmem_len=10, compression_rate=3, compression="max")
    x = torch.randn(1, 9, 8)
    _, memory = layer(x)
    # 5 states overflow; one group of 3 is compressed, the other 2 stay in memory.
    torch.testing.assert_close(memory.cmem, x[:, :3].max(dim=1, keepdim=True).values)
    torch.testing.assert_close(memory.mem, x[:, 3:])


def test_conv_compression_is_a_strided_convolution() -> None:
    layer = build(mem_len=0, cmem_len=10, compression_rate=3)
    x = torch.randn(2, 6, 8)
    _, memory = layer(x)
    conv = layer.compress_conv
    expected = F.conv1d(x.transpose(1, 2), conv.weight, conv.bias, stride=3).transpose(1, 2)
    torch.testing.assert_close(memory.cmem, expected)


def test_reconstruction_loss_formula() -> None:
    """|| attn(h, old) - attn(h, f_c(old)) ||^2 (mean), with content-only attention."""
    layer = build(causal=True, mem_len=4, cmem_len=4, compression_rate=2)
    x1, x2 = torch.randn(2, 4, 8), torch.randn(2, 4, 8)
    _, memory = layer(x1)
    assert layer.aux_loss.item() == 0.0  # nothing evicted yet
    _, memory = layer(x2, memory=memory)
    old = x1  # the 4 states evicted by x2
    new_cm = layer.compress(old)

    def attn(keys: torch.Tensor) -> torch.Tensor:
        q = split_heads(layer.proj.to_q(x2), 2)
        k = split_heads(layer.proj.to_k(keys), 2)
        v = split_heads(layer.proj.to_v(keys), 2)
        return (q @ k.transpose(-1, -2) / math.sqrt(4)).softmax(-1) @ v

    expected = ((attn(old) - attn(new_cm)) ** 2).mean()
    torch.testing.assert_close(layer.aux_loss, expected)
    torch.testing.assert_close(memory.cmem, new_cm.detach())


def test_reconstruction_loss_trains_the_compression_only() -> None:
    layer = build(causal=True, mem_len=4, cmem_len=4, compression_rate=2)
    x = torch.randn(2, 4, 8, requires_grad=True)
    _, memory = layer(torch.randn(2, 4, 8))
    layer(x, memory=memory)
    layer.aux_loss.backward()
    assert layer.compress_conv.weight.grad is not None
    assert layer.compress_conv.weight.grad.abs().sum() > 0
    assert x.grad is None
    for name, p in layer.named_parameters():
        if not name.startswith("compress_conv"):
            assert p.grad is None, f"{name} was trained by the reconstruction loss"


def test_compressed_memory_is_attended_before_the_memory() -> None:
    layer = build(causal=True, mem_len=2, cmem_len=4, compression_rate=2)
    x = torch.randn(1, 3, 8)
    memory = CompressiveMemory(torch.randn(1, 2, 8), torch.randn(1, 2, 8))
    y, _ = layer(x, memory=memory)
    y_without, _ = layer(x, memory=memory._replace(cmem=torch.zeros(1, 0, 8)))
    assert (y - y_without).abs().max() > 1e-3
    # Keys are [cm; m; h]: the compressed slots are the oldest positions.
    torch.testing.assert_close(y, layer.attend(x, torch.cat([memory.cmem, memory.mem], dim=1)))


@pytest.mark.parametrize("option", [{"compression": "median"}, {"compression_rate": 0}])
def test_invalid_options_are_rejected(option: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(option))):
        build(**option)
