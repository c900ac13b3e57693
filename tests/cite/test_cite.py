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

import implementations
from tools.catalog import ROOT, load_catalog, project
from tools.catalog.addresses import parse_impl_ref, resolve_impl
from tools.cite.cli import main as cite_main

SITE = project.site_url()
REPO = project.repo_url()
# A name the Python warnings machinery prints (``UserWarning: ...``); the command's own
# notices are lower case ("warning: ... has uncommitted changes").
THIRD_PARTY_WARNING = re.compile(r"\b[A-Z]\w*Warning\b|Failed to initialize")

# Citations pin the current commit: they need a git checkout.
pytestmark = pytest.mark.skipif(
    not (ROOT / ".git").exists(), reason="not a git checkout: there is no commit to pin"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cite_main(list(argv))
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


def test_cite_takes_a_catalog_copy(catalog_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "linformer", "--catalog", str(catalog_copy), "--format", "bibtex")
    assert code == 0 and "@software{impl:linformer," in out


def test_command_line_entry_points() -> None:
    """``python -m tools.cite`` and ``python -m tools.notes`` run as modules."""
    result = subprocess.run(
        [sys.executable, "-m", "tools.cite", "perfomer"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "closest: performer" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "tools.notes", "check", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "--fix" in result.stdout


def imported_modules(stderr: str) -> set[str]:
    """The modules ``python -X importtime`` reported importing (their top-level names)."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_cite_runs_without_torch_and_prints_no_third_party_warning() -> None:
    """Citing reads the implementations' declarations from source: torch is never imported."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tools.cite", "performer"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Cite as impl:performer" in result.stdout
    imported = imported_modules(result.stderr)
    assert "tools" in imported  # the trace did record the imports
    assert not imported & {"torch", "numpy", "implementations"}
    own = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert not [line for line in own if THIRD_PARTY_WARNING.search(line)], own


def test_software_record_is_written_by_the_catalogs_bibtex_writer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The @software record round-trips through bibtexparser with its fields in order."""
    code, out, _ = run(capsys, "performer", "--format", "bibtex")
    assert code == 0
    software = out[out.index("@software{") :]
    fields = re.findall(r"^  (\w+) = \{", software, flags=re.MULTILINE)
    assert fields == [
        "author", "title", "version", "year", "date", "url", "repository", "commit", "note",
    ]  # fmt: skip
    assert software.endswith("}\n")
