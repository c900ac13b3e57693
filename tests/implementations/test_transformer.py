"""The pre-norm Transformer of ``implementations.transformer`` and how each kind plugs in."""

from __future__ import annotations

import pytest
import torch

import implementations
from implementations.transformer import Transformer, TransformerOutput

DIM, HEADS = 16, 2


def first(kind: str) -> str:
    ids = implementations.available(kind)
    if not ids:
        pytest.skip(f"no mechanism of kind {kind!r} registered")
    return ids[0]


def test_encoder_output_and_padding() -> None:
    torch.manual_seed(0)
    model = Transformer(DIM, depth=2, heads=HEADS)
    x = torch.randn(2, 9, DIM)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    out = model(x, mask)
    assert isinstance(out, TransformerOutput)
    assert out.y.shape == (2, 9, DIM) and out.memories is None and out.mask is mask
    assert out.aux_loss.dtype == torch.float32 and out.aux_loss.item() == 0
    changed = model(torch.where(mask[..., None], x, torch.randn_like(x)), mask)
    torch.testing.assert_close(changed.y[mask], out.y[mask])


def test_causal_decoder_does_not_see_the_future() -> None:
    torch.manual_seed(0)
    model = Transformer(DIM, depth=3, heads=HEADS, causal=True)
    x = torch.randn(1, 12, DIM)
    x_future = x.clone()
    x_future[:, 7:] = torch.randn(1, 5, DIM)
    torch.testing.assert_close(model(x_future).y[:, :7], model(x).y[:, :7])


def test_memory_mechanisms_carry_memories() -> None:
    torch.manual_seed(0)
    model = Transformer(DIM, depth=2, heads=HEADS, attention=first("memory"), causal=True)
    segments = torch.randn(2, 1, 6, DIM).unbind(0)
    out = model(segments[0])
    assert out.memories is not None and len(out.memories) == 2
    with_memory = model(segments[1], memories=out.memories)
    without = model(segments[1])
    assert not torch.allclose(with_memory.y, without.y), "the memory should matter"
    with pytest.raises(ValueError, match="padding mask"):
        model(segments[0], torch.tensor([[True] * 5 + [False]]))
    with pytest.raises(ValueError, match="memories"):
        model(segments[1], memories=out.memories[:1])


def test_downsample_mechanisms_shrink_the_sequence() -> None:
    torch.manual_seed(0)
    id = first("downsample")
    model = Transformer(DIM, depth=2, heads=HEADS, attention=id)
    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[0, 15:] = False
    out = model(torch.randn(2, 20, DIM), mask)
    layer = implementations.build(id, dim=DIM, heads=HEADS)
    assert out.y.shape[1] == layer.output_length(layer.output_length(20))
    assert out.mask is not None and out.mask.shape == out.y.shape[:2]


def test_ffn_mechanisms_sum_aux_losses() -> None:
    torch.manual_seed(0)
    model = Transformer(DIM, depth=2, heads=HEADS, ffn=first("ffn"))
    out = model(torch.randn(2, 8, DIM))
    assert out.aux_loss.dim() == 0 and torch.isfinite(out.aux_loss)
    (out.y.sum() + out.aux_loss).backward()


def test_bad_configurations() -> None:
    with pytest.raises(ValueError, match="depth"):
        Transformer(DIM, depth=0, heads=HEADS)
    with pytest.raises(ValueError, match="ffn_options"):
        Transformer(DIM, depth=1, heads=HEADS, ffn_options={"experts": 2})
    with pytest.raises(KeyError):
        Transformer(DIM, depth=1, heads=HEADS, attention="dence")
    with pytest.raises(ValueError, match="unknown option"):
        Transformer(DIM, depth=1, heads=HEADS, attention_options={"block": 3})
    ffn = first("ffn")
    with pytest.raises(ValueError, match="ffn"):
        Transformer(DIM, depth=1, heads=HEADS, attention=ffn)
    with pytest.raises(ValueError, match="ffn"):
        Transformer(DIM, depth=1, heads=HEADS, ffn="dense")


def test_funnel_residual_is_pooled_like_its_queries() -> None:
    """With an odd length, a stride-2 funnel pools windows [0,2), [2,4), [4,5) of the stream."""
    from implementations.funnel_transformer import pool

    torch.manual_seed(0)
    model = Transformer(dim=16, depth=1, heads=2, attention="funnel-transformer")
    layer = model.attns[0]
    x = torch.randn(2, 5, 16)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    residual = model._pool_residual(layer, x, mask, 3)
    pooled_mask = implementations.apply(layer, x, mask).mask
    expected, expected_mask = pool(x, mask, stride=2)
    torch.testing.assert_close(residual, expected)
    assert pooled_mask.tolist() == expected_mask.tolist() == [[True] * 3, [True, True, False]]
