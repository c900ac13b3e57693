"""``python -m tools.cite``: paper and implementation citations in every format; impl:<id>."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import bibtexparser
import pytest
from bibtexparser.bparser import BibTexParser
from notes_fixtures import requires_checkout

import implementations
from tools import cite, project
from tools.atlas_links import parse_impl_ref, resolve_impl
from tools.catalog import load_catalog

SITE = project.site_url()
REPO = project.repo_url()


pytestmark = requires_checkout


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cite.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def performer_lines() -> tuple[int, int]:
    lines, first = inspect.getsourcelines(implementations.mechanism("performer").cls)
    return first, first + len(lines) - 1


def test_impl_reference_resolves_to_page_and_pinned_source() -> None:
    resolved = resolve_impl("impl:performer", load_catalog())
    first, last = performer_lines()
    assert resolved.page_url == f"{SITE}papers/performer/"
    assert resolved.source_url == (
        f"{REPO}/blob/{project.commit()}/implementations/performer.py#L{first}-L{last}"
    )
    assert re.fullmatch(r"[0-9a-f]{40}", resolved.commit)
    assert resolved.location.class_name == "Performer"


def test_impl_reference_errors() -> None:
    catalog = load_catalog()
    with pytest.raises(KeyError, match="closest: performer"):
        resolve_impl("impl:perfomer", catalog)
    with pytest.raises(KeyError, match="has no implementation"):
        resolve_impl("impl:efficient-transformers-survey", catalog)
    with pytest.raises(ValueError, match="expected impl:<id>"):
        parse_impl_ref("impl:Not An Id")


def test_bibtex_has_the_paper_and_the_software(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "performer", "--format", "bibtex")
    assert code == 0
    parser = BibTexParser(ignore_nonstandard_types=False)  # @software is biblatex
    entries = {entry["ID"]: entry for entry in bibtexparser.loads(out, parser=parser).entries}
    assert set(entries) == {"choromanski2021rethinking", "impl:performer"}
    assert entries["choromanski2021rethinking"]["ENTRYTYPE"] == "inproceedings"
    software = entries["impl:performer"]
    first, last = performer_lines()
    assert software["ENTRYTYPE"] == "software"
    assert software["version"] == project.version()
    assert software["commit"] == project.commit()
    assert software["url"].endswith(f"/implementations/performer.py#L{first}-L{last}")
    assert f"/blob/{project.commit()}/" in software["url"]
    assert f"{SITE}papers/performer/" in software["note"]
    assert software["author"] == "{Efficient Transformers Atlas contributors}"


def test_csljson_is_valid_json_with_the_right_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "impl:big-bird", "--format", "csljson")
    assert code == 0
    paper, software = json.loads(out)
    assert paper["id"] == "zaheer2020big"
    assert paper["type"] == "paper-conference"
    assert paper["title"] == "Big Bird: Transformers for Longer Sequences"
    assert software["id"] == "impl:big-bird"
    assert software["type"] == "software"
    assert software["version"] == project.version()
    assert software["author"] == [{"literal": "Efficient Transformers Atlas contributors"}]
    assert "/implementations/big_bird.py#L" in software["URL"]
    assert project.commit() in software["note"]
    assert len(software["issued"]["date-parts"][0]) == 3


def test_markdown_and_obsidian_are_ready_to_paste(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "Nyströmformer")  # a model name works too; markdown by default
    assert code == 0
    assert "[@xiong2021nystromformer]" in out
    assert f"Atlas page: [Nyströmformer]({SITE}papers/nystromformer/)" in out
    assert "Cite as impl:nystromformer" in out
    assert re.search(r"\[implementations/nystromformer\.py#L\d+-L\d+\]\(https://", out)

    code, out, _ = run(capsys, "performer", "--format", "obsidian")
    assert code == 0
    assert out.startswith("> [!cite] Performer\n")
    assert (
        "[[2020 Rethinking Attention with Performers|Rethinking Attention with Performers]]" in out
    )
    assert "[[Krzysztof Choromanski]]" in out
    assert "> Implementation: impl:performer, class `Performer`" in out


def test_entry_without_implementation_cites_the_paper_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "efficient-transformers-survey")
    assert code == 0
    assert "[@tay2022efficient]" in out
    assert "no reference implementation in the atlas yet" in out
    code, out, err = run(capsys, "efficient-transformers-survey", "--format", "bibtex")
    assert code == 0
    assert out.startswith("@article{tay2022efficient,")
    assert "@software" not in out
    assert "no reference implementation" in err


def test_unknown_id_exits_2_with_closest_matches(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "perfomer")
    assert code == 2
    assert out == ""
    assert err.startswith("error: no catalog entry 'perfomer'; closest: performer")


def test_cite_takes_a_catalog_copy(catalog_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "linformer", "--catalog", str(catalog_dir), "--format", "bibtex")
    assert code == 0 and "@software{impl:linformer," in out


def test_command_line_entry_points() -> None:
    """``python -m tools.cite`` and ``python -m tools.notes`` run as modules."""
    result = subprocess.run(
        [sys.executable, "-m", "tools.cite", "perfomer"],
        cwd=project.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "closest: performer" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "tools.notes", "check", "--help"],
        cwd=project.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "--fix" in result.stdout
