"""A write of many catalog files killed at any point leaves the old set or the new one.

The child process is a real :class:`tools.catalog.Store` commit of 40 changed entries
and a new data file. It counts the file-system operations it makes (``os.fsync``,
``os.replace``, ``os.unlink``) and sends itself SIGKILL at the k-th one, for k spread
over the whole write; then ``python -m tools.catalog check`` runs, as the next user
would, and the catalog must be byte for byte the old set or the new one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tools.catalog import Store, load_catalog
from tools.catalog.journal import JOURNAL_NAME, STAGED_SUFFIX, commit_files
from tools.catalog.lock import CatalogLockedError, catalog_lock

CHILD = """
import os, signal, sys
from pathlib import Path
from tools.catalog import Store

root, kill_at = Path(sys.argv[1]), int(sys.argv[2])
calls = 0

def counted(function):
    def wrapper(*args, **kwargs):
        global calls
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return function(*args, **kwargs)
    return wrapper

store = Store(root)
catalog = store.load()
for id in sorted(catalog.entries)[:40]:
    store.update_entry(id, {"title": catalog.entries[id].title + " (revised)"})
store.write_data("zotero/watermark.json", {"version": 1})
os.fsync, os.replace, os.unlink = counted(os.fsync), counted(os.replace), counted(os.unlink)
store.commit()
print(calls)
"""


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != ".atlas.lock"
    }


def run_child(root: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(kill_at)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_write_killed_anywhere_recovers_to_old_or_new(tmp_path: Path) -> None:
    from tests.conftest import copy_catalog

    pristine = copy_catalog(tmp_path / "pristine")
    old = snapshot(pristine)
    finished = run_child(pristine, kill_at=0)
    assert finished.returncode == 0, finished.stderr
    total = int(finished.stdout)
    new = snapshot(pristine)
    assert new != old and total > 40

    outcomes = set()
    # Staging, the journal's own write (the decision), renames, and the last operation.
    for kill_at in sorted({1, 42, 43, 44, total // 2, total}):
        root = copy_catalog(tmp_path / f"killed-{kill_at}")
        killed = run_child(root, kill_at)
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr)
        check = subprocess.run(
            [sys.executable, "-m", "tools.catalog", "--root", str(root), "check"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "Traceback" not in check.stderr, check.stderr
        after = snapshot(root)
        assert after in (old, new), f"killed at operation {kill_at}: a mixed catalog"
        outcomes.add("new" if after == new else "old")
        assert not (root / JOURNAL_NAME).exists()
        assert not list(root.rglob(f"*{STAGED_SUFFIX}"))
    assert outcomes == {"old", "new"}, "the kill points cover both sides of the decision"


def test_an_unfinished_journal_is_reported_by_loading(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    (root / "papers").mkdir(parents=True)
    (root / JOURNAL_NAME).write_text('{"version": 1, "files": []}\n', encoding="utf-8")
    messages = [str(problem) for problem in load_catalog(root).problems]
    assert any("(journal): a write was interrupted" in message for message in messages)


def test_a_second_writer_waits_then_stops_clearly(catalog_copy: Path) -> None:
    with catalog_lock(catalog_copy), pytest.raises(CatalogLockedError, match="another tool"):
        Store(catalog_copy).locked(wait=0.2).__enter__()


def test_commit_writes_through_a_symlinked_entry(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.yaml"
    real.write_text("old\n", encoding="utf-8")
    link = tmp_path / "entry.yaml"
    os.symlink(real, link)
    commit_files(tmp_path, {link: "new\n"})
    assert link.is_symlink() and real.read_text(encoding="utf-8") == "new\n"
