"""Parse big-O strings such as ``O(n sqrt(n))`` into the growth they claim in ``n``.

The catalog states complexities as people write them; code needs numbers. A string is
parsed into a sum of terms, each a product of factors, and the dominant term in ``n``
gives the :class:`Growth`: the exponent of ``n`` and the power of ``log n`` beside it.
Every symbol other than ``n`` is a hyper-parameter held fixed as ``n`` grows (a window
``w``, a number of features ``m``), which is how the papers state their claims.

Grammar (whitespace or ``*`` multiplies, ``/`` divides)::

    bigo    := "O(" sum ")"
    sum     := product ("+" product)*
    product := power (("*" | "/" | <space>) power)*
    power   := atom ("^" number)?
    atom    := number | symbol | "sqrt(" sum ")" | "log" atom | "log(" sum ")" | "(" sum ")"

Examples:
    >>> parse("O(n sqrt(n))")
    Growth(exponent=1.5, log_power=0)
    >>> parse("O(n log n)")
    Growth(exponent=1.0, log_power=1)
    >>> parse("O(n (w + g))").exponent
    1.0
    >>> parse("O(N_g^2 + N N_g)", length_symbol="N")
    Growth(exponent=1.0, log_power=0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)?)"
    r"|(?P<op>[()+*/^,]))"
)


# A claim is a short formula; deeper nesting is a mistake or an attack on the recursion.
MAX_NESTING = 32


class ComplexityError(ValueError):
    """A complexity string that does not follow the grammar."""


@dataclass(frozen=True, order=True)
class Growth:
    """How a cost grows with the sequence length ``n``: ``n^exponent * (log n)^log_power``.

    Attributes:
        exponent: The power of ``n``.
        log_power: The power of ``log n`` multiplying it.
    """

    exponent: float
    log_power: int = 0

    def __mul__(self, other: Growth) -> Growth:
        return Growth(self.exponent + other.exponent, self.log_power + other.log_power)

    def __truediv__(self, other: Growth) -> Growth:
        return Growth(self.exponent - other.exponent, self.log_power - other.log_power)

    def __pow__(self, power: float) -> Growth:
        return Growth(self.exponent * power, round(self.log_power * power))


_CONSTANT = Growth(0.0, 0)


@dataclass(frozen=True)
class Parsed:
    """A parsed complexity: its growth in ``n`` and the other symbols it names."""

    growth: Growth
    symbols: frozenset[str]


class _Parser:
    def __init__(self, text: str, length_symbol: str, scaling: dict[str, float]) -> None:
        self.text = text
        self.length_symbol = length_symbol
        self.scaling = scaling
        self.tokens = self._tokenize(text)
        self.pos = 0
        self.depth = 0
        self.symbols: set[str] = set()

    def _tokenize(self, text: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        index = 0
        while index < len(text):
            if text[index:].strip() == "":
                break
            match = _TOKEN.match(text, index)
            if match is None or match.end() == index:
                raise ComplexityError(
                    f"unexpected character {text[index:].lstrip()[:1]!r} in {text!r}"
                )
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind)))
            index = match.end()
        return tokens

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, value: str | None = None) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise ComplexityError(f"{self.text!r} ends too early")
        if value is not None and token[1] != value:
            raise ComplexityError(f"expected {value!r} but found {token[1]!r} in {self.text!r}")
        self.pos += 1
        return token

    def parse(self) -> Parsed:
        head = self._take()
        if head != ("name", "O"):
            raise ComplexityError(f"{self.text!r} must start with 'O('")
        self._take("(")
        growth = self._sum()
        self._take(")")
        extra = self._peek()
        if extra is not None:
            raise ComplexityError(f"unexpected {extra[1]!r} after ')' in {self.text!r}")
        return Parsed(growth, frozenset(self.symbols))

    def _sum(self) -> Growth:
        terms = [self._product()]
        while self._peek() == ("op", "+"):
            self._take()
            terms.append(self._product())
        # The dominant term decides how the whole sum grows.
        return max(terms)

    def _starts_atom(self) -> bool:
        token = self._peek()
        return token is not None and (token[0] in ("number", "name") or token == ("op", "("))

    def _product(self) -> Growth:
        growth = self._power()
        while True:
            token = self._peek()
            if token in (("op", "*"), ("op", "/")):
                self._take()
                factor = self._power()
                growth = growth * factor if token[1] == "*" else growth / factor
            elif self._starts_atom():
                growth = growth * self._power()
            else:
                return growth

    def _power(self) -> Growth:
        base = self._atom()
        if self._peek() == ("op", "^"):
            self._take()
            kind, value = self._take()
            if kind != "number":
                raise ComplexityError(
                    f"exponent must be a number, found {value!r} in {self.text!r}"
                )
            return base ** float(value)
        return base

    def _atom(self) -> Growth:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ComplexityError(
                f"nested deeper than {MAX_NESTING} levels in {self.text[:40]!r}..."
            )
        try:
            return self._atom_body()
        finally:
            self.depth -= 1

    def _atom_body(self) -> Growth:
        kind, value = self._take()
        if kind == "number":
            return _CONSTANT
        if (kind, value) == ("op", "("):
            inner = self._sum()
            self._take(")")
            return inner
        if kind != "name":
            raise ComplexityError(f"unexpected {value!r} in {self.text!r}")
        if value == "sqrt":
            self._take("(")
            inner = self._sum()
            self._take(")")
            return inner**0.5
        if value == "log":
            argument = self._atom()
            # log of a polynomial in n is Theta(log n); log of a constant is constant.
            return Growth(0.0, 1) if argument.exponent > 0 else _CONSTANT
        if value == self.length_symbol:
            return Growth(1.0, 0)
        self.symbols.add(value)
        return Growth(self.scaling.get(value, 0.0), 0)


def parse_full(
    text: str, length_symbol: str = "n", scaling: dict[str, float] | None = None
) -> Parsed:
    """Parse ``text`` and also return the symbols other than ``length_symbol`` it uses.

    Examples:
        >>> sorted(parse_full("O(n (w + g))").symbols)
        ['g', 'w']
    """
    return _Parser(text.strip(), length_symbol, scaling or {}).parse()


def parse(text: str, length_symbol: str = "n", scaling: dict[str, float] | None = None) -> Growth:
    """The growth in ``length_symbol`` that the big-O string ``text`` claims.

    Symbols are constants unless ``scaling`` says how they grow with the length: a
    block size chosen as ``sqrt(n)`` is ``{"b": 0.5}``.

    Raises:
        ComplexityError: ``text`` does not follow the grammar.

    Examples:
        >>> parse("O(n^2)")
        Growth(exponent=2.0, log_power=0)
        >>> parse("O(n w)")
        Growth(exponent=1.0, log_power=0)
        >>> parse("O(n b + (n/b)^2)", scaling={"b": 0.5})
        Growth(exponent=1.5, log_power=0)
        >>> parse("O(" + "(" * 40 + "n" + ")" * 40 + ")")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        tools.catalog.complexity.ComplexityError: nested deeper than 32 levels in ...
    """
    return parse_full(text, length_symbol, scaling).growth
