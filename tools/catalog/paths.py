"""Where the project and its catalog live, and how a path is shown to a person.

Examples:
    >>> (CATALOG_DIR / "taxonomy.yaml").exists()
    True
    >>> display(ROOT / "catalog" / "papers" / "performer.yaml", base=ROOT)
    'catalog/papers/performer.yaml'
"""

from __future__ import annotations

import contextlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CATALOG_DIR = ROOT / "catalog"


def display(path: Path, base: Path | None = None) -> str:
    """``path`` relative to ``base`` (default: the working directory) when it is inside it."""
    # A path that cannot be resolved (a symlink loop) is shown as given.
    with contextlib.suppress(ValueError, OSError, RuntimeError):
        return str(path.resolve().relative_to((base or Path.cwd()).resolve()))
    return str(path)
