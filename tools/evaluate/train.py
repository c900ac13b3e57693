r"""One run: train the small model on one task at one length from one seed, then score it.

Every run has the same budget: ``steps`` steps of AdamW (Loshchilov and Hutter,
*Decoupled Weight Decay Regularization*, 2017, arXiv:1711.05101) with a linear warm-up
over the first tenth and a cosine decay to zero after it,

$$
\eta_t = \eta \cdot \frac{t + 1}{w} \;\; (t < w), \qquad
\eta_t = \eta \cdot \tfrac12\Bigl(1 + \cos\frac{\pi (t - w + 1)}{T - w + 1}\Bigr)
\;\; (t \ge w),
$$

on ``tokens_per_step`` tokens a step (``max(1, tokens_per_step // n)`` sequences), the
cross-entropy of the readout positions (plus any auxiliary loss the mechanism reports)
as the loss and gradients clipped to norm 1. Training data come from a generator seeded
by (task, length, seed), so every mechanism sees the same sequences for a seed; the
model's initial weights come from ``torch.manual_seed(seed)``. Accuracy is measured on
a held-out set fixed per (task, length), the same for every mechanism and seed, with as
many answers at every length (:func:`held_out_size`).

The peak memory is that of the first training step (forward and backward), counted by
:class:`tools.measure.counters.LiveTensorBytes`: tensors alive before it (parameters,
optimiser state, the batch) are not counted.

Examples:
    >>> settings = Settings(dim=16, depth=1, heads=2, tokens_per_step=64, eval_size=8)
    >>> outcome = train_and_evaluate(RunKey("dense", "long-distance", 32, 0), 3, settings)
    >>> outcome.steps, 0.0 <= outcome.accuracy <= 1.0, outcome.peak_bytes > 0
    (3, True, True)
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

import implementations
from tools.evaluate.model import Classifier
from tools.evaluate.tasks import GENERATORS, TASKS, Batch, generate
from tools.measure.counters import LiveTensorBytes

EVAL_SEED = 1_000_003  # the held-out sets' seed, far from any training seed
EVAL_TOKENS = 8192  # tokens a scoring batch (no gradients: larger batches are cheaper)
PROBE_STEPS = 3  # steps timed (after the first) to predict a run's training time


@dataclass(frozen=True)
class Settings:
    """What every run shares: model, optimiser and budget (the steps come per run)."""

    dim: int = 64
    depth: int = 2
    heads: int = 4
    lr: float = 3e-3
    weight_decay: float = 0.01
    tokens_per_step: int = 2048
    eval_size: int = 256  # held-out sequences at the task's fewest answers (held_out_size)


@dataclass(frozen=True)
class RunKey:
    """Which run: a mechanism on a task at a length from a seed."""

    mechanism: str
    task: str
    length: int
    seed: int


@dataclass(frozen=True)
class Outcome:
    """What a run measured (the fields of an evaluation record)."""

    accuracy: float
    tokens_per_second: float
    peak_bytes: int
    wall_seconds: float
    steps: int
    final_loss: float


def runs_causal(key: RunKey) -> bool:
    """Causal form on a causal task when the mechanism has one; else the non-causal form.

    The answers of the causal tasks are never in the input and are read at the last
    positions, so a non-causal mechanism gains no shortcut from seeing later positions.
    """
    return TASKS[key.task].causal and implementations.mechanism(key.mechanism).supports_causal


def data_seed(key: RunKey) -> int:
    """The training data's seed: the same for every mechanism, different per (task, n, seed)."""
    return zlib.crc32(f"{key.task}:{key.length}:{key.seed}".encode())


def lr_factor(step: int, steps: int) -> float:
    """Warm-up for the first tenth of ``steps``, then a cosine to zero.

    Examples:
        >>> [round(lr_factor(t, 20), 3) for t in (0, 1, 2, 11, 19)]
        [0.5, 1.0, 0.993, 0.459, 0.007]
    """
    warmup = max(1, steps // 10)
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup + 1) / max(1, steps - warmup + 1)))


def held_out_size(task: str, length: int, settings: Settings) -> int:
    """Held-out sequences scored: ``eval_size`` of them at the task's fewest answers.

    A task that asks more questions of a longer sequence is scored on fewer sequences, so
    every length has the same number of answers to score (the held-out forward pass of
    256 sequences of 2048 would otherwise cost a fifth of the run).

    Examples:
        >>> [held_out_size("associative-recall", n, Settings()) for n in (512, 2048)]
        [256, 64]
        >>> held_out_size("listops", 2048, Settings())
        256
    """
    spec = TASKS[task]
    return max(1, settings.eval_size * spec.readouts // spec.answers(length))


def loss_of(model: Classifier, batch: Batch) -> torch.Tensor:
    """Cross-entropy over every readout, plus the mechanism's auxiliary loss."""
    logits = model(batch.inputs)  # [b, readouts, classes]
    return F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten()) + model.aux_loss


@torch.no_grad()
def accuracy(model: nn.Module, batch: Batch, chunk: int) -> float:
    """Fraction of readouts answered right, in chunks of ``chunk`` sequences."""
    model.eval()
    right = 0
    for start in range(0, batch.inputs.shape[0], chunk):
        logits = model(batch.inputs[start : start + chunk])  # [c, readouts, classes]
        right += int((logits.argmax(-1) == batch.targets[start : start + chunk]).sum())
    model.train()
    return right / batch.targets.numel()


class TooSlow(RuntimeError):
    """A run whose training is predicted to take longer than allowed."""


def train_and_evaluate(
    key: RunKey,
    steps: int,
    settings: Settings,
    model: Classifier | None = None,
    max_seconds: float | None = None,
) -> Outcome:
    """Train ``model`` (default: the key's mechanism in the shared model) and score it.

    Args:
        key: The run.
        steps: Optimiser steps.
        settings: The shared settings.
        model: A model to train instead of building one (tests plug in test-only layers).
        max_seconds: Give up (:class:`TooSlow`) when the first steps predict a longer
            training; None: no limit.

    Raises:
        TooSlow: the predicted training time is over ``max_seconds``.
    """
    start = time.perf_counter()
    task = TASKS[key.task]
    torch.manual_seed(key.seed)
    if model is None:
        model = Classifier(
            task,
            key.mechanism,
            causal=runs_causal(key),
            dim=settings.dim,
            depth=settings.depth,
            heads=settings.heads,
            length=key.length,
        )
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda t: lr_factor(t, steps))
    generator = torch.Generator().manual_seed(data_seed(key))
    size = max(1, settings.tokens_per_step // key.length)
    peak, losses, seconds = 0, [], []
    for step in range(steps):
        batch = GENERATORS[key.task](key.length, size, generator)
        began = time.perf_counter()
        if step == 0:
            with LiveTensorBytes() as tracker:
                loss = loss_of(model, batch)
                loss.backward()
            peak = tracker.peak
        else:
            loss = loss_of(model, batch)
            loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        scheduler.step()
        seconds.append(time.perf_counter() - began)
        if max_seconds is not None and 1 <= step <= PROBE_STEPS:
            predicted = sum(seconds[1:]) / step * steps
            # One timed step decides a run predicted at twice the budget: the probe of a
            # mechanism at 10 s a step would otherwise cost half a minute to say no.
            if predicted > max_seconds * (1 if step == PROBE_STEPS else 2):
                raise TooSlow(
                    f"too slow here: {steps} steps predicted to take {predicted:.0f} s "
                    f"(over --max-seconds {max_seconds:g})"
                )
        losses.append(float(loss.detach()))
    held_out = generate(
        key.task, key.length, held_out_size(key.task, key.length, settings), EVAL_SEED + key.length
    )
    score = accuracy(model, held_out, max(1, EVAL_TOKENS // key.length))
    tail = losses[-max(1, steps // 10) :]
    timed = seconds[1:] or seconds  # the first step ran under the memory counter
    return Outcome(
        accuracy=score,
        tokens_per_second=size * key.length * len(timed) / max(sum(timed), 1e-9),
        peak_bytes=max(peak, 1),
        wall_seconds=time.perf_counter() - start,
        steps=steps,
        final_loss=sum(tail) / len(tail),
    )
