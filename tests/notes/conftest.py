"""Fixtures of the notes tests: a catalog copy with Zotero links, a vault.

The vault is built in a temporary folder from the example note shipped beside the
repository (``shared/examples/notes/``) plus notes written here: user edits, unicode
and odd file names, broken references, code that must not be touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import copy_catalog
from tests.notes.notes_fixtures import (
    DELETED_ZOTERO,
    READING_NOTE,
    READING_NOTE_NAME,
    SURVEY_ZOTERO,
    require_example_note,
)
from tools.catalog import Store


@pytest.fixture(scope="session")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped catalog whose survey has its Zotero link (as after a sync).

    One copy for the session: the tests read it and never change it.
    """
    target = copy_catalog(tmp_path_factory.mktemp("catalog") / "catalog")
    store = Store(target)
    store.update_entry("efficient-transformers-survey", {"zotero": SURVEY_ZOTERO})
    store.update_entry("performer", {"zotero": DELETED_ZOTERO})
    store.commit()
    return target


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    """A vault with the example note and the reader's note."""
    folder = tmp_path / "vault"
    folder.mkdir()
    shutil.copy2(require_example_note(), folder / require_example_note().name)
    # The shared example may be read-only; the reader's own copy of it is not.
    (folder / require_example_note().name).chmod(0o644)
    (folder / READING_NOTE_NAME).write_bytes(READING_NOTE.encode("utf-8"))
    (folder / "fig.png").write_bytes(b"\x89PNG")
    (folder / ".obsidian").mkdir()
    (folder / ".obsidian" / "ignored.md").write_text("[[Perfomer]]", encoding="utf-8")
    return folder
