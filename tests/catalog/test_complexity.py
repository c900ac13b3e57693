"""Complexity strings parse to the exponent of n and its log factor."""

from __future__ import annotations

import pytest

from tools.catalog import load_catalog
from tools.catalog.complexity import ComplexityError, Growth, parse, parse_full
from tools.catalog.model import survey_growth_symbol


@pytest.mark.parametrize(
    ("text", "exponent", "log_power"),
    [
        ("O(n)", 1.0, 0),
        ("O(n sqrt(n))", 1.5, 0),
        ("O(n log n)", 1.0, 1),
        ("O(n log(n))", 1.0, 1),
        ("O(n w)", 1.0, 0),
        ("O(n^2)", 2.0, 0),
        ("O(n * w / b)", 1.0, 0),
        ("O(n (w + g))", 1.0, 0),
        ("O(n_g^2 + n n_g)", 1.0, 0),
        ("O(n^2 / k + n b)", 2.0, 0),
        ("O(b^2)", 0.0, 0),
        ("O(n^1.5 log n + n^2)", 2.0, 0),
        ("O(log n)", 0.0, 1),
        ("O(n log k)", 1.0, 0),
    ],
)
def test_parse(text: str, exponent: float, log_power: int) -> None:
    assert parse(text) == Growth(exponent, log_power)


def test_symbols_are_collected() -> None:
    assert parse_full("O(n (w + g) + n_g^2)").symbols == frozenset({"w", "g", "n_g"})


@pytest.mark.parametrize("text", ["n^2", "O(n", "O(n^)", "O(n) extra", "O(n % 2)", "O()", "O(n^k)"])
def test_malformed_strings_raise(text: str) -> None:
    with pytest.raises(ComplexityError):
        parse(text)


def test_survey_strings_use_capital_n() -> None:
    assert survey_growth_symbol("O(N log N)") == "N"
    assert parse("O(N log N)", length_symbol="N") == Growth(1.0, 1)
    assert parse("O(N_c^2)", length_symbol="N") == Growth(0.0, 0)


def test_every_shipped_complexity_parses() -> None:
    for entry in load_catalog().entries.values():
        if entry.complexity:
            assert parse(entry.complexity.time).exponent <= 2.0, entry.id
            assert parse(entry.complexity.memory).exponent <= 2.0, entry.id
