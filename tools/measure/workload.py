"""What one measured point runs: the setup, the variants, and the workload closure.

A :class:`~tools.catalog.measurements.Setup` fixes the conditions of a run (width, heads,
batch, device, dtype, threads); it is the catalog's model, so the setup a run uses and the
one its file records are the same object. A :class:`Variant` is one mechanism measured one
way (non-causal or causal). :func:`make_workload` builds the mechanism for a length and
returns a closure running one forward pass, which the counters and timers then call.

Examples:
    >>> make_setup(heads=2).heads, make_setup().dim
    (2, 512)
    >>> Variant("performer", causal=True).key
    'performer:causal'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

import implementations
from tools.catalog import Catalog
from tools.catalog.measurements import Setup
from tools.measure.reference import DENSE_FFN, DenseFeedForward
from tools.measure.settings import options_for


def make_setup(
    *,
    dim: int = 512,
    heads: int = 8,
    batch: int = 1,
    device: str = "cpu",
    dtype: str = "float32",
    threads: int = 1,
) -> Setup:
    """A run's setup, with the defaults of ``python -m tools.measure``."""
    return Setup(dim=dim, heads=heads, batch=batch, device=device, dtype=dtype, threads=threads)


def torch_dtype(setup: Setup) -> torch.dtype:
    """The torch dtype a setup names (``"float32"`` is ``torch.float32``)."""
    dtype = getattr(torch, setup.dtype)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"{setup.dtype!r} is not a torch dtype")
    return dtype


@dataclass(frozen=True)
class Variant:
    """One mechanism measured one way (non-causal or causal)."""

    id: str
    causal: bool

    @property
    def key(self) -> str:
        """The variant's name in a measurement file's ``results``."""
        return f"{self.id}:causal" if self.causal else self.id


def variants(ids: Iterable[str], catalog: Catalog) -> list[Variant]:
    """Non-causal for every mechanism; causal too where it is supported and claimed."""
    chosen: list[Variant] = []
    for id in ids:
        if id == DENSE_FFN:  # the feed-forward reference: causality changes nothing in it
            chosen.append(Variant(id, False))
            continue
        record = implementations.mechanism(id)
        entry = catalog.entries.get(id)
        decodes = entry.decode if entry is not None and entry.decode is not None else True
        if record.kind != "memory":  # segment recurrence is inherently causal-agnostic here
            chosen.append(Variant(id, False))
        if record.supports_causal and decodes:
            chosen.append(Variant(id, True))
    return chosen


def make_workload(variant: Variant, n: int, setup: Setup) -> Callable[[], torch.Tensor]:
    """A closure running one forward pass at length ``n`` and returning a scalar loss.

    Feed-forward mechanisms run bare, as does the dense feed-forward layer they are
    compared with (:mod:`tools.measure.reference`); segment-recurrent mechanisms run one
    warm segment (their memory filled by a previous segment).
    """
    torch.manual_seed(0)
    module: nn.Module
    if variant.id == DENSE_FFN:
        kind, module = "ffn", DenseFeedForward(setup.dim)
    else:
        kind = implementations.mechanism(variant.id).kind
        module = implementations.build(
            variant.id,
            dim=setup.dim,
            heads=setup.heads,
            causal=variant.causal,
            **options_for(variant.id, n),
        )
    dtype = torch_dtype(setup)
    module = module.to(device=setup.device, dtype=dtype)
    x = torch.randn(setup.batch, n, setup.dim, device=setup.device, dtype=dtype)

    memory = None
    if kind == "memory":  # one warm segment first
        with torch.no_grad():
            memory = implementations.apply(module, x, kind=kind).memory

    def run() -> torch.Tensor:
        out = implementations.apply(module, x, memory=memory, kind=kind)
        return out.y.float().sum() + out.aux_loss

    return run
