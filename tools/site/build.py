"""``build``: generate, then ``mkdocs build --strict``, timed."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path

from tools.catalog import ROOT
from tools.catalog.console import printable
from tools.catalog.lock import DEFAULT_WAIT
from tools.site.generate import generate


def show_mkdocs_log(level: int) -> logging.Handler:
    """MkDocs reports through logging; print its records the way its own CLI does."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)-7s -  %(message)s"))
    # Paper and class pages are deliberately outside the navigation; don't list them.
    handler.addFilter(lambda record: 'not included in the "nav"' not in record.getMessage())
    logger = logging.getLogger("mkdocs")
    logger.addHandler(handler)
    logger.setLevel(min(logger.getEffectiveLevel(), level))
    return handler


def build(
    catalog_root: Path | None = None, project: Path = ROOT, wait: float = DEFAULT_WAIT
) -> int:
    """Generate, then ``mkdocs build --strict``; prints the elapsed time.

    ``wait``: seconds to wait for the catalog's lock (see :func:`~tools.site.generate.generate`).
    """
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    handler = show_mkdocs_log(logging.WARNING)
    start = time.perf_counter()
    _, changes = generate(catalog_root, project, wait=wait)
    if changes is None:
        return 1
    generated = time.perf_counter()
    try:
        with contextlib.chdir(project):  # snippets' base_path is relative to the cwd
            mkdocs_build(load_config(str(project / "mkdocs.yml"), strict=True))
    except MkDocsException as error:
        print(f"site: build failed: {printable(str(error), keep_newlines=True)}", file=sys.stderr)
        return 1
    finally:
        logging.getLogger("mkdocs").removeHandler(handler)
    end = time.perf_counter()
    print(
        f"site: built {printable(str(project / 'site'))} in {end - start:.1f} s "
        f"(generate {generated - start:.1f} s, mkdocs {end - generated:.1f} s; target < 15 s)"
    )
    return 0
