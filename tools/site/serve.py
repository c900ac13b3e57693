"""``serve``: generate, serve with live reload, and regenerate when the catalog changes.

Editing an entry regenerates its pages; MkDocs then rebuilds and reloads the browser,
without a restart.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from tools.catalog import CATALOG_DIR, ROOT
from tools.catalog.console import printable
from tools.catalog.lock import DEFAULT_WAIT
from tools.site.build import show_mkdocs_log
from tools.site.generate import generate


class Regenerator(FileSystemEventHandler):
    """Regenerates the pages shortly after the last change under the catalog folder.

    Editors write a file in several steps (temporary file, rename); waiting for a quiet
    moment regenerates once per save.
    """

    def __init__(self, catalog_root: Path, project: Path, delay: float = 0.3) -> None:
        super().__init__()
        self.catalog_root, self.project, self.delay = catalog_root, project, delay
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def dispatch(self, event: FileSystemEvent) -> None:
        # Reading the catalog raises "opened"/"closed" events too: react to changes only,
        # or each regeneration would trigger the next.
        if event.event_type not in ("created", "modified", "deleted", "moved"):
            return
        path = str(event.dest_path or event.src_path)
        if not path.endswith((".yaml", ".yml", ".json")):
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.delay, self.run)
            self._timer.daemon = True
            self._timer.start()

    def run(self) -> None:
        try:
            generate(self.catalog_root, self.project)
        except Exception as error:  # a bad edit must not stop the server
            message = printable(str(error), keep_newlines=True)
            print(f"site: regeneration failed: {type(error).__name__}: {message}", file=sys.stderr)


def serve(
    catalog_root: Path | None = None,
    project: Path = ROOT,
    port: int = 8000,
    wait: float = DEFAULT_WAIT,
) -> int:
    """Generate, then serve on 127.0.0.1 with live reload; regenerate on catalog edits.

    ``wait``: seconds the first generation waits for the catalog's lock.
    """
    from mkdocs.commands.serve import serve as mkdocs_serve
    from watchdog.observers import Observer

    root = (catalog_root or CATALOG_DIR).resolve()
    _, changes = generate(root, project, wait=wait)
    if changes is None:
        return 1
    observer = Observer()
    observer.schedule(Regenerator(root, project), str(root), recursive=True)
    observer.start()
    show_mkdocs_log(logging.INFO)
    try:
        with contextlib.chdir(project):
            mkdocs_serve(str(project / "mkdocs.yml"), livereload=True, dev_addr=f"127.0.0.1:{port}")
    finally:
        observer.stop()
        observer.join(timeout=5)
    return 0
