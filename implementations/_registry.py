"""The registry: every mechanism registers itself under its catalog id.

A mechanism is a ``torch.nn.Module`` class whose constructor takes ``dim``, ``heads``
and ``causal`` plus keyword-only options that mirror its paper's hyper-parameters
(with the paper's defaults). :func:`build` checks the options against that signature,
so a misspelt option fails loudly instead of being ignored.

Kinds and their forward contracts:

* ``attention``: ``forward(x, mask=None) -> y``; ``x``, ``y`` are ``[batch, n, dim]``,
  ``mask`` is a bool ``[batch, n]`` key-padding mask (True = real token).
* ``memory`` (segment recurrence): ``forward(x, memory=None) -> (y, memory)``.
* ``downsample``: ``forward(x, mask=None) -> y`` with ``y.shape[1] ==
  module.output_length(n)``.
* ``ffn`` (feed-forward replacements): ``forward(x) -> (y, aux_loss)``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

Kind = Literal["attention", "memory", "downsample", "ffn"]
KINDS: tuple[str, ...] = ("attention", "memory", "downsample", "ffn")
_REQUIRED = ("dim", "heads", "causal")


@dataclass(frozen=True)
class Mechanism:
    """What the registry knows about one mechanism.

    Attributes:
        id: The catalog id (``performer``), also the module name with ``-`` as ``_``.
        kind: One of ``attention``, ``memory``, ``downsample``, ``ffn``.
        cls: The ``nn.Module`` class :func:`build` instantiates.
        supports_causal: Whether ``causal=True`` is accepted.
    """

    id: str
    kind: str
    cls: type[nn.Module]
    supports_causal: bool

    @property
    def options(self) -> dict[str, Any]:
        """The paper's hyper-parameters and their defaults, from the constructor."""
        params = inspect.signature(self.cls.__init__).parameters
        return {
            name: p.default
            for name, p in params.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }


_MECHANISMS: dict[str, Mechanism] = {}


def register(id: str, *, kind: Kind, supports_causal: bool = True):
    """Class decorator that registers a mechanism under its catalog ``id``.

    Args:
        id: The catalog id, kebab-case.
        kind: The forward contract the class follows (see the module docstring).
        supports_causal: False when the mechanism cannot mask the future.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def decorate(cls: type[nn.Module]) -> type[nn.Module]:
        params = inspect.signature(cls.__init__).parameters
        missing = [name for name in _REQUIRED if name not in params]
        if missing:
            raise TypeError(f"{cls.__name__}.__init__ must accept {missing}")
        previous = _MECHANISMS.get(id)
        if previous is not None and previous.cls.__qualname__ != cls.__qualname__:
            raise ValueError(f"mechanism id {id!r} registered twice")
        _MECHANISMS[id] = Mechanism(id, kind, cls, supports_causal)
        cls.mechanism_id = id  # type: ignore[attr-defined]
        cls.kind = kind  # type: ignore[attr-defined]
        return cls

    return decorate


def available(kind: str | None = None) -> list[str]:
    """Sorted ids of the registered mechanisms, optionally of one kind."""
    return sorted(m.id for m in _MECHANISMS.values() if kind is None or m.kind == kind)


def mechanism(id: str) -> Mechanism:
    """The registry record of ``id``; raises ``KeyError`` naming close matches."""
    try:
        return _MECHANISMS[id]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(id, list(_MECHANISMS), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown mechanism {id!r}{hint}") from None


def build(id: str, *, dim: int, heads: int, causal: bool = False, **options: Any) -> nn.Module:
    """Instantiate mechanism ``id`` with the paper's defaults overridden by ``options``.

    Raises:
        KeyError: ``id`` is not registered.
        ValueError: an unknown option, ``causal=True`` where unsupported, or a bad value.
    """
    record = mechanism(id)
    known = record.options
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for {id!r}; "
            f"expected some of: {', '.join(sorted(known)) or '(none)'}"
        )
    if causal and not record.supports_causal:
        raise ValueError(f"{id!r} does not support causal=True")
    if dim <= 0 or heads <= 0 or dim % heads:
        raise ValueError(f"dim ({dim}) must be a positive multiple of heads ({heads})")
    return record.cls(dim=dim, heads=heads, causal=causal, **options)
