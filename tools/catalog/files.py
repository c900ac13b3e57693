"""Writing files so that a reader never sees half of one, alone or as a set.

:func:`atomic_write` writes a temporary file beside the target and renames it over;
:func:`write_all` writes several that way and restores the ones already written when a
later one fails.

Examples:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_all({folder / "a.txt": "A", folder / "b.txt": "B"})
    >>> sorted(path.read_text() for path in folder.iterdir())
    ['A', 'B']
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def writable_target(path: Path) -> Path:
    """The file a write to ``path`` should replace: a symlink's target, else ``path``.

    Replacing a symlink with a regular file would silently cut the user's link, and a
    FIFO or a device cannot be replaced atomically at all.

    Raises:
        IsADirectoryError: ``path`` (or its target) is a folder.
        OSError: ``path`` (or its target) exists but is not a regular file.
    """
    target = path.resolve() if path.is_symlink() else path
    if target.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a file to write")
    if target.exists() and not target.is_file():
        raise OSError(f"{path} is not a regular file (a FIFO, socket or device); not writing it")
    return target


def stage_file(staged: Path, target: Path, content: str | bytes) -> Path:
    """Write ``content`` to ``staged`` beside ``target``, flushed, with ``target``'s mode."""
    target.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    # Private until complete; then the old file's mode, or the umask's for a new one.
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, target.stat().st_mode & 0o777 if target.exists() else _default_mode())
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return staged


def fsync_directory(directory: Path) -> None:
    """Make renames in ``directory`` durable (a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def atomic_write(path: Path, text: str | bytes) -> None:
    """Write ``text`` (UTF-8) or bytes to ``path``: readers see the old file or the new,
    never half of one. A symlink is written through to its target; a FIFO or device is
    refused (see :func:`writable_target`)."""
    target = writable_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    os.close(handle)
    staged = Path(temporary)
    try:
        stage_file(staged, target, text)
        os.replace(staged, target)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


def write_all(files: Mapping[Path, str | None]) -> None:
    """Write several files all or nothing: on any failure, restore those already written.

    ``None`` as content deletes the file.
    """
    originals: dict[Path, bytes | None] = {
        path: path.read_bytes() if path.exists() else None for path in files
    }
    done: list[Path] = []
    try:
        for path, text in files.items():
            if text is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, text)
            done.append(path)
    except BaseException:
        for path in done:
            original = originals[path]
            if original is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, original)
        raise
