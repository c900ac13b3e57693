"""The files of an Obsidian-style vault: which notes it holds, read as exact text.

Examples:
    >>> import tempfile
    >>> vault = Path(tempfile.mkdtemp())
    >>> _ = (vault / "A note.md").write_text("x"); (vault / ".obsidian").mkdir()
    >>> _ = (vault / ".obsidian" / "skip.md").write_text("x")
    >>> [path.name for path in vault_notes(vault)]
    ['A note.md']
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

# Folders of a vault that hold no notes of the reader's (settings, trash, tooling).
SKIPPED_DIRS = {".obsidian", ".trash", ".git", "node_modules"}


def _skipped(vault: Path, path: Path) -> bool:
    parts = path.relative_to(vault).parts[:-1]
    return any(part in SKIPPED_DIRS or part.startswith(".") for part in parts)


def vault_notes(vault: Path) -> Iterator[Path]:
    """Every Markdown note of a vault, sorted, skipping hidden folders, settings and trash."""
    if not vault.is_dir():
        return
    for path in sorted(vault.rglob("*.md")):
        if path.is_file() and not _skipped(vault, path):
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


def read_note(path: Path) -> str | None:
    """A note's exact text (no newline translation), or None when it is not UTF-8."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None
