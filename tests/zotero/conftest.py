"""Fixtures of the Zotero sync tests: a fake Zotero server, a catalog copy, a sync runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.zotero.zotero_fake_server import FakeZotero
from tests.zotero.zotero_test_data import GROUP_ID, SENTINEL_KEY, make_server, write_catalog
from tools.zotero.cli import main as sync_main

# Small timeouts and waits keep fault tests fast; the logic is the same as with defaults.
FAST = ["--timeout", "0.5", "--retries", "1", "--retry-delay", "0.01"]


@dataclass
class SyncRun:
    code: int
    out: str
    err: str

    @property
    def summary(self) -> str:
        lines = [line for line in self.out.splitlines() if "summary:" in line]
        return lines[-1] if lines else ""


@pytest.fixture
def server() -> Iterator[FakeZotero]:
    with make_server(SENTINEL_KEY) as fake:
        yield fake


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "catalog")


@pytest.fixture
def sync(
    server: FakeZotero,
    catalog_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., SyncRun]:
    """Run the sync in-process against the fake server's group library (options override)."""

    def run(*options: str, key: str | None = SENTINEL_KEY, library: bool = True) -> SyncRun:
        if key is None:
            monkeypatch.delenv("ZOTERO_API_KEY", raising=False)
        else:
            monkeypatch.setenv("ZOTERO_API_KEY", key)
        argv = ["--catalog", str(catalog_dir), *FAST]
        if library:
            argv += ["--library-type", "group", "--library-id", str(GROUP_ID)]
        if "--local" not in options and "--from-file" not in options:
            argv += ["--api-url", server.url]
        code = sync_main([*argv, *options])
        captured = capsys.readouterr()
        return SyncRun(code, captured.out, captured.err)

    return run
