"""``python -m tools.measure``: the command line of a measuring run.

Usage::

    python -m tools.measure                      # everything, n = 256 ... 16384 (long)
    python -m tools.measure --quick              # n = 256 ... 2048, fewer repeats
    python -m tools.measure --mechanisms performer,linformer --lengths 1024,2048
    python -m tools.measure --peers --mechanisms performer --lengths 1024,2048
    python -m tools.measure --remeasure --mechanisms performer   # afresh, after a code change

It ends with the closing table and the file it wrote. A measurement file it cannot resume
(malformed, or older than ``schema_version``) is reported as ``path: field: message`` and
the command exits with status 1. Lengths are whole numbers from 1 to ``MAX_LENGTH``,
checked before anything runs (a bad one exits with status 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import implementations
from tools.catalog import MeasurementError, Store, load_catalog
from tools.catalog.console import printable
from tools.measure.peer_timing import print_peers
from tools.measure.reference import DENSE_FFN
from tools.measure.run import Plan, measure
from tools.measure.table import print_table
from tools.measure.workload import make_setup

DESCRIPTION = "Measure every registered mechanism against exact attention, and keep the figures."
DEFAULT_LENGTHS = tuple(2**k for k in range(8, 15))  # 256 ... 16384
QUICK_LENGTHS = tuple(2**k for k in range(8, 12))  # 256 ... 2048
QUICK_REPEATS = 3
# Far beyond what any mechanism can run here; a longer "length" is a typo (or 10**12).
MAX_LENGTH = 2**20


def lengths(text: str) -> list[int]:
    """The ``--lengths`` value: whole numbers from 1 to ``MAX_LENGTH``, sorted, once each.

    Examples:
        >>> lengths("1024, 256,1024")
        [256, 1024]
        >>> lengths("0")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: '0' is not a length: give whole numbers from 1 to 1048576
    """
    found = set()
    for item in text.split(","):
        item = item.strip()
        # isdecimal: no sign, no "1e3", no "0x40", no "1_000"; int() would accept some.
        n = int(item) if item.isascii() and item.isdecimal() else 0
        if not 1 <= n <= MAX_LENGTH:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not a length: give whole numbers from 1 to {MAX_LENGTH}"
            )
        found.add(n)
    return sorted(found)


def parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    parser = argparse.ArgumentParser(prog="python -m tools.measure", description=DESCRIPTION)
    parser.add_argument("--mechanisms", help="comma-separated ids (default: every registered one)")
    parser.add_argument(
        "--lengths", type=lengths, help="comma-separated n (default: 256 ... 16384)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="n = 256 ... 2048 and 3 repeats")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="skip a length whose forward+backward is predicted to take longer",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also time each public implementation (peer) beside ours, pairs alternated",
    )
    parser.add_argument(
        "--remeasure",
        action="store_true",
        help="measure the chosen mechanisms afresh, replacing their stored points and peer "
        "comparisons (references are kept unless listed); resume an interrupted one without it",
    )
    parser.add_argument("--dry-run", action="store_true", help="measure but write nothing")
    parser.add_argument("--catalog", type=Path, help="catalog folder (default: catalog/)")
    return parser


def plan_from(args: argparse.Namespace, argv: list[str]) -> Plan:
    """The run the arguments ask for; an unknown mechanism fails here, before measuring."""
    requested = args.mechanisms.split(",") if args.mechanisms else implementations.available()
    ids: list[str] = list(requested)
    kinds = {id: implementations.mechanism(id).kind for id in ids if id != DENSE_FFN}  # typos
    if "dense" not in ids and any(kind != "ffn" for kind in kinds.values()):
        ids = ["dense", *ids]
    if DENSE_FFN not in ids and "ffn" in kinds.values():
        ids = [DENSE_FFN, *ids]
    planned: list[int] = (
        args.lengths
        if args.lengths is not None
        else list(QUICK_LENGTHS if args.quick else DEFAULT_LENGTHS)
    )
    setup = make_setup(
        dim=args.dim, heads=args.heads, device=args.device, dtype=args.dtype, threads=args.threads
    )
    return Plan(
        ids=ids,
        lengths=planned,
        setup=setup,
        repeats=QUICK_REPEATS if args.quick else args.repeats,
        max_seconds=args.max_seconds,
        command="python -m tools.measure " + " ".join(argv),
        peers=args.peers,
        # The references added above are kept: list dense to measure it afresh too.
        remeasure=tuple(requested) if args.remeasure else (),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command; 0 on success, 1 when the file to resume cannot be read."""
    arguments = argv if argv is not None else sys.argv[1:]
    args = parser().parse_args(arguments)
    catalog = load_catalog(args.catalog)
    plan = plan_from(args, arguments)
    torch.set_num_threads(plan.setup.threads)
    store = Store(args.catalog, dry_run=args.dry_run)
    try:
        measurements = measure(plan, catalog, store)
    except MeasurementError as error:
        print(printable(str(error), keep_newlines=True), file=sys.stderr)
        print("python -m tools.measure: move that file away to measure afresh", file=sys.stderr)
        return 1
    written = store.commit()
    print_table(measurements.results)
    if plan.peers:
        print_peers(measurements.results)
    paths = ", ".join(printable(str(path)) for path in written)
    print(f"{'would write' if args.dry_run else 'wrote'} {paths}")
    return 0
