"""Shared pytest setup: one CPU thread (the machine is shared; results are reproducible)."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
