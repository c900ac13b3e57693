"""Reference PyTorch implementations of efficient attention, behind one interface.

Every mechanism of the catalog lives in a module named after its catalog id
(``performer`` in ``implementations/performer.py``) and registers itself here;
``apply`` calls a mechanism of any kind the same way.

Examples:
    >>> import torch, implementations
    >>> layer = implementations.build("dense", dim=64, heads=4)
    >>> layer(torch.randn(2, 10, 64)).shape
    torch.Size([2, 10, 64])
    >>> implementations.apply(layer, torch.randn(2, 10, 64)).y.shape
    torch.Size([2, 10, 64])
"""

from __future__ import annotations

import importlib
import pkgutil

from implementations._registry import (
    Applied,
    Mechanism,
    apply,
    available,
    build,
    check_input,
    mechanism,
    register,
)

__all__ = [
    "Applied",
    "Mechanism",
    "apply",
    "available",
    "build",
    "check_input",
    "mechanism",
    "module_name",
    "register",
]

# Modules that are infrastructure, not mechanisms.
_NOT_MECHANISMS = {"transformer"}


def module_name(id: str) -> str:
    """The module that implements catalog id ``id``.

    Examples:
        >>> from implementations import module_name
        >>> module_name("big-bird")
        'implementations.big_bird'
    """
    return f"{__name__}.{id.replace('-', '_')}"


for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_") and _info.name not in _NOT_MECHANISMS:
        importlib.import_module(f"{__name__}.{_info.name}")
