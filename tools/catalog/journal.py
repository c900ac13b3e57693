"""Writing a set of catalog files so that a crash leaves the old set or the new one.

A Zotero sync may change a hundred entries and a watermark at once. Renaming files one
by one is not enough: a ``kill -9`` between two renames would leave half an update.
The write therefore goes in three steps:

1. **stage**: every new content is written and flushed to a temporary file beside its
   target (``.<name>.atlas-staged``); nothing the readers see has changed;
2. **decide**: a journal listing every (staged file, target) pair is written atomically
   to ``<catalog>/.atlas-journal.json``; from this moment the write will happen;
3. **apply**: each staged file is renamed over its target (or the target deleted), then
   the journal is removed.

:func:`recover` is run by the next writer and by ``python -m tools.catalog check``: with
a journal it finishes step 3 (renames are idempotent: a staged file already renamed is
simply gone); without one it deletes staged files a crash left behind, so the old set
stays. Either way the catalog is afterwards byte for byte the old set or the new one.

Examples:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> commit_files(root, {root / "a.yaml": "new\\n", root / "b.yaml": None})
    >>> (root / "a.yaml").read_text(), (root / "b.yaml").exists(), recover(root)
    ('new\\n', False, None)
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from tools.catalog.files import atomic_write, fsync_directory, stage_file, writable_target

JOURNAL_NAME = ".atlas-journal.json"
STAGED_SUFFIX = ".atlas-staged"


def _staged_path(target: Path) -> Path:
    return target.with_name(f".{target.name}{STAGED_SUFFIX}")


def commit_files(root: Path, files: Mapping[Path, str | bytes | None]) -> None:
    """Write ``files`` (``None`` deletes) under ``root`` so that a crash cannot split them.

    The caller holds the catalog lock (:mod:`tools.catalog.lock`).
    """
    if not files:
        return
    plan: list[tuple[Path, Path | None]] = []
    try:
        for path, content in files.items():
            target = writable_target(path)  # a symlinked entry is written through
            staged = None if content is None else stage_file(_staged_path(target), target, content)
            plan.append((target, staged))
    except BaseException:
        for _, staged in plan:
            if staged is not None:
                staged.unlink(missing_ok=True)
        raise
    journal = {
        "version": 1,
        "files": [
            {"target": str(target), "staged": None if staged is None else str(staged)}
            for target, staged in plan
        ],
    }
    atomic_write(root / JOURNAL_NAME, json.dumps(journal, indent=2) + "\n")
    _apply(root)


def _apply(root: Path) -> int:
    """Step 3: rename every staged file of the journal over its target; remove the journal."""
    journal_path = root / JOURNAL_NAME
    plan = json.loads(journal_path.read_text(encoding="utf-8"))["files"]
    for step in plan:
        target = Path(step["target"])
        if step["staged"] is None:
            target.unlink(missing_ok=True)
            continue
        with contextlib.suppress(FileNotFoundError):  # already renamed before a crash
            os.replace(step["staged"], target)
    for directory in {Path(step["target"]).parent for step in plan}:
        fsync_directory(directory)
    journal_path.unlink()
    fsync_directory(root)
    return len(plan)


def recover(root: Path) -> str | None:
    """Finish or roll back a write that a crash interrupted; what was done, or None.

    The caller holds the catalog lock, so no live writer is interrupted.
    """
    if (root / JOURNAL_NAME).exists():
        try:
            count = _apply(root)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise RuntimeError(
                f"{root / JOURNAL_NAME}: cannot finish the interrupted write ({error}); "
                "restore the catalog from git and delete the journal"
            ) from error
        return f"finished an interrupted write of {count} file(s)"
    strays = sorted(root.rglob(f"*{STAGED_SUFFIX}"))
    # The journal's own temporary file, when a crash came before it was renamed.
    strays += sorted(root.glob(f".{JOURNAL_NAME}.*.tmp"))
    for stray in strays:
        stray.unlink(missing_ok=True)
    return (
        f"rolled back an interrupted write ({len(strays)} staged file(s) removed)"
        if strays
        else None
    )
