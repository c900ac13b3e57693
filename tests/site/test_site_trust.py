"""Issue 12 on the built site: rendered API docs, readable code, citations, people, Table 1."""

from __future__ import annotations

import io
import re
import zipfile
from html import unescape

import bibtexparser
from bibtexparser.bparser import BibTexParser

from tests.site.site_html import read_page, visible_text
from tests.site.site_support import BuiltSite
from tools.catalog import ROOT, load_catalog
from tools.site.build import scan_site

# Point 5. Pages whose API docs may still show raw Sphinx roles or raw LaTeX: none (the
# docstrings use autorefs cross-references, [name][implementations.module.name]).
KNOWN_LEFTOVER_PAGES: set[str] = set()


def test_no_page_shows_raw_roles_or_latex(built_site: BuiltSite) -> None:
    found = scan_site(built_site.site)
    assert set(found) - KNOWN_LEFTOVER_PAGES == set(), found
    fixed = KNOWN_LEFTOVER_PAGES - set(found)
    assert not fixed, f"fixed now: remove from KNOWN_LEFTOVER_PAGES: {sorted(fixed)}"


def test_every_module_has_a_highlighted_source_page(built_site: BuiltSite) -> None:
    modules = sorted(path.stem for path in (ROOT / "implementations").glob("*.py"))
    for required in ("_helpers", "_moe", "_registry", "dense", "transformer", "__init__"):
        assert required in modules
    for stem in modules:
        page = built_site.site / "reference" / "source" / stem / "index.html"
        html = page.read_text(encoding="utf-8")
        assert 'class="language-python highlight"' in html, stem
        assert "implementations.zip" in html, stem
    performer = read_page(built_site.site / "reference" / "source" / "performer" / "index.html")
    assert "../_helpers/" in performer.links and "../_registry/" in performer.links
    assert "../../../papers/performer/" in performer.links
    paper = read_page(built_site.site / "papers" / "performer" / "index.html")
    assert "../../reference/source/performer/" in paper.links
    assert not any(link.endswith(".py") for link in paper.links)  # no raw text/x-python


def test_the_implementations_are_one_download(built_site: BuiltSite) -> None:
    data = (built_site.site / "downloads" / "implementations.zip").read_bytes()
    names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    expected = {f"implementations/{p.name}" for p in (ROOT / "implementations").glob("*.py")}
    assert names == expected
    assert "implementations/_helpers.py" in names and "implementations/__init__.py" in names
    assert "docs/downloads/" in (ROOT / ".gitignore").read_text(encoding="utf-8")


def _position(text: str, part: str) -> int:
    assert part in text, part
    return text.index(part)


def test_paper_page_starts_with_install_build_and_cite(built_site: BuiltSite) -> None:
    text = visible_text(built_site.site / "papers" / "performer" / "index.html")
    install = _position(text, 'python -m pip install "torch==2.13.0"')
    build = _position(text, 'implementations.build("performer"')
    cite = _position(text, "@inproceedings{choromanski2021rethinking")
    summary = _position(text, "Approximates softmax attention")
    assert install < build < cite < summary
    assert _position(text, "@software{impl:performer") < summary


def test_cite_box_cites_the_paper_and_the_implementation(built_site: BuiltSite) -> None:
    html = (built_site.site / "papers" / "performer" / "index.html").read_text(encoding="utf-8")
    block = re.search(r'class="language-bibtex highlight"><pre>.*?<code>(.*?)</code>', html, re.S)
    assert block is not None
    bibtex = unescape(re.sub(r"<[^>]+>", "", block.group(1)))
    parser = BibTexParser(ignore_nonstandard_types=False)  # @software is biblatex's
    records = bibtexparser.loads(bibtex, parser).entries
    assert [r["ENTRYTYPE"] for r in records] == ["inproceedings", "software"]
    software = records[1]
    assert software["ID"] == "impl:performer"
    assert software["author"] == "{Efficient Transformers Atlas contributors}"
    assert "implementations/performer.py" in software["note"]
    assert re.fullmatch(r"\d{4}", software["year"])
    survey = built_site.site / "papers" / "efficient-transformers-survey" / "index.html"
    unimplemented = visible_text(survey)
    assert "@software" not in unimplemented and "Cite this paper" in unimplemented


def test_authors_are_people(built_site: BuiltSite) -> None:
    page = built_site.site / "authors" / "index.html"
    text = visible_text(page)
    assert text.count("William Fedus") == 1 and text.count("Liam Fedus") == 1
    line = next(line for line in text.splitlines() if "William Fedus" in line)
    assert "also written Liam Fedus" in line
    for name in ("GLaM", "Switch Transformer", "ST-MoE"):
        assert name in line
    glam = read_page(built_site.site / "papers" / "glam" / "index.html")
    assert any(link.endswith("authors/#william-fedus") for link in glam.links)
    assert "liam-fedus" not in read_page(page).ids


def test_survey_table_one_as_printed(built_site: BuiltSite) -> None:
    page = built_site.site / "survey" / "index.html"
    facts = read_page(page)
    text = "".join(facts.text)
    catalog = load_catalog(built_site.catalog)
    rows = [e for e in catalog.entries.values() if e.survey is not None]
    assert len(rows) == 33
    for entry in rows:
        assert f"../papers/{entry.id}/" in facts.links, entry.id
    html = page.read_text(encoding="utf-8")
    table = [
        " ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split())
        for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)
    ]
    assert table[0] == "row model class complexity decode where the atlas differs"
    assert len(table) == 1 + 33
    assert "14 Performer KR O(N) yes same" in table
    funnel = next(row for row in table if "Funnel Transformer" in row)
    assert funnel.startswith("15 Funnel Transformer FP+DS O(N^2) yes differs: decoding")
    assert "Table 1" in text
    assert "../papers/funnel-transformer/#notes" in facts.links


def test_every_page_has_a_dated_stamp(built_site: BuiltSite) -> None:
    pages = [p for p in built_site.site.rglob("*.html") if p.name != "404.html"]
    assert len(pages) > 80
    for path in pages:
        text = visible_text(path)
        assert re.search(r"Last updated \d{4}-\d{2}-\d{2}", text), path


def test_plots_have_no_hard_coded_white_background(built_site: BuiltSite) -> None:
    """Point 9: plots sit on the page's colour, so the dark palette can take them."""
    plots = sorted((built_site.site / "generated").rglob("*.svg"))
    assert plots, "the site has plots"
    for plot in plots:
        text = plot.read_text(encoding="utf-8").lower()
        assert 'fill="#ffffff"' not in text and 'fill="#fff"' not in text, plot.name
        assert 'fill="white"' not in text, plot.name
