"""One conformance suite for every registered mechanism, dispatching on its kind.

Each test is parametrized over ``implementations.available()``, so a mechanism is covered
as soon as its module registers itself. What is checked (see the implementation spec):

* the registry: unknown options / ids / unsupported ``causal=True`` fail loudly;
* shapes, dtypes and finite outputs (float32 and bfloat16), for several lengths;
* gradients reach every parameter;
* batch elements are independent;
* the key-padding mask is respected (every kind but ``memory``, whose contract has none),
  and inside the Transformer for every attention-slot mechanism with every feed-forward;
* bad arguments fail with a clear error naming them: every option at out-of-range values,
  a non-bool ``causal``, an empty sequence;
* causal variants leak nothing from the future (where the catalog says the paper decodes,
  or, without a catalog entry, where the mechanism registers ``supports_causal``);
* seeded determinism;
* a mechanism with a recurrent step form (``init_state`` / ``step``, see
  [implementations._registry][]) decodes token by token exactly as its causal forward
  computes the whole sequence, and refuses to step when built non-causal;
* the mechanism runs inside :class:`implementations.transformer.Transformer`;
* the same on CUDA when available.

Every mechanism is called through ``implementations.apply``, which knows each kind's
contract. Sizes are tiny (``dim`` 32, 4 heads, n = 37 so that block sizes never divide
it); where a mechanism's paper defaults are huge, ``SMALL_OPTIONS`` overrides them.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import inspect
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import implementations
from implementations import Applied
from implementations.transformer import Transformer

DIM, HEADS, N, BATCH = 32, 4, 37, 2

# Per-mechanism options for tiny inputs (block sizes, numbers of landmarks, ...), keyed by
# id. Mechanisms absent here are built with their paper defaults.
SMALL_OPTIONS: dict[str, dict[str, Any]] = {
    "big-bird": {"block_size": 4, "num_random_blocks": 2},
    "block-recurrent-transformer": {"window_size": 8, "state_size": 4},
    "cluster-former": {"n_clusters": 4, "window_size": 8, "stride": 4},
    "compressive-transformer": {"mem_len": 16, "cmem_len": 8},
    "etc": {"local_radius": 3, "global_tokens": 3, "relative_max_distance": 2},
    "flash-attention": {"block_size": 8},
    "flash-attention-2": {"block_size": 8},
    "glam": {"experts": 4},
    "grouped-query-attention": {"kv_heads": 2},
    "gshard": {"experts": 4, "group_size": 16},
    "image-transformer": {"query_block": 8, "memory_flange": 8},
    "linformer": {"k": 8, "max_seq_len": 64},
    "long-short-transformer": {"window_size": 4, "rank": 3, "segment_size": 4},
    "longformer": {"attention_window": 4, "attention_dilation": (1, 2, 1, 3), "global_tokens": 2},
    "memory-compressed": {"block_size": 8},
    "nystromformer": {"num_landmarks": 8, "conv_kernel_size": 3},
    "perceiver": {"num_latents": 8, "self_attends_per_block": 1},
    "performer": {"nb_features": 16},
    "poolingformer": {
        "first_level_window": 4,
        "second_level_window": 16,
        "pooling_kernel_size": 3,
        "pooling_stride": 2,
    },
    "product-key-memory": {"n_keys": 16, "k_dim": 32, "topk": 4},
    "random-feature-attention": {"nb_features": 16},
    "reformer": {"bucket_size": 8, "n_hashes": 2},  # 10 buckets of 4 at n = 37
    "routing-transformer": {"n_clusters": 4},
    "scaling-transformers": {"block_size": 8, "d_lowrank": 8},
    "set-transformer": {"num_inducing_points": 5},
    "sinkhorn-transformer": {"block_size": 4},
    "sparse-transformer": {"stride": 8, "summary": 2},
    "st-moe": {"experts": 4},
    "streaming-llm": {"sink_tokens": 2, "window_size": 8},
    "switch-transformer": {"experts": 4},
    "synthesizer": {"max_seq_len": 64},
    "transformer-xl": {"mem_len": 16},
}

# Tolerances: float32 comparisons of two runs that should agree exactly up to rounding.
ATOL, RTOL = 1e-5, 1e-4

IDS = implementations.available()


# --------------------------------------------------------------------------- helpers


def kind_of(id: str) -> str:
    return implementations.mechanism(id).kind


def small_options(id: str) -> dict[str, Any]:
    """``SMALL_OPTIONS`` of ``id`` that it still has (see ``test_small_options_exist``)."""
    known = implementations.mechanism(id).options
    return {k: v for k, v in SMALL_OPTIONS.get(id, {}).items() if k in known}


def make(id: str, causal: bool = False, seed: int = 0, device: str = "cpu") -> nn.Module:
    """Build ``id`` small, with seeded initialisation."""
    torch.manual_seed(seed)
    module = implementations.build(id, dim=DIM, heads=HEADS, causal=causal, **small_options(id))
    return module.to(device)


def call(
    module: nn.Module,
    x: Tensor,
    mask: Tensor | None = None,
    memory: Any = None,
    seed: int | None = 0,
) -> Applied:
    """Run ``module`` under its kind's contract, through ``implementations.apply``.

    It reseeds first, so mechanisms that draw randomness in forward (random features, hash
    rotations) draw the same numbers in the runs a test compares.
    """
    if seed is not None:
        torch.manual_seed(seed)
    return implementations.apply(module, x, mask, memory=memory)


def takes_mask(module: nn.Module) -> bool:
    """Whether the kind's contract has a key-padding mask (all but ``memory``)."""
    return module.kind != "memory"


def tensors(tree: Any) -> Iterator[Tensor]:
    """Every tensor inside a memory (a tensor, or nested lists / tuples / dicts of them)."""
    if isinstance(tree, Tensor):
        yield tree
    elif isinstance(tree, (list, tuple)):
        for item in tree:
            yield from tensors(item)
    elif isinstance(tree, dict):
        for item in tree.values():
            yield from tensors(item)


def padding_mask(batch: int = BATCH, n: int = N, device: str = "cpu") -> Tensor:
    """Right padding in sequence 0; left padding, a hole and right padding in sequence 1."""
    mask = torch.ones(batch, n, dtype=torch.bool, device=device)
    mask[0, 30:] = False
    mask[1, :2] = False
    mask[1, 10:12] = False
    mask[1, -3:] = False
    return mask


def expected_length(module: nn.Module, n: int) -> int:
    return module.output_length(n) if module.kind == "downsample" else n


@functools.cache
def catalog_decode(id: str) -> bool | None:
    """The catalog's ``decode`` flag for ``id``; None when there is no catalog entry."""
    if importlib.util.find_spec("tools.catalog") is None:
        return None  # the catalog tooling is not there: fall back to the registry
    entry = _catalog_entries().get(id)
    return None if entry is None else bool(entry.decode)


@functools.cache
def _catalog_entries() -> dict[str, Any]:
    from tools.catalog import load_catalog

    return dict(load_catalog().entries)


def decodes(id: str) -> bool:
    """Whether ``id`` must support leak-free causal decoding."""
    decode = catalog_decode(id)
    return implementations.mechanism(id).supports_causal if decode is None else decode


def causal_flags(id: str) -> list[bool]:
    return [False, True] if implementations.mechanism(id).supports_causal else [False]


def each_causal(test: Callable[..., None]) -> Callable[..., None]:
    """Parametrize a test over ``(id, causal)`` for every id and its supported variants."""
    cases = [
        pytest.param(id, c, id=f"{id}-{'causal' if c else 'bidir'}")
        for id in IDS
        for c in causal_flags(id)
    ]
    return pytest.mark.parametrize(("id", "causal"), cases)(test)


by_id = pytest.mark.parametrize("id", IDS)


# --------------------------------------------------------------------------- registry


def test_unknown_id_suggests_close_matches() -> None:
    with pytest.raises(KeyError, match="dense"):
        implementations.build("dence", dim=DIM, heads=HEADS)


@by_id
def test_small_options_exist(id: str) -> None:
    """The small options of this file still name options of the mechanism."""
    stale = set(SMALL_OPTIONS.get(id, {})) - set(implementations.mechanism(id).options)
    assert not stale, f"update SMALL_OPTIONS[{id!r}] in this file: unknown {sorted(stale)}"


@by_id
def test_unknown_option_is_named(id: str) -> None:
    with pytest.raises(ValueError, match="not_an_option"):
        implementations.build(id, dim=DIM, heads=HEADS, not_an_option=1)


@by_id
def test_options_have_defaults_and_build(id: str) -> None:
    record = implementations.mechanism(id)
    missing = [k for k, v in record.options.items() if v is inspect.Parameter.empty]
    assert not missing, f"options without a paper default: {missing}"
    assert record.kind in ("attention", "memory", "downsample", "ffn")
    implementations.build(id, dim=64, heads=4)  # the paper defaults are valid


@by_id
def test_unsupported_causal_is_rejected(id: str) -> None:
    if implementations.mechanism(id).supports_causal:
        pytest.skip("supports causal")
    with pytest.raises(ValueError, match="causal"):
        implementations.build(id, dim=DIM, heads=HEADS, causal=True)


@by_id
def test_catalog_decode_flag_matches_registry(id: str) -> None:
    decode = catalog_decode(id)
    if decode is None:
        pytest.skip("no catalog entry")
    assert implementations.mechanism(id).supports_causal == decode, (
        f"catalog says decode={decode} but the registry says "
        f"supports_causal={implementations.mechanism(id).supports_causal}"
    )


@by_id
def test_documented(id: str) -> None:
    cls = implementations.mechanism(id).cls
    module_doc = inspect.getmodule(cls).__doc__ or ""
    assert len(module_doc) > 200, "the module docstring should present the paper and its math"
    assert "Examples:" in (cls.__doc__ or "") and ">>>" in cls.__doc__


# --------------------------------------------------------------------------- forward


@each_causal
@pytest.mark.parametrize("n", [1, 2, N])
def test_shapes_and_finite(id: str, causal: bool, n: int) -> None:
    module = make(id, causal)
    x = torch.randn(BATCH, n, DIM)
    out = call(module, x)
    assert out.y.shape == (BATCH, expected_length(module, n), DIM)
    assert out.y.dtype == x.dtype
    assert torch.isfinite(out.y).all()
    assert out.aux_loss.dim() == 0 and torch.isfinite(out.aux_loss)
    if module.kind == "memory":
        assert all(torch.isfinite(t).all() for t in tensors(out.memory))
        y2 = call(module, torch.randn(BATCH, n, DIM), memory=out.memory).y
        assert y2.shape == out.y.shape and torch.isfinite(y2).all()


@each_causal
def test_masked_forward_is_finite(id: str, causal: bool) -> None:
    """Even padded positions (and fully masked causal rows) must stay finite."""
    module = make(id, causal)
    if not takes_mask(module):
        pytest.skip("no padding mask in this kind's contract")
    assert torch.isfinite(call(module, torch.randn(BATCH, N, DIM), padding_mask()).y).all()


@each_causal
def test_gradients_reach_every_parameter(id: str, causal: bool) -> None:
    module = make(id, causal).train()
    x = torch.randn(BATCH, N, DIM, requires_grad=True)
    out = call(module, x, padding_mask() if takes_mask(module) else None)
    loss = out.y.float().sum() + out.aux_loss
    if module.kind == "memory":  # a second segment, so memory-only parameters are used
        out2 = call(module, torch.randn(BATCH, N, DIM), memory=out.memory)
        loss = loss + out2.y.float().sum() + out2.aux_loss
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in module.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"parameter {name} receives no gradient"
            assert torch.isfinite(p.grad).all(), f"non-finite gradient in {name}"


@each_causal
def test_batch_independence(id: str, causal: bool) -> None:
    module = make(id, causal).eval()
    x = torch.randn(BATCH, N, DIM)
    x_other = x.clone()
    x_other[1] = torch.randn(N, DIM) * 2
    with torch.no_grad():
        y = call(module, x).y
        y_other = call(module, x_other).y
        y_alone = call(module, x[:1]).y
    torch.testing.assert_close(y_other[0], y[0], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(y_alone[0], y[0], atol=ATOL, rtol=RTOL)


@each_causal
def test_padding_mask_is_respected(id: str, causal: bool) -> None:
    """Changing padded tokens leaves real tokens' outputs unchanged; all-True == no mask."""
    module = make(id, causal).eval()
    if not takes_mask(module):
        pytest.skip("no padding mask in this kind's contract")
    x = torch.randn(BATCH, N, DIM)
    if module.kind != "downsample":
        mask = padding_mask()
    else:  # outputs map to windows of inputs: keep a clean prefix of 24 real tokens
        mask = torch.ones(BATCH, N, dtype=torch.bool)
        mask[0, 24:] = False
    x_changed = torch.where(mask[..., None], x, torch.randn_like(x) * 2 + 1)
    with torch.no_grad():
        y = call(module, x, mask).y
        y_changed = call(module, x_changed, mask).y
        y_nomask = call(module, x).y
        y_allreal = call(module, x, torch.ones(BATCH, N, dtype=torch.bool)).y
    torch.testing.assert_close(y_allreal, y_nomask, atol=ATOL, rtol=RTOL)
    if module.kind != "downsample":
        torch.testing.assert_close(y_changed[mask], y[mask], atol=ATOL, rtol=RTOL)
    else:
        real = module.output_length(24)
        torch.testing.assert_close(y_changed[0, :real], y[0, :real], atol=ATOL, rtol=RTOL)
        torch.testing.assert_close(y_changed[1], y[1], atol=ATOL, rtol=RTOL)


@by_id
def test_causal_leaks_nothing_from_the_future(id: str) -> None:
    """Perturbing tokens t.. leaves every output before t unchanged."""
    if not decodes(id):
        pytest.skip("the paper's mechanism does not decode autoregressively")
    if not implementations.mechanism(id).supports_causal:
        pytest.fail("the catalog says this mechanism decodes, but causal=True is unsupported")
    module = make(id, causal=True).eval()
    x = torch.randn(BATCH, N, DIM)
    with torch.no_grad():
        memory = call(module, torch.randn(BATCH, N, DIM)).memory
        y = call(module, x, memory=memory).y
        for t in (1, 13, 30, N - 1):
            x_future = x.clone()
            x_future[:, t:] = torch.randn(BATCH, N - t, DIM) * 2
            y_future = call(module, x_future, memory=memory).y
            # For downsampling, an output may cover a window that straddles t.
            before = max(module.output_length(t) - 1, 0) if module.kind == "downsample" else t
            torch.testing.assert_close(
                y_future[:, :before],
                y[:, :before],
                atol=ATOL,
                rtol=RTOL,
                msg=lambda m, t=t: f"outputs before {t} changed when tokens >= {t} did: {m}",
            )


STEPPED = [id for id in IDS if hasattr(implementations.mechanism(id).cls, "step")]


def _steps(module: nn.Module, x: Tensor) -> Tensor:
    """Run ``module.step`` over ``x`` one token at a time: ``[b, n, dim]`` outputs."""
    state = module.init_state(x.shape[0], device=x.device, dtype=x.dtype)
    outputs = []
    for t in range(x.shape[1]):
        y_t, state = module.step(x[:, t], state)  # [b, dim]
        outputs.append(y_t)
    return torch.stack(outputs, dim=1)  # [b, n, dim]


@pytest.mark.parametrize("id", STEPPED)
def test_step_form_equals_causal_forward(id: str) -> None:
    """Decoding with the recurrent step form gives the causal forward's outputs."""
    assert implementations.mechanism(id).supports_causal, "a step form needs causal=True"
    module = make(id, causal=True).eval()
    x = torch.randn(BATCH, N, DIM)
    with torch.no_grad():
        y = call(module, x).y
        stepped = _steps(module, x)
    torch.testing.assert_close(stepped, y, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("id", STEPPED)
def test_step_refuses_a_bidirectional_layer(id: str) -> None:
    module = make(id, causal=False).eval()
    state = module.init_state(BATCH)
    with pytest.raises(ValueError, match="causal"):
        module.step(torch.randn(BATCH, DIM), state)


@each_causal
def test_seeded_determinism(id: str, causal: bool) -> None:
    x = torch.randn(BATCH, N, DIM)
    mask = padding_mask()
    outputs = []
    for _ in range(2):
        module = make(id, causal, seed=123).train()
        used_mask = mask if takes_mask(module) else None
        outputs.append(call(module, x, used_mask, seed=7).y)
    torch.testing.assert_close(outputs[0], outputs[1], atol=0, rtol=0)


@each_causal
def test_bfloat16(id: str, causal: bool) -> None:
    """bfloat16 runs, stays bfloat16, is finite, and is close to float32 on average."""
    module32 = make(id, causal).eval()
    module16 = copy.deepcopy(module32).to(torch.bfloat16)
    x = torch.randn(BATCH, N, DIM)
    mask = padding_mask() if takes_mask(module32) else None
    with torch.no_grad():
        y32 = call(module32, x, mask).y
    out16 = call(module16, x.to(torch.bfloat16), mask)  # eval too: same routing noise
    y16 = out16.y
    assert y16.dtype == torch.bfloat16
    assert torch.isfinite(y16).all()
    rows = mask if mask is not None and module32.kind != "downsample" else slice(None)
    err = (y16.float() - y32)[rows].abs().mean() / y32[rows].abs().mean()
    assert err < 0.1, f"mean relative error of bfloat16 vs float32 is {err:.3f}"
    loss = y16.float().sum() + out16.aux_loss
    loss.backward()
    for name, p in module16.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), f"non-finite grad in {name}"


# --------------------------------------------------------------------------- in a model


@each_causal
def test_runs_inside_transformer(id: str, causal: bool) -> None:
    kind = kind_of(id)
    torch.manual_seed(0)
    if kind == "ffn":
        model = Transformer(
            DIM, depth=2, heads=HEADS, ffn=id, causal=causal, ffn_options=small_options(id)
        )
    else:
        model = Transformer(
            DIM,
            depth=2,
            heads=HEADS,
            attention=id,
            causal=causal,
            attention_options=small_options(id),
        )
    x = torch.randn(BATCH, N, DIM)
    mask = None if kind == "memory" else padding_mask()
    out = model(x, mask)
    assert out.y.shape[0] == BATCH and out.y.shape[2] == DIM
    assert torch.isfinite(out.y).all() and out.aux_loss.dim() == 0
    loss = out.y.sum() + out.aux_loss
    if kind == "memory":
        assert out.memories is not None and len(out.memories) == 2
        out2 = model(torch.randn(BATCH, N, DIM), memories=out.memories)
        assert out2.y.shape == out.y.shape
        loss = loss + out2.y.sum()
    if kind == "downsample":
        assert out.mask is not None and out.mask.shape == out.y.shape[:2]
    loss.backward()


# --------------------------------------------------------------------------- CUDA


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@each_causal
def test_cuda(id: str, causal: bool) -> None:
    """Same module on CUDA: runs in float32 and bfloat16, respects the mask, backward works."""
    module = make(id, causal, device="cuda").eval()
    x = torch.randn(BATCH, N, DIM, device="cuda")
    mask = padding_mask(device="cuda") if takes_mask(module) else None
    with torch.no_grad():
        y = call(module, x, mask).y
        assert y.device.type == "cuda" and torch.isfinite(y).all()
        if mask is not None and module.kind != "downsample":
            x_changed = torch.where(mask[..., None], x, torch.randn_like(x))
            y_changed = call(module, x_changed, mask).y
            torch.testing.assert_close(y_changed[mask], y[mask], atol=1e-4, rtol=1e-3)
    module16 = copy.deepcopy(module).to(torch.bfloat16).train()
    out16 = call(module16, x.to(torch.bfloat16), mask)
    y16 = out16.y
    assert y16.dtype == torch.bfloat16 and torch.isfinite(y16).all()
    loss = y16.float().sum() + out16.aux_loss
    loss.backward()


# --------------------------------------------------------------------------- padding in a model

ATTENTION_SLOT = [id for id in IDS if kind_of(id) in ("attention", "downsample")]
FFN_SLOT: list[str | None] = [None, *implementations.available("ffn")]  # None: the plain MLP


def _is_token_choice_moe(id: str) -> bool:
    from implementations._moe import TokenChoiceMoE

    return issubclass(implementations.mechanism(id).cls, TokenChoiceMoE)


def transformer(attention: str, ffn: str | None, causal: bool = False) -> Transformer:
    torch.manual_seed(0)
    model = Transformer(
        DIM,
        depth=2,
        heads=HEADS,
        attention=attention,
        ffn=ffn,
        causal=causal,
        attention_options=small_options(attention),
        ffn_options=small_options(ffn) if ffn is not None else None,
    )
    return model.eval()


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("ffn", FFN_SLOT, ids=lambda f: f or "mlp")
@pytest.mark.parametrize("attention", ATTENTION_SLOT)
def test_padding_never_changes_real_tokens_in_a_transformer(
    attention: str, ffn: str | None, side: str
) -> None:
    """Every attention-slot mechanism with every feed-forward: padded values never leak."""
    model = transformer(attention, ffn)
    x = torch.randn(BATCH, N, DIM)
    mask = torch.ones(BATCH, N, dtype=torch.bool)
    pad = slice(0, 7) if side == "left" else slice(N - 7, N)
    mask[1, pad] = False
    if kind_of(attention) == "downsample" and side == "left":
        mask[1, pad] = True  # pooled windows are positional: pad only on the right there
        mask[0, N - 13 :] = False
    x_changed = torch.where(mask[..., None], x, torch.randn_like(x) * 3 + 1)
    with torch.no_grad():  # reseeded: random features and hash rotations drawn alike
        torch.manual_seed(1)
        out = model(x, mask)
        torch.manual_seed(1)
        changed = model(x_changed, mask)
    assert out.mask is not None
    if kind_of(attention) == "downsample":  # outputs whose window holds only real tokens
        layer = model.attns[0]
        real = [layer.output_length(layer.output_length(int(m.sum()))) - 1 for m in mask]
        for b, r in enumerate(real):
            torch.testing.assert_close(changed.y[b, :r], out.y[b, :r], atol=ATOL, rtol=RTOL)
    else:
        torch.testing.assert_close(changed.y[mask], out.y[mask], atol=ATOL, rtol=RTOL)


# Token-choice mixtures of experts size their expert capacity from the group's length, as
# in the papers' implementations, so adding padding can change which tokens overflow.
POSITION_WISE_FFN = [f for f in FFN_SLOT if f is None or not _is_token_choice_moe(f)]


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("ffn", POSITION_WISE_FFN, ids=lambda f: f or "mlp")
def test_appended_padding_changes_nothing_with_exact_attention(ffn: str | None, side: str) -> None:
    """With dense attention and a position-wise feed-forward, a padded sequence's real
    tokens equal the unpadded run's."""
    model = transformer("dense", ffn)
    x = torch.randn(1, 24, DIM)
    filler = torch.randn(1, 9, DIM) * 3
    padded = torch.cat([filler, x], 1) if side == "left" else torch.cat([x, filler], 1)
    mask = torch.ones(1, 33, dtype=torch.bool)
    mask[:, :9] = side != "left"
    mask[:, 24:] = side == "left"
    if side == "left":
        mask[:, 9:] = True
    with torch.no_grad():
        alone = model(x).y
        with_padding = model(padded, mask).y  # dense and every ffn draw no randomness in eval
    torch.testing.assert_close(with_padding[mask].view(1, 24, DIM), alone, atol=ATOL, rtol=RTOL)


# --------------------------------------------------------------------------- bad arguments


def _int_cases() -> list[Any]:
    cases = []
    for id in IDS:
        record = implementations.mechanism(id)
        for name, allowed in record.option_types.items():
            if int in allowed or tuple in allowed:
                for value in (0, -1, 10**12):
                    cases.append(pytest.param(id, name, value, id=f"{id}-{name}={value}"))
    return cases


def _float_cases() -> list[Any]:
    cases = []
    for id in IDS:
        for name, allowed in implementations.mechanism(id).option_types.items():
            if float in allowed:
                for value in (-0.1, 1.5, math.nan, math.inf):
                    cases.append(pytest.param(id, name, value, id=f"{id}-{name}={value}"))
    return cases


def _inside(value: float, bounds: tuple[Any, ...]) -> bool:
    low, high, brackets = (*bounds, "[]")[:3]
    above = value > low if brackets[0] == "(" else value >= low
    return above and (value < high if brackets[1] == ")" else value <= high)


@pytest.mark.parametrize(("id", "name", "value"), _int_cases())
def test_integer_options_out_of_range_are_named(id: str, name: str, value: int) -> None:
    """0, -1 and 10**12 fail with a ValueError naming the option, unless declared valid."""
    record = implementations.mechanism(id)
    bounds = record.option_ranges[name]
    assert bounds[1] <= 2**20, f"{name} allows values up to {bounds[1]}: bound it"
    given: Any = value
    if int not in record.option_types[name]:  # a tuple option: every item is checked
        given = (value, value)
    if _inside(value, bounds):
        assert value == 0, f"{name} of {id} accepts {value}"
        return  # 0 is a declared valid value (e.g. no global tokens); other checks apply
    with pytest.raises(ValueError, match=name):
        implementations.build(id, dim=DIM, heads=HEADS, **{name: given})


@pytest.mark.parametrize(("id", "name", "value"), _float_cases())
def test_float_options_out_of_range_are_named(id: str, name: str, value: float) -> None:
    bounds = implementations.mechanism(id).option_ranges[name]
    if _inside(value, bounds):
        implementations.build(id, dim=DIM, heads=HEADS, **small_options(id), **{name: value})
        return
    with pytest.raises(ValueError, match=name):
        implementations.build(id, dim=DIM, heads=HEADS, **{name: value})


@by_id
def test_option_types_are_checked(id: str) -> None:
    """A string where a number or flag belongs fails with a TypeError naming the option."""
    for name, allowed in implementations.mechanism(id).option_types.items():
        if str in allowed or object in allowed:
            continue
        with pytest.raises((TypeError, ValueError), match=name):
            implementations.build(id, dim=DIM, heads=HEADS, **{name: "many"})


@by_id
def test_causal_must_be_a_bool(id: str) -> None:
    with pytest.raises(TypeError, match="causal"):
        implementations.build(id, dim=DIM, heads=HEADS, causal="no")  # type: ignore[arg-type]


@pytest.mark.parametrize(("dim", "heads"), [(0, 4), (32, 0), (-32, 4), (2**30, 1), (32.0, 4)])
def test_dim_and_heads_are_checked(dim: Any, heads: Any) -> None:
    with pytest.raises((TypeError, ValueError), match=r"dim|heads"):
        implementations.build("dense", dim=dim, heads=heads)


@by_id
def test_empty_sequence_is_refused(id: str) -> None:
    """n = 0 fails on entry to forward, naming the length, for every kind."""
    module = make(id)
    with pytest.raises(ValueError, match="length"):
        module(torch.randn(BATCH, 0, DIM))
    with pytest.raises(ValueError, match="length"):
        call(module, torch.randn(BATCH, 0, DIM))


@by_id
def test_bad_inputs_are_named(id: str) -> None:
    module = make(id)
    with pytest.raises(ValueError, match=r"\[batch, n, dim\]"):
        module(torch.randn(N, DIM))
    if takes_mask(module):
        with pytest.raises(TypeError, match="mask"):
            call(module, torch.randn(BATCH, N, DIM), torch.ones(BATCH, N))
        with pytest.raises(ValueError, match="mask"):
            call(module, torch.randn(BATCH, N, DIM), torch.ones(BATCH, N + 1, dtype=torch.bool))


def test_apply_refuses_what_a_kind_cannot_take() -> None:
    memory_layer = make(implementations.available("memory")[0])
    with pytest.raises(ValueError, match="padding mask"):
        call(memory_layer, torch.randn(BATCH, N, DIM), padding_mask())
    with pytest.raises(ValueError, match="memory"):
        call(make("dense"), torch.randn(BATCH, N, DIM), memory=torch.zeros(1))
    with pytest.raises(ValueError, match="kind"):
        implementations.apply(nn.Identity(), torch.randn(BATCH, N, DIM))
