"""One writer at a time: the lock every tool takes before it writes catalog-derived files.

Two Zotero syncs started together would each read the catalog, then each write it, and
the second would silently undo the first. A sync therefore holds an exclusive lock on
``<catalog>/.atlas.lock`` for its whole run; ``notes export`` and ``tools.site
generate`` take the same lock while they read the catalog and write what they derive
from it. A second tool waits a few seconds, then stops with a clear message. The lock
is the kernel's (``flock``): a killed process releases it, so it never goes stale.

Examples:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> with catalog_lock(root):
    ...     with catalog_lock(root, wait=0.1):
    ...         pass  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tools.catalog.lock.CatalogLockedError: another tool is writing ... (process ...); ...
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from tools.catalog.journal import recover

LOCK_NAME = ".atlas.lock"
DEFAULT_WAIT = 5.0


class CatalogLockedError(RuntimeError):
    """Another process holds the catalog lock for longer than we were willing to wait."""


@contextlib.contextmanager
def catalog_lock(root: Path, wait: float = DEFAULT_WAIT) -> Iterator[str | None]:
    """Hold the catalog's lock; yields what recovering an interrupted write did, if anything.

    Args:
        root: The catalog folder.
        wait: Seconds to wait for another holder before giving up.

    Raises:
        CatalogLockedError: the lock was still held after ``wait`` seconds.
    """
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_NAME
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = path.read_text(encoding="utf-8").strip() or "unknown"
                    raise CatalogLockedError(
                        f"another tool is writing {root} (process {holder}); "
                        "try again when it has finished"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        try:
            yield recover(root)
        finally:
            os.ftruncate(descriptor, 0)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
