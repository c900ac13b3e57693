"""``python -m tools.evaluate``: the command line of the quality benchmark.

Usage::

    python -m tools.evaluate --jobs 2                        # everything (about 2 hours)
    python -m tools.evaluate --mechanisms dense,performer --tasks listops --lengths 512
    python -m tools.evaluate --mechanisms dense --steps 5 --lengths 64 --dry-run

It prints one line a finished run and ends with the table and the file it wrote. An
output file it cannot resume (malformed, or made under another setting) is reported as
``path: field: message`` and the command exits with status 1; a bad argument exits with
status 2 before anything runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import implementations
from tools.catalog import CATALOG_DIR
from tools.catalog.console import printable
from tools.catalog.evaluations import EVALUATIONS_FOLDER, EvaluationError
from tools.evaluate.run import Plan, default_mechanisms, evaluate, fail
from tools.evaluate.table import print_table
from tools.evaluate.tasks import TASKS

DESCRIPTION = "Train every attention mechanism on the same small tasks, and keep the accuracies."
DEFAULT_OUTPUT = CATALOG_DIR / EVALUATIONS_FOLDER / "cpu.json"
DEFAULT_LENGTHS = (512, 2048)
DEFAULT_SEEDS = (0, 1)
DEFAULT_STEPS = 250
# A run's budget: dense takes 0.07 s a step at n = 512; the step-by-step recurrences in
# Python (Mamba, RWKV) take 1-3 s, and would make the whole plan a day's work.
DEFAULT_MAX_SECONDS = 120.0
MAX_LENGTH = 2**16


def numbers(low: int, high: int) -> Callable[[str], list[int]]:
    """An argument type: comma-separated whole numbers in ``[low, high]``, sorted, once each.

    Examples:
        >>> numbers(0, 9)("3, 1,3")
        [1, 3]
        >>> numbers(1, 9)("0")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: '0' is not a whole number from 1 to 9
    """

    def parse(text: str) -> list[int]:
        found = set()
        for item in text.split(","):
            item = item.strip()
            value = int(item) if item.isascii() and item.isdecimal() else -1
            if not low <= value <= high:
                raise argparse.ArgumentTypeError(
                    f"{item!r} is not a whole number from {low} to {high}"
                )
            found.add(value)
        return sorted(found)

    return parse


def choices(known: list[str], what: str) -> Callable[[str], list[str]]:
    """An argument type: comma-separated ids, each one of ``known``, in the order given."""

    def parse(text: str) -> list[str]:
        ids = list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
        unknown = [id for id in ids if id not in known]
        if unknown or not ids:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(map(repr, unknown)) or '(none given)'}; "
                f"known: {', '.join(known)}"
            )
        return ids

    return parse


def parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    parser = argparse.ArgumentParser(prog="python -m tools.evaluate", description=DESCRIPTION)
    parser.add_argument(
        "--mechanisms",
        type=choices(implementations.available(), "mechanism"),
        help="comma-separated ids (default: every attention, memory and downsample one)",
    )
    parser.add_argument(
        "--tasks", type=choices(list(TASKS), "task"), help=f"default: {', '.join(TASKS)}"
    )
    parser.add_argument(
        "--lengths", type=numbers(8, MAX_LENGTH), default=list(DEFAULT_LENGTHS), help="n"
    )
    parser.add_argument("--seeds", type=numbers(0, 2**31), default=list(DEFAULT_SEEDS))
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="optimiser steps a run")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes, one thread each")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=DEFAULT_MAX_SECONDS,
        help="skip a run whose first steps predict a longer training (recorded with why)",
    )
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="run the planned runs again, replacing their records (e.g. after a change)",
    )
    parser.add_argument("--dry-run", action="store_true", help="run but write nothing")
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="default: catalog/evaluations/cpu.json"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; 0 on success, 1 when the output file cannot be resumed."""
    arguments = argv if argv is not None else sys.argv[1:]
    args = parser().parse_args(arguments)
    if args.steps < 1 or args.jobs < 1 or not args.max_seconds > 0:
        parser().error("--steps and --jobs must be at least 1, --max-seconds above 0")
    plan = Plan(
        mechanisms=args.mechanisms or default_mechanisms(),
        tasks=args.tasks or list(TASKS),
        lengths=args.lengths,
        seeds=args.seeds,
        steps=args.steps,
        jobs=args.jobs,
        output=args.output,
        command=" ".join(["python -m tools.evaluate", *arguments]),
        dry_run=args.dry_run,
        max_seconds=args.max_seconds,
        rerun=args.rerun,
    )
    try:
        evaluations = evaluate(plan)
    except EvaluationError as error:
        return fail(f"{error}\npython -m tools.evaluate: move that file away to start afresh")
    print_table(evaluations)
    where = printable(str(args.output))
    print(f"would write {where}" if args.dry_run else f"wrote {where}")
    return 0
