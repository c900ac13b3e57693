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


def _sqrt(n: int) -> int:
    """The power of two nearest to sqrt(n), so blocks tile every measured length."""
    return 2 ** round(math.log2(math.sqrt(n)))


_SCALED: dict[str, Callable[[int], dict[str, Any]]] = {
    # O(n sqrt(n)) claims: the factorised stride and the number of clusters grow as sqrt(n).
    "sparse-transformer": lambda n: {"stride": _sqrt(n)},
    "routing-transformer": lambda n: {"n_clusters": _sqrt(n)},
    # Learned length-specific parameters must cover the longest sequence measured.
    "linformer": lambda n: {"max_seq_len": n},
    "synthesizer": lambda n: {"max_seq_len": n},
    # Its cost n b + (n/b)^2 is least with blocks of sqrt(n): the setting the paper advises.
    "sinkhorn-transformer": lambda n: {"block_size": _sqrt(n), "max_blocks": n // _sqrt(n)},
    # Hashing into n/64 buckets costs n^2/64 rotations; the O(n log n) claim keeps the
    # number of buckets fixed while the attended chunk stays 64 long.
    "reformer": lambda n: {"n_buckets": 64},
    # O(n S d) holds the maximal span S fixed. Counted on the meta device (no parameter
    # values, so no trimming to the learned spans) the band is S wide; with the paper's
    # S = 8192, at n = 16k a window of ~n/2 is laid out as one n x n block (fewer scores
    # than blocks of S), which bends the fitted exponent. S = 1024 keeps n >= 16 S.
    "adaptive-attention-span": lambda n: {"max_span": 1024},
    # Its cost n (n/s + k b + w) d is quadratic, but with the paper's sizes (s = 16,
    # k b = 1024, w = 512) the n^2/s term overtakes the rest only near n = 44k, so 16k-64k
    # would fit an exponent of 1.4. Fixed, smaller sizes (not growing with n) show the growth
    # the claim describes within the measured lengths.
    "native-sparse-attention": lambda n: {
        "compress_block": 8,
        "compress_stride": 4,
        "select_block": 16,
        "selected_blocks": 4,
        "window_size": 32,
    },
}

# How the symbols of a claim grow under the options above (b = n^0.5 is {"b": 0.5}).
_SYMBOL_GROWTH: dict[str, dict[str, float]] = {
    "sinkhorn-transformer": {"b": 0.5},
}


def symbol_growth(id: str) -> dict[str, float]:
    """The exponents of ``n`` at which the symbols of ``id``'s claim grow when measured.

    Examples:
        >>> symbol_growth("sinkhorn-transformer")
        {'b': 0.5}
    """
    return dict(_SYMBOL_GROWTH.get(id, {}))


def options_for(id: str, n: int) -> dict[str, Any]:
    """The options to build mechanism ``id`` with for a sequence of length ``n``."""
    rule = _SCALED.get(id)
    return rule(n) if rule is not None else {}
