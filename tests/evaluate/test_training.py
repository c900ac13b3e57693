"""The harness measures something: dense learns recall, a model that cannot mix tokens
stays at chance on every task, and a seed gives the same accuracy every time."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from tools.evaluate.cli import DEFAULT_STEPS
from tools.evaluate.model import Classifier
from tools.evaluate.tasks import TASKS
from tools.evaluate.train import RunKey, Settings, train_and_evaluate

SMALL = Settings(dim=32, depth=2, heads=4, tokens_per_step=1024, eval_size=256)
LENGTH = 64


class IdentityAttention(nn.Module):
    """TEST-ONLY: an attention layer in which every position sees only itself."""

    kind = "attention"

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)  # trainable, so the model is not frozen

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.proj(x)  # [b, n, d]: no position reads another


def identity_model(task: str) -> Classifier:
    model = Classifier(
        TASKS[task],
        "dense",
        causal=False,
        dim=SMALL.dim,
        depth=SMALL.depth,
        heads=SMALL.heads,
        length=LENGTH,
    )
    model.body.attns = nn.ModuleList(IdentityAttention(SMALL.dim) for _ in model.body.attns)
    return model


STEPS = 200  # enough for dense attention to learn long-distance at n = 64


def chance_bound(task: str) -> float:
    """Chance plus four standard errors over the held-out answers."""
    spec = TASKS[task]
    readouts = SMALL.eval_size * spec.readouts
    return spec.chance + 4 * math.sqrt(spec.chance * (1 - spec.chance) / readouts)


@pytest.mark.parametrize("task", list(TASKS))
def test_a_model_that_cannot_mix_tokens_stays_at_chance(task: str) -> None:
    torch.set_num_threads(1)
    key = RunKey("dense", task, LENGTH, 0)
    outcome = train_and_evaluate(key, STEPS, SMALL, identity_model(task))
    assert outcome.accuracy <= chance_bound(task), (task, outcome.accuracy)


def test_the_same_budget_takes_dense_attention_far_above_that_bound() -> None:
    torch.set_num_threads(1)
    outcome = train_and_evaluate(RunKey("dense", "long-distance", 64, 0), STEPS, SMALL)
    assert outcome.accuracy >= 0.9 > chance_bound("long-distance")


def test_a_seed_gives_the_same_accuracy_and_loss() -> None:
    torch.set_num_threads(1)
    key = RunKey("linear-transformer", "associative-recall", 64, 3)
    first = train_and_evaluate(key, 8, SMALL)
    second = train_and_evaluate(key, 8, SMALL)
    assert (first.accuracy, first.final_loss) == (second.accuracy, second.final_loss)
    third = train_and_evaluate(RunKey("linear-transformer", "associative-recall", 64, 4), 8, SMALL)
    assert third.final_loss != first.final_loss


def test_dense_attention_learns_associative_recall_at_512_within_the_budget() -> None:
    torch.set_num_threads(1)
    outcome = train_and_evaluate(
        RunKey("dense", "associative-recall", 512, 0), DEFAULT_STEPS, Settings()
    )
    assert outcome.accuracy >= 0.95, outcome
    assert outcome.steps == DEFAULT_STEPS and outcome.peak_bytes > 0


def test_a_mechanism_with_learned_length_sized_parameters_takes_a_longer_run() -> None:
    """Linformer's default ``max_seq_len`` is 512; the benchmark builds it for the run."""
    torch.set_num_threads(1)
    outcome = train_and_evaluate(RunKey("linformer", "long-distance", 640, 0), 2, SMALL)
    assert outcome.steps == 2
    model = Classifier(
        TASKS["listops"], "linformer", causal=False, dim=16, depth=1, heads=2, length=640
    )
    assert model.body.attns[0].max_seq_len == 640
