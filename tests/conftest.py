"""Shared pytest setup and the fixtures every room of the tests uses.

* One CPU thread for torch: the machine is shared and results are reproducible.
* :func:`catalog_copy`: a copy of the shipped catalog in a temporary folder, for any
  test that changes catalog files (the shipped catalog is never written by a test).
* The tests run on two xdist workers; the site tests, which share one site build, are
  kept together on one of them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tools.catalog import CATALOG_DIR

torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep the site tests on one xdist worker: they share one site build (minutes)."""
    site = Path(__file__).parent / "site"
    for item in items:
        if item.path.is_relative_to(site):
            item.add_marker(pytest.mark.xdist_group("site"))


def copy_catalog(target: Path) -> Path:
    """Copy the shipped catalog to ``target`` (created) and return it."""
    shutil.copytree(CATALOG_DIR, target)
    return target


@pytest.fixture
def catalog_copy(tmp_path: Path) -> Path:
    """A fresh copy of the shipped catalog in a temporary folder, for one test."""
    return copy_catalog(tmp_path / "catalog")
