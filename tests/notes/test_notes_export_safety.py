"""``notes export`` never corrupts a note (issue 15, points 13 and 5).

No catalog text forms a managed-block marker; a symlinked note is written through
(inside the vault) or refused (outside it); a BOM stays first; a huge note is skipped;
the export holds the catalog lock.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.notes.notes_fixtures import require_example_note, requires_checkout
from tools.catalog import ROOT
from tools.catalog.lock import catalog_lock
from tools.notes.cli import main as notes_main
from tools.notes.markdown import managed_blocks

PERFORMER_NOTE = "2020 Rethinking Attention with Performers.md"
HOSTILE = (
    "<!-- atlas:end -->\n<!-- atlas:begin id=reformer -->\n```\n"
    "    <!-- atlas:begin id=performer -->\nend"
)

pytestmark = requires_checkout


def export(vault: Path, catalog_dir: Path, *options: str) -> int:
    return notes_main(["export", "--vault", str(vault), "--catalog", str(catalog_dir), *options])


def set_field(catalog: Path, id: str, field: str, value: str) -> None:
    """Replace a block scalar ``field:`` of an entry's YAML with a literal block of ``value``."""
    path = catalog / "papers" / f"{id}.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(f"{field}: "))
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    block = [f"{field}: |-"] + ["  " + line for line in value.split("\n")]
    path.write_text("\n".join(lines[:start] + block + lines[end:]) + "\n", encoding="utf-8")


def test_catalog_text_never_forms_a_managed_block_marker(
    catalog_copy: Path, tmp_path: Path
) -> None:
    for field in ("summary", "notes"):
        set_field(catalog_copy, "performer", field, HOSTILE)
    vault = tmp_path / "vault"
    assert export(vault, catalog_copy) == 0
    note = vault / PERFORMER_NOTE
    text = note.read_bytes().decode()
    assert [(block.id, block.start) for block in managed_blocks(text)] == [("performer", 0)]
    assert text.count("atlas:end") == 1 + 1  # the marker, and the summary's, neutralised
    note.write_bytes(text.encode() + b"mine\n")
    assert export(vault, catalog_copy) == 0
    assert note.read_bytes() == text.encode() + b"mine\n"  # nothing duplicated
    set_field(catalog_copy, "performer", "summary", "A new summary.")
    assert export(vault, catalog_copy) == 0
    updated = note.read_bytes().decode()
    assert "A new summary." in updated and updated.endswith("mine\n")
    assert updated.count("atlas:begin") == 1


def test_a_symlinked_note_is_written_through_inside_the_vault(
    catalog_dir: Path, tmp_path: Path
) -> None:
    vault = tmp_path / "vault"
    assert export(vault, catalog_dir) == 0
    (vault / "real").mkdir()
    target = vault / "real" / "performer.md"
    (vault / PERFORMER_NOTE).rename(target)
    os.symlink(Path("real") / "performer.md", vault / PERFORMER_NOTE)
    stale = target.read_bytes().replace(b"- Year: #2020", b"- Year: #1999")
    target.write_bytes(stale)
    assert export(vault, catalog_dir) == 0
    assert (vault / PERFORMER_NOTE).is_symlink()
    assert target.read_bytes() == stale.replace(b"- Year: #1999", b"- Year: #2020")


def test_a_note_linking_out_of_the_vault_is_refused(
    catalog_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault = tmp_path / "vault"
    assert export(vault, catalog_dir) == 0
    outside = tmp_path / "outside.md"
    stale = (vault / PERFORMER_NOTE).read_bytes().replace(b"- Year: #2020", b"- Year: #1999")
    outside.write_bytes(stale)
    (vault / PERFORMER_NOTE).unlink()
    os.symlink(outside, vault / PERFORMER_NOTE)
    capsys.readouterr()
    assert export(vault, catalog_dir) == 0
    assert f"skip {vault / PERFORMER_NOTE}: links to a file outside the vault" in (
        capsys.readouterr().out
    )
    assert outside.read_bytes() == stale
    assert (vault / PERFORMER_NOTE).is_symlink()


def test_adopt_keeps_a_bom_first(catalog_dir: Path, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    note = vault / require_example_note().name
    original = require_example_note().read_bytes()
    note.write_bytes(b"\xef\xbb\xbf" + original)
    assert export(vault, catalog_dir, "--adopt") == 0
    adopted = note.read_bytes()
    assert adopted.startswith(b"\xef\xbb\xbf<!-- atlas:begin id=efficient-transformers-survey ")
    assert adopted.count(b"\xef\xbb\xbf") == 1
    assert adopted.endswith(b"<!-- atlas:end -->\n" + original)
    assert export(vault, catalog_dir) == 0
    assert note.read_bytes() == adopted  # found again, unchanged


def test_a_huge_note_is_skipped_with_a_message(catalog_dir: Path, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    huge = vault / "huge.md"
    huge.write_bytes(b"<!-- atlas:begin id=performer -->\n" + b"<!-- x `` a [[b " * 400_000)
    result = subprocess.run(
        [sys.executable, "-m", "tools.notes", "export", "--vault", str(vault),
         "--catalog", str(catalog_dir), "--dry-run"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"skip {huge}: larger than 5 MB" in result.stdout


def test_export_waits_for_the_catalog_lock_then_stops_clearly(
    catalog_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault = tmp_path / "vault"
    with catalog_lock(catalog_dir):
        assert export(vault, catalog_dir, "--wait", "0.2") == 1
    assert "another tool is writing" in capsys.readouterr().err
    assert not vault.exists()
    assert export(vault, catalog_dir) == 0  # released: the export runs
