"""Options each mechanism is measured with, as a function of the length ``n``.

A claim such as ``O(n w)`` holds the window ``w`` fixed as ``n`` grows, which the
paper's defaults already do. A claim such as ``O(n sqrt(n))`` assumes a hyper-parameter
that grows with ``n`` (the stride of a factorised pattern, the number of clusters), and
some mechanisms need a length-dependent size (a maximum sequence length). This table
gives exactly those, so that every mechanism is measured under the conditions of its
claim; everything else keeps the paper's defaults.

Examples:
    >>> options_for("dense", 1024)
    {}
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

_SCALED: dict[str, Callable[[int], dict[str, Any]]] = {}


def options_for(id: str, n: int) -> dict[str, Any]:
    """The options to build mechanism ``id`` with for a sequence of length ``n``."""
    rule = _SCALED.get(id)
    return rule(n) if rule is not None else {}


def _sqrt(n: int) -> int:
    """The power of two nearest to sqrt(n), so blocks tile every measured length."""
    return 2 ** round(math.log2(math.sqrt(n)))
