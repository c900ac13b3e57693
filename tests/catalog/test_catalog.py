"""The catalog check: every kind of bad entry is reported at its line, and the shipped
catalog is valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.catalog import CATALOG_DIR, ROOT, Store, load_catalog
from tools.catalog.check import check
from tools.catalog.schema import schema_text
from tools.catalog.yamledit import edit_fields

TAXONOMY = """\
classes:
  - code: KR
    name: Kernels
    description: Kernel feature maps.
  - code: LR
    name: Low-Rank
    description: Low-rank projections.
"""

VALID = """\
# yaml-language-server: $schema=../schema/entry.schema.json
id: performer
name: Performer
kind: model
title: Rethinking Attention with Performers
authors:
  - Krzysztof Choromanski
  - Valerii Likhosherstov
year: 2020
venue: ICLR 2021
arxiv: '2009.14794'
url: https://arxiv.org/abs/2009.14794
citekey: choromanski2021rethinking
taxonomy:
  - KR
complexity:
  time: O(n m)
  memory: O(n m + m d)
  symbols:
    m: number of random features
    d: head dimension
decode: true
survey:
  row: 14
  class: KR
  complexity: O(N)
  decode: true
summary: >-
  Softmax attention approximated with positive orthogonal random features.
related:
  - linformer
"""

LINFORMER = (
    VALID.replace("id: performer", "id: linformer")
    .replace("citekey: choromanski2021rethinking", "citekey: wang2020linformer")
    .replace("  - linformer\n", "  - performer\n")
)


def make_catalog(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "catalog"
    (root / "papers").mkdir(parents=True)
    (root / "taxonomy.yaml").write_text(TAXONOMY)
    for name, text in {"performer.yaml": VALID, "linformer.yaml": LINFORMER, **files}.items():
        (root / "papers" / name).write_text(text)
    return root


def problems(root: Path) -> list[str]:
    found = check(load_catalog(root)).problems
    return [str(problem).split("catalog/", 1)[1] for problem in found]


def with_line(line_number: int, replacement: str, text: str = VALID) -> str:
    lines = text.splitlines(keepends=True)
    lines[line_number - 1] = replacement
    return "".join(lines)


def test_valid_catalog_has_no_problems(tmp_path: Path) -> None:
    root = make_catalog(tmp_path, {})
    assert problems(root) == []
    assert sorted(load_catalog(root).entries) == ["linformer", "performer"]


@pytest.mark.parametrize(
    ("line", "replacement", "expected"),
    [
        # missing field: the title line removed; reported on the entry's first field line
        (5, "", "papers/performer.yaml:2: title: required field is missing"),
        (9, "year: '2020'\n", "papers/performer.yaml:9: year: expected a valid integer (got str)"),
        (11, "arxiv: 'arXiv:2009.1'\n", "papers/performer.yaml:11: arxiv: malformed value"),
        (15, "  - KX\n", "papers/performer.yaml:15: taxonomy.0: unknown taxonomy code 'KX'"),
        (17, "  time: O(n log\n", "papers/performer.yaml:17: complexity.time: unparsable"),
        (
            4,
            "kind: paper\n",
            "papers/performer.yaml:4: kind: expected 'model', 'survey' or 'benchmark'",
        ),
        (14, "taxonomy: KR\n", "papers/performer.yaml:14: taxonomy: expected a valid list"),
        (31, "  - nobody\n", "papers/performer.yaml:31: related.0: related id 'nobody'"),
    ],
)
def test_bad_field_is_reported_at_its_line(
    tmp_path: Path, line: int, replacement: str, expected: str
) -> None:
    root = make_catalog(tmp_path, {"performer.yaml": with_line(line, replacement)})
    found = problems(root)
    assert any(problem.startswith(expected) for problem in found), found


def test_unknown_field_and_unexplained_symbol(tmp_path: Path) -> None:
    text = VALID.replace("decode: true\nsurvey", "decode: true\nspeed: fast\nsurvey").replace(
        "    d: head dimension\n", ""
    )
    found = problems(make_catalog(tmp_path, {"performer.yaml": text}))
    assert "papers/performer.yaml:22: speed: unknown field (not part of the schema)" in found
    assert any(
        p.startswith("papers/performer.yaml:16: complexity: symbols d are used but not explained")
        for p in found
    ), found


def test_duplicate_id_is_reported_in_both_files(tmp_path: Path) -> None:
    copy = VALID.replace("citekey: choromanski2021rethinking", "citekey: other2021")
    found = problems(make_catalog(tmp_path, {"performer-copy.yaml": copy}))
    assert any(
        p.startswith("papers/performer-copy.yaml:2: id: duplicate id 'performer'") for p in found
    )
    assert any(p.startswith("papers/performer.yaml:2: id: duplicate id 'performer'") for p in found)
    assert any("must equal the file name" in p for p in found)


def test_duplicate_citekey(tmp_path: Path) -> None:
    other = LINFORMER.replace("citekey: wang2020linformer", "citekey: choromanski2021rethinking")
    found = problems(make_catalog(tmp_path, {"linformer.yaml": other}))
    assert any(
        p.startswith("papers/performer.yaml:13: citekey: duplicate citekey") for p in found
    ), found


def test_yaml_syntax_error_and_duplicate_key(tmp_path: Path) -> None:
    broken = with_line(6, "authors: [Krzysztof\n")
    duplicated = with_line(10, "venue: ICLR 2021\nvenue: ICML 2021\n", LINFORMER)
    found = problems(
        make_catalog(tmp_path, {"performer.yaml": broken, "linformer.yaml": duplicated})
    )
    assert any(p.startswith("papers/performer.yaml:") and "YAML syntax error" in p for p in found)
    assert "papers/linformer.yaml:11: venue: duplicate key 'venue'" in found


def test_all_problems_reported_at_once_with_nonzero_exit(tmp_path: Path) -> None:
    bad = with_line(9, "year: soon\n", with_line(15, "  - KX\n"))
    root = make_catalog(tmp_path, {"performer.yaml": bad, "linformer.yaml": "id: [\n"})
    result = subprocess.run(
        [sys.executable, "-m", "tools.catalog", "--root", str(root), "check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 1
    assert "performer.yaml:9: year:" in result.stderr
    assert "performer.yaml:15: taxonomy.0:" in result.stderr
    assert "linformer.yaml:" in result.stderr and "YAML syntax error" in result.stderr
    assert "Traceback" not in result.stderr


def test_implementation_must_be_registered(tmp_path: Path) -> None:
    text = VALID.replace("related:", "implementation: implementations.nothing_here\nrelated:")
    found = problems(make_catalog(tmp_path, {"performer.yaml": text}))
    assert any("implementation: expected 'implementations.performer'" in p for p in found), found


def test_model_without_hand_fields_must_be_a_draft(tmp_path: Path) -> None:
    text = VALID.split("taxonomy:")[0] + "related: []\n"
    assert any(
        "needs complexity, decode, summary, taxonomy" in p
        for p in problems(make_catalog(tmp_path, {"performer.yaml": text}))
    )
    drafted = text.replace("kind: model\n", "kind: model\ndraft: true\n")
    assert problems(make_catalog(tmp_path / "2", {"performer.yaml": drafted})) == []


def test_shipped_catalog_is_valid_and_complete() -> None:
    catalog = load_catalog()
    assert [str(p) for p in catalog.problems] == []
    kinds = [e.kind for e in catalog.entries.values()]
    assert kinds.count("survey") == 1 and kinds.count("benchmark") == 1  # Long Range Arena
    rows = sorted(e.survey.row for e in catalog.entries.values() if e.survey)
    assert rows == list(range(1, 34)), "every row of the survey's Table 1, once"
    survey_classes = [c.code for c in catalog.taxonomy if c.source == "survey"]
    assert survey_classes == ["FP", "CP", "LP", "M", "LR", "KR", "RC", "DS", "Sparse"]
    # The classes the atlas adds come after the survey's, so its nine stay as printed.
    sources = [c.source for c in catalog.taxonomy]
    assert sources == sorted(sources, key=["survey", "atlas"].index)
    # Every class has a model, and every model outside Table 1 is in at least one class.
    used = {code for e in catalog.entries.values() for code in e.taxonomy}
    assert used == {c.code for c in catalog.taxonomy}
    assert not any(entry.draft for entry in catalog.entries.values())


def test_every_shipped_entry_names_the_schema_and_schema_is_current() -> None:
    for path in (CATALOG_DIR / "papers").glob("*.yaml"):
        assert path.read_text().startswith("# yaml-language-server: $schema=../schema/"), path
    assert (CATALOG_DIR / "schema/entry.schema.json").read_text() == schema_text()


def test_edit_fields_keeps_every_other_byte() -> None:
    text = VALID.replace("year: 2020\n", "year: 2020  # first arXiv version\n# a comment\n")
    edited = edit_fields(text, {"title": "A New Title", "authors": ["A B", "C D"]})
    old_lines, new_lines = text.splitlines(), edited.splitlines()
    assert new_lines[4] == "title: A New Title"
    assert new_lines[5:8] == ["authors:", "  - A B", "  - C D"]
    assert new_lines[8:] == old_lines[8:]
    assert new_lines[:4] == old_lines[:4]


def test_store_stages_and_commits_atomically(tmp_path: Path) -> None:
    root = make_catalog(tmp_path, {})
    before = (root / "papers/performer.yaml").read_bytes()
    dry = Store(root, dry_run=True)
    changes = dry.update_entry("performer", {"title": "Changed"})
    assert [(c.field, c.old, c.new) for c in changes] == [
        ("title", "Rethinking Attention with Performers", "Changed")
    ]
    dry.commit()
    assert (root / "papers/performer.yaml").read_bytes() == before
    store = Store(root)
    assert store.update_entry("performer", {"title": "Rethinking Attention with Performers"}) == []
    with pytest.raises(ValueError, match="only citation fields"):
        store.update_entry("performer", {"summary": "mine"})
    with pytest.raises(ValueError, match="year"):
        store.update_entry("performer", {"year": "soon"})
    store.update_entry("performer", {"doi": "10.1000/xyz"})
    store.write_data("zotero/state.json", {"version": 3})
    store.commit()
    assert load_catalog(root).entries["performer"].doi == "10.1000/xyz"
    assert Store(root).read_data("zotero/state.json") == {"version": 3}


def test_every_model_links_its_registered_implementation() -> None:
    import implementations

    for entry in load_catalog().models():
        if entry.implementation is None:
            # Allowed only where the paper's point is not a single-device algorithm (ring
            # attention distributes blocks over devices), and the entry must say so.
            assert entry.notes and "has no implementation" in entry.notes, entry.id
            assert entry.id not in implementations.available(), entry.id
            continue
        assert entry.implementation == implementations.module_name(entry.id), entry.id
        assert entry.id in implementations.available(), entry.id


def test_atomic_write_keeps_the_file_mode(tmp_path: Path) -> None:
    from tools.catalog import atomic_write

    path = tmp_path / "entry.yaml"
    path.write_text("old\n")
    path.chmod(0o640)
    atomic_write(path, "new\n")
    assert path.read_text() == "new\n"
    assert path.stat().st_mode & 0o777 == 0o640
    fresh = tmp_path / "fresh.yaml"
    atomic_write(fresh, "x\n")
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def _umask() -> int:
    import os

    current = os.umask(0)
    os.umask(current)
    return current
