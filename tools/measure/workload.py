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
        record = implementations.mechanism(id)
        entry = catalog.entries.get(id)
        decodes = entry.decode if entry is not None and entry.decode is not None else True
        if record.kind != "memory":  # segment recurrence is inherently causal-agnostic here
            chosen.append(Variant(id, False))
        if record.supports_causal and decodes:
            chosen.append(Variant(id, True))
    return chosen


class _FfnBlock(nn.Module):
    """Exact attention followed by a feed-forward mechanism: the layer MoE papers change."""

    def __init__(self, ffn: nn.Module, dim: int, heads: int, causal: bool) -> None:
        super().__init__()
        self.attention = implementations.build("dense", dim=dim, heads=heads, causal=causal)
        self.ffn = ffn

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x + self.attention(x)
        y, aux = self.ffn(x)
        return x + y, aux


def make_workload(variant: Variant, n: int, setup: Setup) -> Callable[[], torch.Tensor]:
    """A closure running one forward pass at length ``n`` and returning a scalar loss.

    Feed-forward mechanisms run inside a layer with exact attention, since the claim of
    a mixture-of-experts paper is about the whole layer; segment-recurrent mechanisms
    run one warm segment (their memory filled by a previous segment).
    """
    torch.manual_seed(0)
    record = implementations.mechanism(variant.id)
    module = implementations.build(
        variant.id,
        dim=setup.dim,
        heads=setup.heads,
        causal=variant.causal,
        **options_for(variant.id, n),
    )
    if record.kind == "ffn":
        module = _FfnBlock(module, setup.dim, setup.heads, variant.causal)
    dtype = torch_dtype(setup)
    module = module.to(device=setup.device, dtype=dtype)
    x = torch.randn(setup.batch, n, setup.dim, device=setup.device, dtype=dtype)

    if record.kind == "memory":
        with torch.no_grad():
            _, memory = module(x)

        def run() -> torch.Tensor:
            y, _ = module(x, memory=memory)
            return y.float().sum()
    elif record.kind == "ffn":

        def run() -> torch.Tensor:
            y, aux = module(x)
            return y.float().sum() + aux.float()
    else:

        def run() -> torch.Tensor:
            return module(x).float().sum()

    return run
