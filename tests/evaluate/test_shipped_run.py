"""The shipped benchmark run (``catalog/evaluations/cpu.json``) is whole and sane.

The harness's own tests prove it can measure; these prove the file we publish did: dense
attention learned recall, and no mechanism of the registry is missing from a length the
file covers, unless the file says why.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from tools.catalog.evaluations import TASK_IDS, Evaluations, load_evaluations
from tools.evaluate.cli import DEFAULT_LENGTHS, DEFAULT_SEEDS
from tools.evaluate.run import default_mechanisms

SHIPPED = "evaluations/cpu.json"
# The lengths the shipped run covers for every mechanism: the plan's (tools.evaluate.cli).
COMPLETE_LENGTHS = DEFAULT_LENGTHS


@pytest.fixture(scope="module")
def shipped() -> Evaluations:
    files = load_evaluations()
    assert SHIPPED in files, f"no shipped run: {sorted(files)}"
    return files[SHIPPED]


def accuracies(shipped: Evaluations, mechanism: str) -> dict[tuple[str, int, int], float]:
    """``{(task, length, seed): accuracy}`` of every shipped run of ``mechanism``."""
    return {
        (run.task, run.length, run.seed): run.accuracy
        for run in shipped.runs
        if run.mechanism == mechanism
    }


def per_seed(shipped: Evaluations, mechanism: str, task: str, length: int) -> dict[int, float]:
    found = accuracies(shipped, mechanism).items()
    return {seed: value for (t, n, seed), value in found if (t, n) == (task, length)}


def test_dense_attention_learns_recall_at_512(shipped: Evaluations) -> None:
    scores = per_seed(shipped, "dense", "associative-recall", 512)
    assert set(scores) == set(DEFAULT_SEEDS)
    assert min(scores.values()) >= 0.95, scores


def test_dense_attention_matches_a_token_2000_positions_back(shipped: Evaluations) -> None:
    """At n = 2048 every long-distance answer sits at least 1760 positions from its mark."""
    scores = per_seed(shipped, "dense", "long-distance", 2048)
    assert set(scores) == set(DEFAULT_SEEDS)
    assert min(scores.values()) >= 0.8, scores


@pytest.mark.parametrize("exact", ["flash-attention", "flash-attention-2"])
def test_exact_reformulations_score_like_dense_attention(shipped: Evaluations, exact: str) -> None:
    """FlashAttention is dense attention to round-off: it must learn what dense learns."""
    dense, other = accuracies(shipped, "dense"), accuracies(shipped, exact)
    assert set(other) == set(dense)
    for cell, accuracy in dense.items():
        assert abs(other[cell] - accuracy) <= 0.01, (cell, other[cell], accuracy)


@pytest.mark.parametrize("length", COMPLETE_LENGTHS)
def test_every_mechanism_has_every_task_or_a_reason(shipped: Evaluations, length: int) -> None:
    seeds: dict[tuple[str, str], set[int]] = defaultdict(set)
    for run in shipped.runs:
        if run.length == length:
            seeds[(run.mechanism, run.task)].add(run.seed)
    reasons = {(s.mechanism, s.task) for s in shipped.skipped if s.length == length}
    missing = [
        (mechanism, task)
        for mechanism in default_mechanisms()
        for task in TASK_IDS
        if seeds[(mechanism, task)] != set(DEFAULT_SEEDS) and (mechanism, task) not in reasons
    ]
    assert not missing, f"n = {length}: no result and no reason for {missing}"


def test_the_file_is_one_setting(shipped: Evaluations) -> None:
    """Every run trained the same number of steps; every task ran at the same lengths."""
    assert len({run.steps for run in shipped.runs}) == 1
    assert set(COMPLETE_LENGTHS) == {run.length for run in shipped.runs}
    assert set(shipped.tasks) == set(TASK_IDS)
