"""Fixtures of the notes and citation tests: a catalog copy with Zotero links, a vault.

The vault is built in a temporary folder from the example note shipped beside the
repository (``shared/examples/notes/``) plus notes written here: user edits, unicode
and odd file names, broken references, code that must not be touched.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # plain `pytest` does not put the repository root on the path
    sys.path.insert(0, str(ROOT))

from notes_fixtures import (  # noqa: E402
    DELETED_ZOTERO,
    EXAMPLE_NOTE,
    READING_NOTE,
    READING_NOTE_NAME,
    SURVEY_ZOTERO,
    require_example_note,
)

from tools.catalog import CATALOG_DIR, Store  # noqa: E402


@pytest.fixture(scope="session")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped catalog whose survey has its Zotero link (as after a sync)."""
    target = tmp_path_factory.mktemp("catalog") / "catalog"
    shutil.copytree(CATALOG_DIR, target)
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
    shutil.copy2(require_example_note(), folder / EXAMPLE_NOTE.name)
    (folder / READING_NOTE_NAME).write_bytes(READING_NOTE.encode("utf-8"))
    (folder / "fig.png").write_bytes(b"\x89PNG")
    (folder / ".obsidian").mkdir()
    (folder / ".obsidian" / "ignored.md").write_text("[[Perfomer]]", encoding="utf-8")
    return folder
