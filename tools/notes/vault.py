"""The files of an Obsidian-style vault: which notes it holds, read as exact text.

Examples:
    >>> import tempfile
    >>> vault = Path(tempfile.mkdtemp())
    >>> _ = (vault / "A note.md").write_text("x"); (vault / ".obsidian").mkdir()
    >>> _ = (vault / ".obsidian" / "skip.md").write_text("x")
    >>> [path.name for path in vault_notes(vault)]
    ['A note.md']
    >>> _ = (vault / "big.md").write_bytes(b"x" * (MAX_NOTE_BYTES + 1))
    >>> read_note(vault / "big.md") is None, why_unread(vault / "big.md")
    (True, 'larger than 5 MB; skipped')
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

# Notes larger than this are skipped with a message: a reader's note is a few kB, and
# scanning a huge generated file would hold the whole run up for nothing.
MAX_NOTE_BYTES = 5 * 1024 * 1024

# Folders of a vault that hold no notes of the reader's (settings, trash, tooling).
SKIPPED_DIRS = {".obsidian", ".trash", ".git", "node_modules"}


def _skipped(vault: Path, path: Path) -> bool:
    parts = path.relative_to(vault).parts[:-1]
    return any(part in SKIPPED_DIRS or part.startswith(".") for part in parts)


def vault_notes(vault: Path) -> Iterator[Path]:
    """Every Markdown note of a vault, sorted, skipping hidden folders, settings and trash.

    A note reached twice (a symlink to another note of the vault) is listed once, so
    that its managed block is not taken for two notes holding the same entry.
    """
    if not vault.is_dir():
        return
    seen: set[Path] = set()
    for path in sorted(vault.rglob("*.md")):
        if path.is_file() and not _skipped(vault, path):
            real = path.resolve()
            if real not in seen:
                seen.add(real)
                yield path


def link_targets(vault: Path) -> set[str]:
    """What a ``[[wikilink]]`` can name in the vault: note stems and attachment names.

    Casefolded, as Obsidian resolves links case-insensitively.
    """
    names: set[str] = set()
    if not vault.is_dir():
        return names
    for path in vault.rglob("*"):
        if path.is_file() and not _skipped(vault, path):
            names.add(path.name.casefold())
            if path.suffix == ".md":
                names.add(path.stem.casefold())
    return names


def _too_large(path: Path) -> bool:
    try:
        return path.stat().st_size > MAX_NOTE_BYTES
    except OSError:
        return False


def read_note(path: Path) -> str | None:
    """A note's exact text (no newline translation), or None when it is not UTF-8 or is
    larger than :data:`MAX_NOTE_BYTES` (:func:`why_unread` says which)."""
    if _too_large(path):
        return None
    try:
        return path.read_bytes().decode("utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def why_unread(path: Path) -> str:
    """Why :func:`read_note` gave None for ``path``."""
    if _too_large(path):
        return f"larger than {MAX_NOTE_BYTES // (1024 * 1024)} MB; skipped"
    try:
        path.read_bytes().decode("utf-8")
    except OSError as error:
        return f"unreadable ({error.strerror}); skipped"
    except UnicodeDecodeError:
        return "not UTF-8 text; skipped"
    return "read"


def unwritable(vault: Path, path: Path) -> str | None:
    """Why writing ``path`` of ``vault`` is refused, or None when it may be written.

    A symlink (to a note or a folder) is written through, but only to a target inside the vault:
    a tool never writes outside the vault it was given. A note without write permission
    (read-only, checked on the mode bits too, since root may write anything) is the
    reader's choice to keep it as it is.
    """
    target = path.resolve()
    if not target.is_relative_to(vault.resolve()):  # a linked note, or a linked folder
        return "links to a file outside the vault"
    if not target.exists():
        return None
    mode = stat.S_IMODE(target.stat().st_mode)
    if not os.access(target, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return "read-only"
    if not os.access(target.parent, os.W_OK | os.X_OK):
        return "in a read-only folder"
    return None
