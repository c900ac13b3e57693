"""A benchmark run: plan the runs, resume a stopped file, farm runs out, record each one.

The run's state is the :class:`~tools.catalog.evaluations.Evaluations` file it writes,
rewritten atomically after every finished run, so an interrupted benchmark resumes where
it stopped: a (mechanism, task, length, seed) already in the file is not run again; a
cell skipped for an error or for time (``--max-seconds``) is tried again; ``--rerun``
runs the planned runs again and replaces their records. A
file made under another setting (other steps, width, ...) is refused rather than mixed.

Runs go to ``jobs`` worker processes with one torch thread each (``jobs == 1`` runs in
this process). A (mechanism, task, length) that cannot run is recorded as skipped with
its reason: a ``downsample`` mechanism on a task answered at several positions (its
output has fewer positions than its input, none of them a query's), or an error the
mechanism raised.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import torch

import implementations
from tools.catalog.commands import commands_so_far
from tools.catalog.console import printable
from tools.catalog.evaluations import (
    SCHEMA_VERSION,
    EvaluationError,
    EvaluationRun,
    Evaluations,
    Machine,
    Skipped,
    Task,
    read_evaluations,
    write_evaluations,
)
from tools.evaluate.tasks import TASKS
from tools.evaluate.train import Outcome, RunKey, Settings, train_and_evaluate

KINDS = ("attention", "memory", "downsample")  # kinds the Transformer's attention slot takes


@dataclass(frozen=True)
class Plan:
    """What a benchmark runs."""

    mechanisms: Sequence[str]
    tasks: Sequence[str]
    lengths: Sequence[int]
    seeds: Sequence[int]
    steps: int
    jobs: int
    output: Path
    command: str
    dry_run: bool = False
    max_seconds: float | None = None
    rerun: bool = False  # run the planned runs again, replacing their records
    settings: Settings = Settings()  # noqa: RUF009 (frozen, so one shared default is safe)

    def runs(self) -> list[RunKey]:
        """Every run, the longest first (two workers then finish together)."""
        return [
            RunKey(mechanism, task, length, seed)
            for length in sorted(self.lengths, reverse=True)
            for mechanism in self.mechanisms
            for task in self.tasks
            for seed in self.seeds
        ]


def setting(plan: Plan) -> str:
    """The paragraph that says under what conditions every run of the file was made."""
    s = plan.settings
    return (
        f"Small models on synthetic tasks, comparable with each other, not with LRA: every "
        f"mechanism (options at their defaults; a maximum sequence length, where one is "
        f"learned, set to the run's) in the attention slot of the same pre-norm "
        f"Transformer (width {s.dim}, depth {s.depth}, {s.heads} heads), trained for "
        f"{plan.steps} steps of AdamW (lr {s.lr:g}, weight decay {s.weight_decay:g}, warm-up "
        f"over the first tenth, cosine decay to zero, gradients clipped to norm 1) on "
        f"{s.tokens_per_step} tokens a step, from scratch, on CPU with one thread a run; "
        f"accuracy on {s.eval_size} held-out sequences (as many answers in fewer sequences "
        f"where a longer sequence asks more questions) read at the task's answer "
        f"positions (a downsample mechanism: its last output position). Position codes on "
        f"ListOps only. On causal tasks, mechanisms without a causal form run non-causal "
        f"(the answers are never in the input). Spread is half the range over seeds."
    )


def machine() -> Machine:
    """This machine's processor and system, with one torch thread a worker."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                cpu,
            )
    except OSError:
        pass
    return Machine(cpu=cpu, threads=1, platform=platform.platform())


def start(saved: Evaluations | None, plan: Plan) -> Evaluations:
    """The file this benchmark writes: the saved one continued, or a new one.

    A continued file keeps its machine and start date and adds this run's command to its
    own (:func:`commands_so_far`).

    Raises:
        EvaluationError: the saved file was made under another setting.
    """
    paragraph = setting(plan)
    if saved is not None and saved.setting != paragraph:
        raise EvaluationError(
            f"{printable(str(plan.output))}: setting: made under another setting "
            f"({saved.setting[:80]}...); use another --output, or move the file away"
        )
    tasks = {
        id: Task(name=t.name, description=t.description, causal=t.causal, chance=t.chance)
        for id, t in TASKS.items()
    }
    return Evaluations(
        schema_version=SCHEMA_VERSION,
        command=commands_so_far(saved.command if saved else None, plan.command),
        machine=saved.machine if saved is not None else machine(),
        torch=torch.__version__,
        date=saved.date if saved is not None else dt.date.today().isoformat(),
        setting=paragraph,
        tasks={**(saved.tasks if saved is not None else {}), **tasks},
        runs=list(saved.runs) if saved is not None else [],
        skipped=list(saved.skipped) if saved is not None else [],
    )


def skip_reason(key: RunKey) -> str | None:
    """Why ``key`` cannot run at all, or None."""
    record = implementations.mechanism(key.mechanism)
    if record.kind not in KINDS:
        return f"a mechanism of kind {record.kind!r} does not fit the attention slot"
    readouts = TASKS[key.task].answers(key.length)
    if record.kind == "downsample" and readouts > 1:
        return (
            f"downsample: the output has fewer positions than the input, none of them "
            f"one of the task's {readouts} query positions"
        )
    return None


def _worker_init() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True, warn_only=True)


def execute(
    key: RunKey, steps: int, settings: Settings, max_seconds: float | None = None
) -> Outcome | str:
    """One run, or why it stopped (an error of the mechanism, or too slow to finish)."""
    try:
        return train_and_evaluate(key, steps, settings, max_seconds=max_seconds)
    except (RuntimeError, ValueError, MemoryError, IndexError) as error:
        return f"{type(error).__name__}: {error}"[:300]


def _outcomes(plan: Plan, keys: list[RunKey]) -> Iterator[tuple[RunKey, Outcome | str]]:
    """Each run's outcome as it finishes."""
    if plan.jobs == 1:  # in this process: its torch settings are restored afterwards
        threads = torch.get_num_threads()
        deterministic = torch.are_deterministic_algorithms_enabled()
        warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        _worker_init()
        try:
            for key in keys:
                yield key, execute(key, plan.steps, plan.settings, plan.max_seconds)
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        return
    context = multiprocessing.get_context("spawn")  # torch's thread pools do not survive fork
    with ProcessPoolExecutor(plan.jobs, mp_context=context, initializer=_worker_init) as pool:
        futures: dict[Future[Outcome | str], RunKey] = {
            pool.submit(execute, key, plan.steps, plan.settings, plan.max_seconds): key
            for key in keys
        }
        for future in as_completed(futures):
            yield futures[future], future.result()


def _eta(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{seconds:02d}s"


def _line(index: int, total: int, key: RunKey, what: str) -> str:
    head = f"[{index}/{total}] {key.mechanism} {key.task} n={key.length} seed={key.seed}"
    return f"{head} {printable(what)}"


def _skip(file: Evaluations, key: RunKey, reason: str) -> None:
    """Record ``key``'s (mechanism, task, length) as skipped, dropping its other seeds."""
    triple = (key.mechanism, key.task, key.length)
    file.runs = [run for run in file.runs if (run.mechanism, run.task, run.length) != triple]
    file.skipped.append(
        Skipped(mechanism=key.mechanism, task=key.task, length=key.length, reason=reason)
    )


def evaluate(plan: Plan, report: Callable[[str], None] = print) -> Evaluations:
    """Run every planned run not already in the output file; write after each.

    Raises:
        EvaluationError: the output file is malformed or was made under another setting.
    """
    file = start(read_evaluations(plan.output), plan)
    planned = plan.runs()
    if plan.rerun:  # e.g. after a change to a mechanism: its old records are dropped
        again = set(planned)
        file.runs = [r for r in file.runs if RunKey(*r.key) not in again]
    done = {RunKey(*key) for key in file.done()}
    # A planned cell skipped for an error or for time is tried again; a structural skip stays.
    retried = {(k.mechanism, k.task, k.length) for k in planned if skip_reason(k) is None}
    file.skipped = [s for s in file.skipped if (s.mechanism, s.task, s.length) not in retried]
    skipped = {(s.mechanism, s.task, s.length) for s in file.skipped}
    todo: list[RunKey] = []
    for key in planned:
        triple = (key.mechanism, key.task, key.length)
        if key in done or triple in skipped:
            continue
        reason = skip_reason(key)
        if reason is not None:
            _skip(file, key, reason)
            skipped.add(triple)
            report(f"skip {key.mechanism} {key.task} n={key.length}: {reason}")
        else:
            todo.append(key)
    _save(plan, file)
    began = time.perf_counter()
    for finished, (key, outcome) in enumerate(_outcomes(plan, todo), start=1):
        triple = (key.mechanism, key.task, key.length)
        if isinstance(outcome, str):
            if triple not in skipped:
                _skip(file, key, outcome)
                skipped.add(triple)
            report(_line(finished, len(todo), key, f"failed, skipped: {outcome}"))
        elif triple not in skipped:
            file.runs.append(
                EvaluationRun(
                    mechanism=key.mechanism,
                    task=key.task,
                    length=key.length,
                    seed=key.seed,
                    **vars(outcome),
                )
            )
            eta = (time.perf_counter() - began) / finished * (len(todo) - finished)
            what = (
                f"acc={outcome.accuracy:.3f} {outcome.tokens_per_second:,.0f} tok/s "
                f"{outcome.wall_seconds:.1f} s ETA {_eta(eta)}"
            )
            report(_line(finished, len(todo), key, what))
        _save(plan, file)
    return file


def _save(plan: Plan, file: Evaluations) -> None:
    if not plan.dry_run:
        write_evaluations(plan.output, file)


def default_mechanisms() -> list[str]:
    """Every registered mechanism the attention slot takes, ``dense`` first."""
    ids = [i for i in implementations.available() if implementations.mechanism(i).kind in KINDS]
    return sorted(ids, key=lambda i: (i != "dense", i))


def fail(message: str) -> int:
    print(printable(message, keep_newlines=True), file=sys.stderr)
    return 1
