"""Point 5 of issue 12: a strict build fails on any raw Sphinx role or raw LaTeX it built."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.site.site_support import make_catalog, make_project
from tools.site.build import build, leftover_markup

RAW_PAGE = """# A page with leftovers

See :func:`~implementations._helpers.softmax_attention` and $$ \\mathrm{x} $$.

A resolved reference: [softmax_attention][implementations._helpers.softmax_attention].
"""


def test_roles_and_raw_latex_are_found_outside_code_and_math() -> None:
    html = (
        "<p>see :func:<code>f</code>, :class:`G` and $\\alpha + $ x</p>"
        "<pre><code>:meth:`in_code` $$ \\left</code></pre>"
        '<p><span class="arithmatex">\\(\\mathrm{softmax}\\left(x\\right)\\)</span></p>'
    )
    assert leftover_markup(html) == [":func:<code>f</code>", ":class:`G`", "$\\alpha"]


def test_a_strict_build_fails_on_a_raw_role(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, catalog = tmp_path / "project", tmp_path / "catalog"
    make_project(project)
    make_catalog(catalog)
    (project / "docs" / "leftovers.md").write_text(RAW_PAGE, encoding="utf-8")
    assert build(catalog, project, wait=5, strict_api_docs=True) == 1
    err = capsys.readouterr().err
    assert "build failed" in err
    listed = ":func:<code>~implementations._helpers.softmax_attention</code>"
    assert f"leftovers/index.html: $$, {listed}" in err
    # The autorefs form resolved to the helper's API entry on the reference page.
    html = (project / "site" / "leftovers" / "index.html").read_text(encoding="utf-8")
    assert 'href="../reference/#implementations._helpers.softmax_attention"' in html
