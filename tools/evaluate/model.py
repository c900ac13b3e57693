r"""The one small model every mechanism is trained in: embeddings, the Transformer, a readout.

A position ``(s, r)`` (symbol, role; see :mod:`tools.evaluate.tasks`) enters as

$$
x_i = E_\text{symbol}[s_i] + E_\text{role}[r_i] \;(+\, p_i),
$$

where $p_i$, added only on tasks whose answer depends on order (ListOps;
``TaskSpec.positions``), is the fixed sinusoidal position code of *Attention Is All
You Need* (Vaswani et al., 2017, arXiv:1706.03762), $p_{i,2j} = \sin(i / 10000^{2j/d})$ and
$p_{i,2j+1} = \cos(i / 10000^{2j/d})$, which needs no parameters and fits any length.
The sequence goes through :class:`implementations.transformer.Transformer` with the
mechanism in its attention slot, and a linear layer reads the classes off the last
``task.answers(n)`` output positions (for a ``downsample`` mechanism, the last positions of
its shortened output).

Every option of the mechanism keeps the paper's default but one: a mechanism with learned
length-specific parameters (a ``max_seq_len`` option: Linformer's projections,
Synthesizer's dense attention matrix) is built for the run's length, since its default
(512) cannot take a longer sequence (:func:`length_options`).

Examples:
    >>> import torch
    >>> from tools.evaluate.tasks import TASKS
    >>> model = Classifier(
    ...     TASKS["long-distance"], "dense", causal=True, dim=16, depth=1, heads=2, length=10
    ... )
    >>> model(torch.zeros(3, 10, 2, dtype=torch.long)).shape  # [b, readouts, classes]
    torch.Size([3, 8, 16])
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

import implementations
from implementations.transformer import Transformer
from tools.evaluate.tasks import TaskSpec


def sinusoidal_positions(n: int, dim: int) -> Tensor:
    """The ``[n, dim]`` sinusoidal position code (``dim`` even).

    Examples:
        >>> sinusoidal_positions(2, 4)
        tensor([[0.0000, 1.0000, 0.0000, 1.0000],
                [0.8415, 0.5403, 0.0100, 0.9999]])
    """
    position = torch.arange(n, dtype=torch.float32)[:, None]  # [n, 1]
    # 1 / 10000^(2j/d), j = 0 .. d/2 - 1
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(1e4) / dim))
    angles = position * frequency  # [n, d/2]
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(1)  # [n, d]


LENGTH_OPTION = "max_seq_len"  # the one option sized to the run (the module docstring says why)


def length_options(attention: str, length: int) -> dict[str, Any]:
    """The options ``attention`` is built with to take sequences of ``length`` tokens.

    Examples:
        >>> length_options("linformer", 2048)
        {'max_seq_len': 2048}
        >>> length_options("dense", 2048)
        {}
    """
    has_length = LENGTH_OPTION in implementations.mechanism(attention).options
    return {LENGTH_OPTION: length} if has_length else {}


class Classifier(nn.Module):
    """Embeddings, a :class:`~implementations.transformer.Transformer`, a linear readout.

    Args:
        task: The task (vocabularies, classes, readouts).
        attention: Registered mechanism id for the attention slot (options at defaults).
        causal: Build the causal form of the mechanism.
        dim: Width.
        depth: Blocks.
        heads: Attention heads.
        length: Sequence length the model is built for (:func:`length_options`).
    """

    def __init__(
        self,
        task: TaskSpec,
        attention: str,
        *,
        causal: bool,
        dim: int,
        depth: int,
        heads: int,
        length: int,
    ) -> None:
        super().__init__()
        self.task = task
        self.positions = task.positions
        self.symbols = nn.Embedding(task.symbols, dim)
        self.roles = nn.Embedding(task.roles, dim)
        self.body = Transformer(
            dim=dim,
            depth=depth,
            heads=heads,
            attention=attention,
            causal=causal,
            attention_options=length_options(attention, length),
        )
        self.head = nn.Linear(dim, task.classes)

    def forward(self, inputs: Tensor) -> Tensor:
        """``inputs`` ``[b, n, 2]`` -> logits ``[b, readouts, classes]``."""
        n, dim = inputs.shape[1], self.symbols.embedding_dim
        x = self.symbols(inputs[..., 0]) + self.roles(inputs[..., 1])  # [b, n, d]
        if self.positions:
            x = x + sinusoidal_positions(n, dim)
        out = self.body(x)
        self.aux_loss = out.aux_loss
        readouts = self.task.answers(n)
        return self.head(out.y[:, -readouts:])  # [b, readouts, classes]
