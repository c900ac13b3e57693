r"""``build``: generate, then ``mkdocs build --strict``, timed, then check what was built.

After MkDocs, every built page is scanned for markup that did not render: Sphinx roles
(``:func:`x```), which mkdocstrings does not resolve, and LaTeX outside the math that
KaTeX renders (``$$``, ``\left``, ``\mathrm``). They are listed; with
:data:`STRICT_API_DOCS` on, the build fails on them.

How a docstring cross-references so that mkdocstrings (autorefs) resolves it::

    [causal_linear_attention][implementations._helpers.causal_linear_attention]
    [`Transformer`][implementations.transformer.Transformer]

Examples:
    >>> leftover_markup('<p>see :func:<code>f</code> and <code>:class:`x`</code></p>')
    [':func:<code>f</code>']
    >>> leftover_markup(r'<span class="arithmatex">\(\mathrm{x}\)</span> $$ y $$')
    ['$$', '$$']
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import time
from pathlib import Path

from tools.catalog import ROOT
from tools.catalog.console import printable
from tools.catalog.lock import DEFAULT_WAIT
from tools.site.generate import generate
from tools.site.pages.citation import pinned, updated_stamp

# THE switch: True makes `python -m tools.site build` fail on any raw Sphinx role or raw
# LaTeX left in a built page. Off until implementations/ docstrings use autorefs
# cross-references; while off, the build lists what it found and succeeds.
STRICT_API_DOCS = True

# Text that readers never see as such: code, scripts, and the math KaTeX renders.
_HIDDEN = re.compile(
    r"<(script|style|pre|code)\b.*?</\1>"
    r"|<(span|div) class=\"arithmatex\">.*?</\2>",
    re.S,
)
_LEFTOVER = re.compile(
    r":(?:func|class|meth|data|mod|attr|exc|obj|ref|term|py:\w+):(?:<code>[^<]*</code>|`[^`]*`)?"
    r"|\$\$|\\(?:left|right|mathrm|frac|sqrt)\b|\$\\[A-Za-z]+"
)


def _neutral(code: str) -> str:
    """A ``<code>`` element whose text can no longer match a leftover (it is code)."""
    inner = code[code.index(">") + 1 : code.rindex("<")]
    for char in ":$\\":
        inner = inner.replace(char, f"&#{ord(char)};")
    return f"<code>{inner}</code>"


def leftover_markup(html: str) -> list[str]:
    """The unrendered roles and LaTeX in one page's HTML, in order."""
    text = _HIDDEN.sub(lambda m: _neutral(m.group(0)) if m.group(1) == "code" else "", html)
    return [m.group(0) for m in _LEFTOVER.finditer(text)]


def scan_site(site: Path) -> dict[str, list[str]]:
    """``{page: leftovers}`` of every built HTML page that has any."""
    found = {}
    for path in sorted(site.rglob("*.html")):
        leftovers = leftover_markup(path.read_text(encoding="utf-8"))
        if leftovers:
            found[path.relative_to(site).as_posix()] = leftovers
    return found


def report_leftovers(found: dict[str, list[str]], strict: bool) -> str:
    """What :func:`scan_site` found, as lines for the terminal."""
    total = sum(map(len, found.values()))
    mode = (
        "build failed" if strict else "not failing: STRICT_API_DOCS is off in tools/site/build.py"
    )
    lines = [f"site: {total} unrendered role(s) or LaTeX in {len(found)} page(s) ({mode}):"]
    for page, leftovers in found.items():
        shown = ", ".join(sorted(set(leftovers)))
        lines.append(f"  {page}: {printable(shown[:300])}")
    return "\n".join(lines)


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


def stamp() -> str:
    """The footer of every page: the atlas's name and the date of the commit built."""
    return f"Efficient Transformers Atlas · {updated_stamp(pinned())}"


def build(
    catalog_root: Path | None = None,
    project: Path = ROOT,
    wait: float = DEFAULT_WAIT,
    *,
    strict_api_docs: bool | None = None,
) -> int:
    """Generate, then ``mkdocs build --strict``, then scan the pages; prints the elapsed time.

    ``wait``: seconds to wait for the catalog's lock (see
    [generate][tools.site.generate.generate]). ``strict_api_docs``: fail on unrendered
    roles or LaTeX (default: :data:`STRICT_API_DOCS`).
    """
    strict = STRICT_API_DOCS if strict_api_docs is None else strict_api_docs
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
            config = load_config(str(project / "mkdocs.yml"), strict=True, copyright=stamp())
            mkdocs_build(config)
    except MkDocsException as error:
        print(f"site: build failed: {printable(str(error), keep_newlines=True)}", file=sys.stderr)
        return 1
    finally:
        logging.getLogger("mkdocs").removeHandler(handler)
    end = time.perf_counter()
    found = scan_site(project / "site")
    if found:
        print(report_leftovers(found, strict), file=sys.stderr)
        if strict:
            return 1
    print(
        f"site: built {printable(str(project / 'site'))} in {end - start:.1f} s "
        f"(generate {generated - start:.1f} s, mkdocs {end - generated:.1f} s; target < 15 s)"
    )
    return 0
