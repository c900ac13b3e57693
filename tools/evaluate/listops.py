"""ListOps expressions in Long Range Arena's token format, built to a length budget.

Nangia and Bowman, *ListOps: A Diagnostic Dataset for Latent Tree Learning* (2018,
arXiv:1804.06028); Tay et al., *Long Range Arena: A Benchmark for Efficient
Transformers* (2020, arXiv:2011.04006) use it at lengths up to 2000 with at most 10
arguments an operator and depth 10, the limits kept here. LRA draws trees and rejects
those too long; here a tree is grown to fill a budget (an operator splits its budget
among its arguments), so one costs time linear in its length and none is rejected.

Tokens: 0 padding, ``1 + d`` the digit ``d``, then ``[MAX``, ``[MIN``, ``[MED``,
``[SM``, ``]`` and the readout token. ``[MED`` is the median rounded down (LRA's
``int(np.median(...))``), ``[SM`` the sum modulo 10.

Examples:
    >>> import random
    >>> row, answer = listops_sequence(24, random.Random(0))
    >>> len(row), row[-1] == READOUT, 0 <= answer <= 9
    (24, True, True)
    >>> evaluate_text("[MAX 4 [MIN 2 3 ] 1 [MED 1 5 8 9 ] [SM 8 5 ] ]")
    6
"""

from __future__ import annotations

import random
import statistics

PAD = 0
OPERATORS = ("[MAX", "[MIN", "[MED", "[SM")
FIRST_OPERATOR = 11  # [MAX; digits are 1 ... 10
CLOSE = 15
READOUT = 16
MAX_ARGS = 10
MAX_DEPTH = 10
NAMES = {
    PAD: "<pad>",
    **{1 + d: str(d) for d in range(10)},
    **{FIRST_OPERATOR + i: op for i, op in enumerate(OPERATORS)},
    CLOSE: "]",
    READOUT: "<readout>",
}


def apply_operator(operator: str, arguments: list[int]) -> int:
    """The value of ``operator`` over digits.

    Examples:
        >>> apply_operator("[MED", [1, 5, 8, 9]), apply_operator("[SM", [8, 5])
        (6, 3)
    """
    if operator == "[MAX":
        return max(arguments)
    if operator == "[MIN":
        return min(arguments)
    if operator == "[MED":
        return int(statistics.median(arguments))
    return sum(arguments) % 10


def _tree(budget: int, depth: int, rng: random.Random, out: list[int]) -> int:
    """Append a tree of at most ``budget`` tokens to ``out``; return its value."""
    if budget < 4 or depth >= MAX_DEPTH:
        digit = rng.randrange(10)
        out.append(1 + digit)
        return digit
    index = rng.randrange(len(OPERATORS))
    inner = budget - 2  # the operator and its closing bracket
    count = rng.randint(2, min(MAX_ARGS, inner))
    cuts = sorted(rng.sample(range(1, inner), count - 1))  # every argument >= 1 token
    shares = [b - a for a, b in zip([0, *cuts], [*cuts, inner], strict=True)]
    out.append(FIRST_OPERATOR + index)
    values, carry = [], 0
    for share in shares:  # what an argument leaves unused goes to the next one
        before = len(out)
        values.append(_tree(share + carry, depth + 1, rng, out))
        carry += share - (len(out) - before)
    out.append(CLOSE)
    return apply_operator(OPERATORS[index], values)


def listops_sequence(n: int, rng: random.Random) -> tuple[list[int], int]:
    """A row of ``n`` tokens (padding, expression, readout) and the expression's value.

    The expression is ``[SM <tree> d ]``, between ``n // 2`` and ``n - 1`` tokens long,
    with ``d`` chosen to make the value a uniformly drawn digit.
    """
    if n < 6:
        raise ValueError(f"listops needs n >= 6, got {n}")
    length = rng.randint(max(5, n // 2), n - 1)
    answer = rng.randrange(10)
    expression = [FIRST_OPERATOR + OPERATORS.index("[SM")]
    value = _tree(length - 3, 1, rng, expression)
    expression += [1 + (answer - value) % 10, CLOSE]
    return [PAD] * (n - 1 - len(expression)) + expression + [READOUT], answer


def tokens_of(text: str) -> list[int]:
    """Token ids of an expression written with spaces between tokens."""
    ids = {name: id for id, name in NAMES.items()}
    return [ids[word] for word in text.split()]


def evaluate_tokens(row: list[int]) -> int:
    """The value of the expression in ``row`` (padding and readout ignored)."""
    stack: list[list[int]] = [[]]
    operators: list[str] = []
    for token in row:
        if 1 <= token <= 10:
            stack[-1].append(token - 1)
        elif FIRST_OPERATOR <= token < CLOSE:
            operators.append(NAMES[token])
            stack.append([])
        elif token == CLOSE:
            arguments = stack.pop()
            stack[-1].append(apply_operator(operators.pop(), arguments))
    (value,) = stack[0]
    return value


def evaluate_text(text: str) -> int:
    """The value of an expression written as text (see the module's example)."""
    return evaluate_tokens(tokens_of(text))
