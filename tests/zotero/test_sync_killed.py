"""A real sync killed anywhere in its final write leaves the old catalog or the new one.

The sync is the command itself (``python tools/sync_zotero.py``) in a child process that
drafts 60 new entries (``--add-new``) and changes the survey's entry, against the fake
Zotero server. The child counts the file-system operations it makes (``os.fsync``,
``os.replace``, ``os.unlink``) and sends itself SIGKILL (or SIGTERM) at the k-th, for k
spread over the whole write: staging, the journal (the point of decision), the renames
and the last operation. Then the next user comes: ``python -m tools.catalog check`` or
the next sync. The catalog must be byte for byte the old one or the new one, with no
staged or temporary file left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.zotero.zotero_fake_server import FakeZotero
from tests.zotero.zotero_test_data import (
    GROUP,
    GROUP_ID,
    ROOT,
    SENTINEL_KEY,
    SURVEY,
    make_server,
    populate_large,
    snapshot,
    write_catalog,
)
from tools.catalog.cli import main as catalog_main
from tools.zotero.cli import main as sync_main

NEW_ITEMS = 60

CHILD = """
import os, runpy, signal, sys

kill_at, how = int(sys.argv[1]), sys.argv[2]
calls = 0

def counted(function):
    def wrapper(*args, **kwargs):
        global calls
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL if how == "kill" else signal.SIGTERM)
        return function(*args, **kwargs)
    return wrapper

os.fsync, os.replace, os.unlink = counted(os.fsync), counted(os.replace), counted(os.unlink)
sys.argv = sys.argv[3:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print(f"operations: {calls}", file=sys.stderr)
"""


@pytest.fixture(scope="module")
def big_server() -> FakeZotero:
    with make_server(SENTINEL_KEY) as server:
        library = server.libraries[GROUP]
        populate_large(library, NEW_ITEMS)
        library.edit(SURVEY, title="Efficient Transformers: A Survey (revised)")
        yield server


def sync_argv(root: Path, server: FakeZotero) -> list[str]:
    return [
        *("--catalog", str(root), "--api-url", server.url, "--add-new"),
        *("--library-type", "group", "--library-id", str(GROUP_ID)),
    ]


def run_child(root: Path, server: FakeZotero, kill_at: int, how: str = "kill"):
    env = {name: value for name, value in os.environ.items() if "PROXY" not in name.upper()}
    env["ZOTERO_API_KEY"] = SENTINEL_KEY
    script = str(ROOT / "tools" / "sync_zotero.py")
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(kill_at), how, script, *sync_argv(root, server)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def leftovers(root: Path) -> list[str]:
    return sorted(
        str(path.relative_to(root)) for path in root.rglob(".*") if path.name != ".atlas.lock"
    )


def test_a_sync_killed_anywhere_in_its_write_leaves_old_or_new(
    big_server: FakeZotero,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZOTERO_API_KEY", SENTINEL_KEY)
    old = snapshot(write_catalog(tmp_path / "old"))
    finished = run_child(tmp_path / "old", big_server, kill_at=0)
    assert finished.returncode == 0, finished.stderr
    new = snapshot(tmp_path / "old")
    total = int(finished.stderr.rsplit("operations: ", 1)[1])
    created = [name for name in new if name not in old]
    assert len(created) > NEW_ITEMS  # the drafts, the watermark
    survey = "papers/efficient-transformers-survey.yaml"
    assert new[survey] != old[survey]
    staged = len([name for name in new if old.get(name) != new[name]])  # one flush each
    # Around the decision (the journal's flush, rename), early, middle and the very end.
    points = {1, staged // 2, staged + 1, staged + 2, staged + 3, total - 2, total}
    outcomes = set()
    for index, kill_at in enumerate(sorted(points)):
        for how in ("kill", "term") if kill_at == staged + 1 else ("kill",):
            root = write_catalog(tmp_path / f"{how}-{kill_at}")
            killed = run_child(root, big_server, kill_at, how)
            expected = -signal.SIGKILL if how == "kill" else -signal.SIGTERM
            assert killed.returncode == expected, (kill_at, killed.stderr)
            if index % 2:  # the next user runs the check...
                assert catalog_main(["--root", str(root), "check"]) == 0
                after = snapshot(root)
                assert after in (old, new), f"killed at operation {kill_at}: a mixed catalog"
                outcomes.add("new" if after == new else "old")
            else:  # ...or simply the next sync, which ends where an unbroken run ends
                assert sync_main(sync_argv(root, big_server)) == 0
                assert snapshot(root) == new, f"killed at operation {kill_at}"
            assert leftovers(root) == [], kill_at
    capsys.readouterr()
    assert outcomes == {"old", "new"}, "the kill points cover both sides of the decision"
