r"""The benchmark's tasks, generated on the fly from a seed: nothing is downloaded.

Every position of a sequence is a pair of ids ``(symbol, role)``; the model embeds it as
the sum of a symbol embedding and a role embedding, so a key and its value can share one
position. Each task answers at its last ``readouts`` positions (never at a pooled
sequence), and every answer is a class in ``range(classes)``.

Every step trains on the same number of tokens whatever the length, so a longer sequence
means fewer sequences a step. Recall and long-distance therefore ask one question per
``answer_every`` positions (32 at $n = 512$, 128 at $n = 2048$ for recall): every length
gets the same answers a step to learn from. With a fixed 32 queries, dense attention
stayed at chance on recall at $n = 2048$ (6.3% and 3.8% over two seeds, chance 3.1%);
with 128 it reaches 56% in the same 250 steps (seed 0). At $n \le 512$ nothing changes.

* ``associative-recall`` (multi-query associative recall; Arora et al., *Zoology:
  Measuring and Improving Recall in Efficient Language Models*, 2023, arXiv:2312.04927):
  every sequence draws a value for each of ``KEYS`` keys; all positions but the last
  $q = \max(32, n/16)$ hold a random key with its value (one pair a position, role = the
  value), and the last $q$ repeat a stored key (role = query), answered by its value.
  A key recurs with the same value, so at the start of training attention finds a
  match among ``KEYS`` keys rather than among $n$ positions, and a small model learns
  the task in a few hundred steps (with ``KEYS`` distinct pairs scattered over blanks
  it does not, at $n = 512$). Exact softmax attention retrieves any number of keys; a
  linear-kernel state of $d \times d$ per head holds about $d$ of them ($d = 16$
  here), which is what separates the two.
* ``listops`` (Nangia and Bowman, *ListOps: A Diagnostic Dataset for Latent Tree
  Learning*, 2018, arXiv:1804.06028), in Long Range Arena's token format:
  ``[MAX 4 [MIN 2 3 ] 1 ]`` with ``[MAX``, ``[MIN``, ``[MED``, ``[SM`` (sum modulo 10)
  over digits; the answer (10 classes) is read at a final readout token. The root is
  ``[SM <tree> d ]`` with ``d`` chosen so that the answer is uniform over the ten digits,
  so chance is exactly 1/10 (LRA's answers are skewed towards a few digits).
* ``long-distance``: the first $n/8$ positions hold ``MARKS`` marks, each repeated
  (mark ``i``: role ``1 + i`` and one symbol a sequence), the rest random symbols, and
  the last $q = \max(8, n/64)$ positions ask for a mark (its role, with the query
  symbol); the answer is the mark's symbol, at least $7n/8 - q$ positions (1760 at
  $n = 2048$) from its query. Attention confined to a local window cannot see it. A mark
  is repeated for the same reason as a key of recall (once among 2048 positions, a small
  model does not find it in the budget).

Examples:
    >>> batch = generate("associative-recall", 64, 2, seed=0)
    >>> batch.inputs.shape, batch.targets.shape  # [b, n, (symbol, role)], [b, readouts]
    (torch.Size([2, 64, 2]), torch.Size([2, 32]))
    >>> generate("associative-recall", 2048, 1, seed=0).targets.shape  # n / 16 queries
    torch.Size([1, 128])
    >>> generate("listops", 32, 1, seed=0).targets.shape
    torch.Size([1, 1])
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from tools.evaluate.listops import listops_sequence

QUERIES = 32  # queries at the end of associative recall (at least; see answer_every)
KEYS = 32  # its key alphabet: every key is stored, each with one value a sequence
VALUES = 32  # its value alphabet = its classes
SYMBOLS = 16  # long-distance alphabet = its classes
MARKS = 8  # marked symbols (and at least as many queries) of long-distance


@dataclass(frozen=True)
class TaskSpec:
    """What a task is, for the model and for the records.

    Attributes:
        id: Task id (``associative-recall``, ``listops``, ``long-distance``).
        name: Display name.
        description: One sentence for the records.
        causal: Causal mechanisms run in their causal form on it.
        positions: The model adds position codes (only where order decides the answer:
            without them a long sequence dilutes what attention must find, and recall
            and long-distance are questions about a set).
        symbols: Size of the symbol vocabulary.
        roles: Size of the role vocabulary.
        classes: Number of answer classes.
        readouts: Answered positions, the last ones of each sequence (at least; see
            :meth:`answers`).
        answer_every: One more answered position per this many positions of a long
            sequence; 0: always ``readouts``.
        chance: Accuracy of guessing (every class is equally likely).
    """

    id: str
    name: str
    description: str
    causal: bool
    positions: bool
    symbols: int
    roles: int
    classes: int
    readouts: int
    answer_every: int = 0

    @property
    def chance(self) -> float:
        return 1.0 / self.classes

    def answers(self, n: int) -> int:
        """How many of the last positions of a length-``n`` sequence are answered.

        Examples:
            >>> [TASKS["associative-recall"].answers(n) for n in (64, 512, 2048)]
            [32, 32, 128]
            >>> TASKS["listops"].answers(2048)
            1
        """
        return max(self.readouts, n // self.answer_every) if self.answer_every else self.readouts


@dataclass(frozen=True)
class Batch:
    """Generated sequences: ``inputs`` ``[b, n, 2]`` (symbol, role), ``targets`` ``[b, q]``."""

    inputs: Tensor
    targets: Tensor


def associative_recall(n: int, batch: int, generator: torch.Generator) -> Batch:
    """Key-value pairs filling the sequence, then queries of stored keys.

    Each sequence draws a value for every key; every position before the queries holds
    a random key with its value (a key recurs with the same value). Roles: 1 query,
    ``2 + v`` a pair holding value ``v``. Symbols: key ids ``0 .. KEYS - 1``.
    """
    queries = TASKS["associative-recall"].answers(n)
    if n <= queries:
        raise ValueError(f"associative recall needs n > {queries}, got {n}")
    free = n - queries
    table = torch.randint(VALUES, (batch, KEYS), generator=generator)  # [b, K]
    keys = torch.randint(KEYS, (batch, free), generator=generator)  # [b, n - Q]
    asked = torch.randint(free, (batch, queries), generator=generator)  # [b, Q] stored positions
    query_keys = keys.gather(1, asked)  # [b, Q]
    inputs = torch.empty(batch, n, 2, dtype=torch.long)  # [b, n, 2]
    inputs[:, :free, 0] = keys
    inputs[:, :free, 1] = table.gather(1, keys) + 2
    inputs[:, free:, 0] = query_keys
    inputs[:, free:, 1] = 1
    return Batch(inputs, table.gather(1, query_keys))  # targets: [b, Q]


def long_distance(n: int, batch: int, generator: torch.Generator) -> Batch:
    """Marked symbols in the first n/8 positions, noise after them, queries at the end.

    Roles: 0 noise, ``1 + i`` mark ``i`` (at a mark's positions and at its queries).
    Symbols: ``0 .. SYMBOLS - 1``, and ``SYMBOLS`` at a query.
    """
    queries = TASKS["long-distance"].answers(n)
    if n < 3 * MARKS:
        raise ValueError(f"long-distance needs n >= {3 * MARKS}, got {n}")
    head = max(MARKS, n // 8)  # the marks' block
    inputs = torch.zeros(batch, n, 2, dtype=torch.long)  # [b, n, 2]
    inputs[..., 0] = torch.randint(SYMBOLS, (batch, n), generator=generator)
    table = torch.randint(SYMBOLS, (batch, MARKS), generator=generator)  # [b, M]
    order = torch.rand(batch, head, generator=generator).argsort(-1)  # [b, head]
    marks = order % MARKS  # [b, head]: every mark head / M times, shuffled
    inputs[:, :head, 0] = table.gather(1, marks)
    inputs[:, :head, 1] = marks + 1
    asked = torch.randint(MARKS, (batch, queries), generator=generator)  # [b, Q]
    inputs[:, n - queries :, 0] = SYMBOLS
    inputs[:, n - queries :, 1] = asked + 1
    return Batch(inputs, table.gather(1, asked))  # targets: [b, Q]


def listops(n: int, batch: int, generator: torch.Generator) -> Batch:
    """LRA-format ListOps expressions, left-padded to ``n - 1``, then the readout token."""
    rng = random.Random(int(torch.randint(2**62, (1,), generator=generator)))
    rows, answers = zip(*(listops_sequence(n, rng) for _ in range(batch)), strict=True)
    inputs = torch.zeros(batch, n, 2, dtype=torch.long)  # [b, n, 2]
    inputs[..., 0] = torch.tensor(rows, dtype=torch.long)
    return Batch(inputs, torch.tensor(answers, dtype=torch.long)[:, None])  # targets: [b, 1]


TASKS: dict[str, TaskSpec] = {
    "associative-recall": TaskSpec(
        id="associative-recall",
        name="Associative recall",
        description=(
            f"key-value pairs (one position each; {KEYS} keys, each with one value a "
            f"sequence) fill all but the last max({QUERIES}, n/16) positions, which query "
            f"stored keys; answer each query's value ({VALUES} classes)"
        ),
        causal=True,
        positions=False,
        symbols=KEYS,
        roles=VALUES + 2,
        classes=VALUES,
        readouts=QUERIES,
        answer_every=16,
    ),
    "listops": TaskSpec(
        id="listops",
        name="ListOps",
        description=(
            "nested [MAX, [MIN, [MED and [SM over digits in Long Range Arena's format, "
            "about n/2 to n tokens; answer the value (10 classes, uniform)"
        ),
        causal=False,
        positions=True,
        symbols=17,
        roles=1,
        classes=10,
        readouts=1,
    ),
    "long-distance": TaskSpec(
        id="long-distance",
        name="Long-distance match",
        description=(
            f"{MARKS} marks (each repeated, one symbol each) fill the first n/8 positions, "
            f"random symbols the rest but the last max({MARKS}, n/64), which name a mark; "
            f"answer its symbol ({SYMBOLS} classes)"
        ),
        causal=True,
        positions=False,
        symbols=SYMBOLS + 1,
        roles=1 + MARKS,
        classes=SYMBOLS,
        readouts=MARKS,
        answer_every=64,
    ),
}
GENERATORS: dict[str, Callable[[int, int, torch.Generator], Batch]] = {
    "associative-recall": associative_recall,
    "listops": listops,
    "long-distance": long_distance,
}


def generate(task: str, n: int, batch: int, seed: int) -> Batch:
    """``batch`` sequences of length ``n`` of ``task``; the same seed gives the same batch."""
    generator = torch.Generator().manual_seed(seed)
    return GENERATORS[task](n, batch, generator)
