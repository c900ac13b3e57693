"""The generated tasks: shapes, answers that follow from the input, determinism, balance."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch

from tools.evaluate.listops import (
    CLOSE,
    MAX_ARGS,
    PAD,
    READOUT,
    evaluate_text,
    evaluate_tokens,
    listops_sequence,
)
from tools.evaluate.tasks import KEYS, MARKS, QUERIES, SYMBOLS, TASKS, VALUES, generate


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("n", [64, 512, 2048])
def test_shapes_ranges_and_determinism(task: str, n: int) -> None:
    spec = TASKS[task]
    batch = generate(task, n, 4, seed=3)
    assert batch.inputs.shape == (4, n, 2)
    assert batch.targets.shape == (4, spec.answers(n))
    assert int(batch.inputs[..., 0].min()) >= 0 and int(batch.inputs[..., 0].max()) < spec.symbols
    assert int(batch.inputs[..., 1].min()) >= 0 and int(batch.inputs[..., 1].max()) < spec.roles
    assert int(batch.targets.min()) >= 0 and int(batch.targets.max()) < spec.classes
    again = generate(task, n, 4, seed=3)
    torch.testing.assert_close(again.inputs, batch.inputs)
    torch.testing.assert_close(again.targets, batch.targets)
    other = generate(task, n, 4, seed=4)
    assert not torch.equal(other.inputs, batch.inputs)


def test_recall_answers_are_the_stored_values_of_the_queried_keys() -> None:
    batch = generate("associative-recall", 256, 8, seed=0)
    for inputs, targets in zip(batch.inputs, batch.targets, strict=True):
        stored, queries = inputs[:-QUERIES], inputs[-QUERIES:]
        assert bool((stored[:, 1] >= 2).all()) and bool((queries[:, 1] == 1).all())
        table: dict[int, int] = {}
        for key, role in stored.tolist():
            assert table.setdefault(key, role - 2) == role - 2, "a key keeps one value"
        assert [table[key] for key in queries[:, 0].tolist()] == targets.tolist()
    assert TASKS["associative-recall"].chance == 1 / VALUES
    assert int(batch.inputs[..., 0].max()) < KEYS


def test_long_distance_answers_are_the_marked_symbols_far_from_their_queries() -> None:
    n = 2048
    batch = generate("long-distance", n, 16, seed=1)
    for inputs, targets in zip(batch.inputs, batch.targets, strict=True):
        symbols, roles = inputs[:, 0].tolist(), inputs[:, 1].tolist()
        asked = n // 64
        head, queries = n // 8, roles[-asked:]
        assert all(1 <= role <= MARKS for role in roles[:head])
        assert all(role == 0 for role in roles[head : n - asked])
        assert all(symbol == SYMBOLS for symbol in symbols[-asked:])
        table: dict[int, int] = {}
        for symbol, role in zip(symbols[:head], roles[:head], strict=True):
            assert table.setdefault(role, symbol) == symbol, "a mark keeps one symbol"
        assert sorted(table) == list(range(1, MARKS + 1))
        assert [table[role] for role in queries] == targets.tolist()
        assert n - asked - head >= 7 * n // 8 - asked == 1760
    assert TASKS["long-distance"].chance == 1 / SYMBOLS


def test_listops_evaluates_lra_examples() -> None:
    assert evaluate_text("[MAX 2 9 [MIN 4 7 ] 0 ]") == 9
    assert evaluate_text("[MED 1 5 8 9 ]") == 6  # int(median) rounds 6.5 down
    assert evaluate_text("[SM [MAX 3 4 ] [MIN 8 9 ] 7 ]") == 9  # (4 + 8 + 7) % 10
    assert evaluate_text("[MIN [SM 9 9 ] [MED 3 ] 5 ]") == 3


@pytest.mark.parametrize("n", [64, 2048])
def test_listops_rows_are_well_formed_and_answered(n: int) -> None:
    rng = random.Random(5)
    for _ in range(20):
        row, answer = listops_sequence(n, rng)
        assert len(row) == n and row[-1] == READOUT
        body = [t for t in row[:-1] if t != PAD]
        assert row[: n - 1 - len(body)] == [PAD] * (n - 1 - len(body)), "left padding only"
        assert n // 2 - 2 <= len(body) <= n - 1
        assert evaluate_tokens(row) == answer
        depth = 0
        for token in body:
            depth += 1 if 11 <= token < CLOSE else -1 if token == CLOSE else 0
            assert depth >= 0
        assert depth == 0


def test_listops_answers_are_uniform_and_arity_is_bounded() -> None:
    rng = random.Random(0)
    answers = Counter(listops_sequence(128, rng)[1] for _ in range(2000))
    assert set(answers) == set(range(10))
    assert max(answers.values()) < 260 and min(answers.values()) > 140  # 200 expected
    row, _ = listops_sequence(2048, random.Random(1))
    stack = [0]
    for token in row:
        if 11 <= token < CLOSE:
            stack[-1] += 1
            stack.append(0)
        elif token == CLOSE:
            assert 2 <= stack.pop() <= MAX_ARGS
        elif 1 <= token <= 10:
            stack[-1] += 1
