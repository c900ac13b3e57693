"""The registry, and the one adapter that calls a registered mechanism of any kind.

Every mechanism registers itself under its catalog id.

A mechanism is a ``torch.nn.Module`` class whose constructor takes ``dim``, ``heads``
and ``causal`` plus keyword-only options that mirror its paper's hyper-parameters
(with the paper's defaults). [build][implementations._registry.build] checks the options
against that signature, so a misspelt option fails loudly instead of being ignored.

Kinds and their forward contracts
([apply][implementations._registry.apply] calls any of them the same way):

* ``attention``: ``forward(x, mask=None) -> y``; ``x``, ``y`` are ``[batch, n, dim]``,
  ``mask`` is a bool ``[batch, n]`` key-padding mask (True = real token).
* ``memory`` (segment recurrence): ``forward(x, memory=None) -> (y, memory)``.
* ``downsample``: ``forward(x, mask=None) -> y`` with ``y.shape[1] ==
  module.output_length(n)``.
* ``ffn`` (feed-forward replacements): ``forward(x, mask=None) -> (y, aux_loss)``;
  padded tokens must not change real tokens' outputs.

Recurrent decoding (optional, any ``attention`` mechanism whose paper has a recurrent form:
state-space models, gated linear recurrences, key/value caches) adds two methods:

* ``init_state(batch, *, device=None, dtype=None) -> state``: the state before the first token;
* ``step(x_t, state) -> (y_t, state)``: ``x_t`` and ``y_t`` are one position ``[batch, dim]``.

Stepping through a sequence gives exactly what ``forward`` computes for it with
``causal=True``; ``step`` raises ``ValueError`` on a layer built with ``causal=False``.
The conformance suite checks both for every mechanism that defines ``step``.

[apply][implementations._registry.apply] hides the four contracts behind one call that
returns an [Applied][implementations._registry.Applied]: the output, the auxiliary loss
(0 when the kind has none), the memory of a segment-recurrent layer and the key-padding
mask of the output (shortened with the sequence by a ``downsample`` layer). The
Transformer, the conformance tests and the measurements call mechanisms through it.

Values are checked in one place. [build][implementations._registry.build] checks
``dim``, ``heads`` and ``causal`` and every option against its annotated type and its
range: integers (alone or in a tuple) lie in ``[1, 2**20]`` unless the class declares
otherwise in its ``option_ranges`` (a ``{option: (low, high)}`` class attribute, bounds
inclusive, or ``(low, high, "[)")`` and the like for open ends), and every float option
must be declared there. Every registered ``forward``
first runs [check_input][implementations._registry.check_input] (shape, ``n >= 1``,
mask dtype and shape).

Examples:
    >>> import implementations
    >>> implementations.build("big-bird", dim=32, heads=4, block_size=0)
    Traceback (most recent call last):
    ...
    ValueError: option block_size of 'big-bird' must be in [1, 1048576], got 0
    >>> import torch
    >>> layer = implementations.build("dense", dim=16, heads=2)
    >>> out = implementations.apply(layer, torch.randn(2, 5, 16))
    >>> out.y.shape, out.aux_loss.item(), out.memory, out.mask
    (torch.Size([2, 5, 16]), 0.0, None, None)
"""

from __future__ import annotations

import functools
import inspect
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Applied",
    "Mechanism",
    "apply",
    "available",
    "build",
    "check_input",
    "mechanism",
    "register",
]

Kind = Literal["attention", "memory", "downsample", "ffn"]
KINDS: tuple[str, ...] = ("attention", "memory", "downsample", "ffn")
_REQUIRED = ("dim", "heads", "causal")

# Integer options (and dim, heads) lie in [1, INT_LIMIT] unless a class declares otherwise:
# large enough for any paper's setting, small enough that no value makes a layer hang.
INT_LIMIT = 2**20
# (low, high) inclusive, or (low, high, brackets) with brackets "[)", "(]" or "()".
Range = tuple[float, float] | tuple[float, float, str]


@dataclass(frozen=True)
class Mechanism:
    """What the registry knows about one mechanism.

    Attributes:
        id: The catalog id (``performer``), also the module name with ``-`` as ``_``.
        kind: One of ``attention``, ``memory``, ``downsample``, ``ffn``.
        cls: The ``nn.Module`` class [build][implementations._registry.build] instantiates.
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

    @property
    def option_ranges(self) -> dict[str, Range]:
        """The inclusive range of every numeric option (its values, or a tuple's items).

        Integers default to ``(1, INT_LIMIT)``; the class's ``option_ranges`` overrides.
        """
        declared: dict[str, Range] = {}
        for klass in reversed(self.cls.__mro__):  # a subclass's declaration wins
            declared.update(klass.__dict__.get("option_ranges", {}))
        ranges: dict[str, Range] = {}
        for name, allowed in self.option_types.items():
            if name in declared:
                ranges[name] = declared[name]
            elif int in allowed or tuple in allowed:
                ranges[name] = (1, INT_LIMIT)
        return ranges

    @property
    def option_types(self) -> dict[str, tuple[Any, ...]]:
        """Each option's accepted types from its annotation (``Literal`` values as themselves)."""
        hints = typing.get_type_hints(self.cls.__init__)
        return {name: _accepted(hints.get(name, Any)) for name in self.options}


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
        record = Mechanism(id, kind, cls, supports_causal)
        types_, ranges = record.option_types, record.option_ranges
        undeclared = [n for n, t in types_.items() if float in t and n not in ranges]
        stray = sorted(set(cls.__dict__.get("option_ranges", {})) - set(types_))
        if undeclared or stray:
            raise TypeError(
                f"{cls.__name__}.option_ranges must declare every float option "
                f"(missing {undeclared}) and only options (unknown {stray})"
            )
        _MECHANISMS[id] = record
        # Every instance knows its id and kind, so `apply` can call it without a lookup.
        # (setattr: these are attributes the registry adds to classes it does not own.)
        setattr(cls, "mechanism_id", id)  # noqa: B010
        setattr(cls, "kind", kind)  # noqa: B010
        forward = cls.forward  # its own or inherited: checked once either way
        if not hasattr(forward, "__wrapped__"):
            cls.forward = _checking_input(forward, takes_mask=kind != "memory")
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
        TypeError: ``dim``, ``heads``, ``causal`` or an option of the wrong type.
        ValueError: an unknown option, ``causal=True`` where unsupported, or a value
            out of range.

    Examples:
        >>> import implementations
        >>> implementations.build("dense", dim=32, heads=4, causal="no")
        Traceback (most recent call last):
        ...
        TypeError: causal must be a bool, got 'no'
    """
    record = mechanism(id)
    known = record.options
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for {id!r}; "
            f"expected some of: {', '.join(sorted(known)) or '(none)'}"
        )
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be a bool, got {causal!r}")
    if causal and not record.supports_causal:
        raise ValueError(f"{id!r} does not support causal=True")
    for name, value in (("dim", dim), ("heads", heads)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if not 1 <= value <= INT_LIMIT:
            raise ValueError(f"{name} must be in [1, {INT_LIMIT}], got {value}")
    if dim % heads:
        raise ValueError(f"dim ({dim}) must be a positive multiple of heads ({heads})")
    types_, ranges = record.option_types, record.option_ranges
    for name, value in options.items():
        _check_option(id, name, value, types_[name], ranges.get(name))
    return record.cls(dim=dim, heads=heads, causal=causal, **options)


def _accepted(annotation: Any) -> tuple[Any, ...]:
    """The types (and ``Literal`` values) an annotation admits, flattened.

    ``int | None`` gives ``(int, NoneType)``, ``tuple[int, int]`` gives ``(tuple,)``,
    ``Sequence[int]`` gives ``(tuple, list)``, ``Literal["a", "b"]`` gives
    ``(Literal, "a", "b")``.
    """
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return tuple(t for arg in typing.get_args(annotation) for t in _accepted(arg))
    if origin is Literal:
        return (Literal, *typing.get_args(annotation))
    if annotation is None or annotation is type(None):
        return (type(None),)
    if origin is not None and isinstance(origin, type):
        if issubclass(origin, tuple) or origin.__name__ == "Sequence":
            return (tuple, list) if origin.__name__ == "Sequence" else (tuple,)
        return (origin,)
    return (annotation,) if isinstance(annotation, type) else (object,)


def _check_option(id: str, name: str, value: Any, allowed: tuple[Any, ...], bounds: Any) -> None:
    """Raise ``TypeError`` / ``ValueError`` naming ``name`` unless ``value`` fits."""
    where = f"option {name} of {id!r}"
    if value is None and type(None) in allowed:
        return
    if Literal in allowed:
        choices = [c for c in allowed if c is not Literal]
        if value in choices and not isinstance(value, bool):
            return
        raise ValueError(f"{where} must be one of {choices}, got {value!r}")
    if isinstance(value, bool):
        if bool in allowed or object in allowed:
            return
        raise TypeError(f"{where} must be {_names(allowed)}, got {value!r}")
    items: list[Any] = [value]
    if isinstance(value, int) and int in allowed:
        pass
    elif isinstance(value, (int, float)) and float in allowed:
        value = float(value)
        items = [value]
    elif isinstance(value, (tuple, list)) and (tuple in allowed or list in allowed):
        items = list(value)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise TypeError(f"{where} must hold ints, got {value!r}")
    elif any(isinstance(value, t) for t in allowed if isinstance(t, type)):
        return
    else:
        raise TypeError(f"{where} must be {_names(allowed)}, got {value!r}")
    if bounds is None:
        return
    low, high, brackets = (*bounds, "[]")[:3]
    for v in items:
        above = v > low if brackets[0] == "(" else v >= low
        below = v < high if brackets[1] == ")" else v <= high
        if not (above and below):  # also refuses NaN
            shown = f"{brackets[0]}{_num(low)}, {_num(high)}{brackets[1]}"
            raise ValueError(f"{where} must be in {shown}, got {value!r}")


def _names(allowed: tuple[Any, ...]) -> str:
    names = ["None" if t is type(None) else getattr(t, "__name__", str(t)) for t in allowed]
    return " or ".join(dict.fromkeys(names))


def _num(bound: float) -> str:
    if bound == math.inf:
        return "inf"
    return str(int(bound)) if float(bound).is_integer() else repr(bound)


def _checking_input(forward: Callable[..., Any], *, takes_mask: bool) -> Callable[..., Any]:
    """``forward`` behind [check_input][implementations._registry.check_input]."""

    @functools.wraps(forward)
    def checked(self: nn.Module, x: Any, *args: Any, **kwargs: Any) -> Any:
        mask = (args[0] if args else kwargs.get("mask")) if takes_mask else None
        check_input(x, mask)
        return forward(self, x, *args, **kwargs)

    return checked


# --------------------------------------------------------------------------- the adapter


@dataclass(frozen=True)
class Applied:
    """What [apply][implementations._registry.apply] returns, the same for every kind.

    Attributes:
        y: The output ``[batch, n_out, dim]`` (``n_out < n`` only for ``downsample``).
        aux_loss: Float32 scalar: the ``ffn`` kind's returned auxiliary loss plus any
            scalar tensor the layer left as its ``aux_loss`` attribute (e.g. the
            compressive transformer's reconstruction loss); 0 when there is none.
        memory: The new memory of a ``memory`` layer (None for other kinds).
        mask: The key-padding mask ``[batch, n_out]`` of ``y``; None when none was given.
    """

    y: Tensor
    aux_loss: Tensor
    memory: Any = None
    mask: Tensor | None = None


def check_input(x: Any, mask: Any = None) -> None:
    """Check what a forward is given: ``x`` ``[batch, n, dim]``, ``mask`` bool ``[batch, n]``.

    Raises:
        TypeError: ``x`` or ``mask`` is not a tensor, or ``mask`` is not bool.
        ValueError: ``x`` is not 3-d, has an empty batch or length ``n = 0``, or
            ``mask`` is not ``[batch, n]``.

    Examples:
        >>> import torch
        >>> from implementations import check_input
        >>> check_input(torch.zeros(2, 0, 8))
        Traceback (most recent call last):
        ...
        ValueError: x has sequence length n = 0; the length must be at least 1
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor [batch, n, dim], got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"x must be [batch, n, dim], got shape {tuple(x.shape)}")
    if x.shape[1] < 1:
        raise ValueError("x has sequence length n = 0; the length must be at least 1")
    if x.shape[0] < 1:
        raise ValueError("x has batch size 0; the batch must hold at least one sequence")
    if mask is None:
        return
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a bool torch.Tensor [batch, n], got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True = real token), got {mask.dtype}")
    if tuple(mask.shape) != tuple(x.shape[:2]):
        raise ValueError(
            f"mask must be [batch, n] = {tuple(x.shape[:2])} like x, got {tuple(mask.shape)}"
        )


def apply(
    layer: nn.Module,
    x: Tensor,
    mask: Tensor | None = None,
    *,
    memory: Any = None,
    kind: str | None = None,
) -> Applied:
    """Call ``layer`` of any kind under its contract, with one kind of result.

    * ``attention``: ``y = layer(x, mask)``; the output mask is ``mask``.
    * ``memory``: ``y, memory = layer(x, memory=memory)``. Padding is not part of this
      contract: a mask with a padded position is refused.
    * ``downsample``: ``y = layer(x, mask)`` with ``layer.output_length(n)`` positions;
      the output mask is ``layer.output_mask(mask)`` when the layer defines it, else
      max-pooled (a pooled position is real when any position of its window is).
    * ``ffn``: ``y, aux_loss = layer(x, mask=mask)`` (``layer(x)`` without a mask).

    Args:
        layer: A registered mechanism (its class carries ``kind``), or any module
            following one of the contracts, with ``kind`` given.
        x: ``[batch, n, dim]``.
        mask: Bool key-padding mask ``[batch, n]``, True = real token.
        memory: What the previous call returned as ``memory`` (``memory`` kind only).
        kind: The contract, when ``layer`` has no ``kind`` attribute.

    Returns:
        The output, auxiliary loss, memory and output mask.

    Raises:
        ValueError: a padding mask for a ``memory`` layer, ``memory`` for another kind,
            or an unknown kind.

    Examples:
        >>> import torch
        >>> import implementations
        >>> pool = implementations.build("funnel-transformer", dim=16, heads=2)
        >>> mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
        >>> out = implementations.apply(pool, torch.randn(2, 6, 16), mask)
        >>> out.y.shape, out.mask.tolist()
        (torch.Size([2, 3, 16]), [[True, True, True], [True, True, False]])
        >>> moe = implementations.build("switch-transformer", dim=16, heads=2, experts=4)
        >>> implementations.apply(moe, torch.randn(2, 6, 16), mask).aux_loss.dim()
        0
    """
    kind = kind if kind is not None else getattr(layer, "kind", None)
    if kind == "memory":
        if mask is not None and not bool(mask.all()):
            raise ValueError("memory mechanisms take no padding mask; pass full segments")
        y, new_memory = layer(x, memory=memory)
        return Applied(y, _attribute_aux_loss(layer, x), new_memory, mask)
    if memory is not None:
        raise ValueError(f"memory= is only for mechanisms of kind 'memory', not {kind!r}")
    if kind == "attention":
        return Applied(layer(x, mask), _attribute_aux_loss(layer, x), None, mask)
    if kind == "downsample":
        y = layer(x, mask)  # [b, n_out, dim]
        return Applied(y, _attribute_aux_loss(layer, x), None, _pooled_mask(layer, mask, y))
    if kind == "ffn":
        y, aux = layer(x) if mask is None else layer(x, mask=mask)
        return Applied(y, aux.float() + _attribute_aux_loss(layer, x), None, mask)
    raise ValueError(f"unknown kind {kind!r}: expected attention, memory, downsample or ffn")


def _attribute_aux_loss(layer: nn.Module, x: Tensor) -> Tensor:
    """The scalar tensor ``layer.aux_loss`` left by its forward, as float32; else 0."""
    aux = getattr(layer, "aux_loss", None)
    return aux.float() if isinstance(aux, Tensor) else x.new_zeros((), dtype=torch.float32)


def _pooled_mask(layer: nn.Module, mask: Tensor | None, y: Tensor) -> Tensor | None:
    """The key-padding mask of a ``downsample`` layer's output ``y``."""
    if mask is None or y.shape[1] == mask.shape[1]:
        return mask
    output_mask = getattr(layer, "output_mask", None)
    if output_mask is not None:  # the layer's own pooling of the mask
        return output_mask(mask)
    pooled = F.adaptive_max_pool1d(mask[:, None, :].float(), y.shape[1])  # [b, 1, n_out]
    return pooled[:, 0, :].bool()  # [b, n_out]
