"""`serve` regenerates the pages when a catalog entry changes, without a restart."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from watchdog.observers import Observer

from tests.site.site_support import BuiltSite
from tools.site.generate import generate
from tools.site.serve import Regenerator


def _wait_for(path: Path, text: str, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(encoding="utf-8"):
            return True
        time.sleep(0.1)
    return False


def test_editing_an_entry_regenerates_its_page(built_site: BuiltSite, tmp_path: Path) -> None:
    catalog, project = tmp_path / "catalog", tmp_path / "project"
    shutil.copytree(built_site.catalog, catalog)
    (project / "docs").mkdir(parents=True)
    _, changes = generate(catalog, project, quiet=True)
    assert changes is not None and changes.written
    page = project / "docs" / "papers" / "linformer.md"
    entry = catalog / "papers" / "linformer.yaml"

    observer = Observer()
    observer.schedule(Regenerator(catalog, project, delay=0.05), str(catalog), recursive=True)
    observer.start()
    try:
        text = entry.read_text(encoding="utf-8")
        entry.write_text(text.replace("summary: >-", "summary: >-\n  Freshly edited."), "utf-8")
        assert _wait_for(page, "Freshly edited.")
        # A broken edit keeps the last good pages instead of emptying the site.
        entry.write_text("id: [unclosed\n", encoding="utf-8")
        time.sleep(1.0)
        assert "Freshly edited." in page.read_text(encoding="utf-8")
    finally:
        observer.stop()
        observer.join(timeout=5)


def test_dry_run_of_the_shipped_catalog_writes_nothing(tmp_path: Path) -> None:
    # The shipped catalog, with whatever measurements are committed, generates cleanly.
    _, changes = generate(None, tmp_path, dry_run=True, quiet=True)
    assert changes is not None and "papers/linformer.md" in changes.written
    assert not (tmp_path / "docs").exists()
