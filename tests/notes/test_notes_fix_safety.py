"""``check --fix`` rewrites only what it must (issue 15, point 12) and prints safely.

Headings (``[[note#heading]]`` links name them), HTML attributes, math, footnote labels,
abbreviation definitions and escaped ``\\[[...]]`` stay byte for byte; read-only notes
and links out of the vault are reported, never written; a huge or hostile note is
handled in bounded time; what came from a note reaches the terminal as escapes.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tools.catalog import ROOT, project
from tools.notes.cli import main as notes_main

SITE = project.site_url()

# Every construct here keeps its names as written; only the last prose line is linked.
UNTOUCHED = """\
# Performer heading
## [[Reformer]] in a heading
Setext Linformer
================

Text <img alt="Performer" src="fig.png"> and <span title="Reformer">x</span>.
Math $\\text{Performer}$ and $$\\text{Reformer}$$ and
$$
\\mathrm{Linformer} + [[Performer]]
$$
A footnote[^Performer] and [^1].
[^Performer]: see the paper.
*[Reformer]: Reformer abbreviation
Escaped \\[[Performer]] stays.
"""
LINKED = "It costs $5 and Linformer $10.\n"


def check(vault: Path, catalog_dir: Path, *options: str) -> int:
    return notes_main(["check", "--vault", str(vault), "--catalog", str(catalog_dir), *options])


def test_fix_leaves_headings_html_math_footnotes_abbreviations_and_escapes(
    catalog_dir: Path, tmp_path: Path
) -> None:
    note = tmp_path / "note.md"
    note.write_bytes((UNTOUCHED + LINKED).encode())
    assert check(tmp_path, catalog_dir, "--fix", "--no-fail") == 0
    linked = f"It costs $5 and [Linformer]({SITE}papers/linformer/) $10.\n"
    assert note.read_bytes().decode() == UNTOUCHED + linked


def test_fix_reports_read_only_notes_and_writes_the_others(
    catalog_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "locked.md"
    locked.write_bytes(b"Performer\n")
    locked.chmod(0o444)
    other = tmp_path / "other.md"
    other.write_bytes(b"Reformer\n")
    assert check(tmp_path, catalog_dir, "--fix", "--no-fail") == 1  # a fix was not written
    err = capsys.readouterr().err
    assert f"{locked}: read-only; not fixed" in err
    assert locked.read_bytes() == b"Performer\n"
    assert stat.S_IMODE(locked.stat().st_mode) == 0o444
    assert other.read_bytes() == f"[Reformer]({SITE}papers/reformer/)\n".encode()


def test_fix_never_writes_outside_the_vault_through_a_link(
    catalog_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    outside = tmp_path / "outside.md"
    outside.write_bytes(b"Performer\n")
    os.symlink(outside, vault / "link.md")
    assert check(vault, catalog_dir, "--fix", "--no-fail") == 1
    assert f"{vault / 'link.md'}: links to a file outside the vault; not fixed" in (
        capsys.readouterr().err
    )
    assert outside.read_bytes() == b"Performer\n"
    assert (vault / "link.md").is_symlink()


def test_control_characters_from_notes_are_printed_as_escapes(
    catalog_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "evil\x1b]0;owned\x07.md").write_bytes(b"[[Perfomer]] [[nlp\x1b7x]] \xe2\x80\xae\n")
    assert check(tmp_path, catalog_dir, "--verbose") == 1
    out = capsys.readouterr().out
    assert "evil\\x1b]0;owned\\x07.md:1:1: dangling wikilink [[Perfomer]]" in out
    assert ".md:1:14: ignored wikilink [[nlp\\x1b7x]]" in out
    assert "\x1b" not in out and "\x07" not in out


def test_huge_and_hostile_notes_are_handled_in_bounded_time(
    catalog_dir: Path, tmp_path: Path
) -> None:
    """Patterns that made the scan quadratic (a 36 MB note never finished), and a note
    over the size limit, which is skipped with a message."""
    hostile = (
        "<!-- x " * 20000
        + "[impl:performer](https://x/) impl:performer " * 20000
        + "@choromanski2021rethinking [@a " * 20000
        + "`` a ``` b ```` c " * 5000
        + "$a <b [c [[d " * 20000
        + "\n"
    )
    (tmp_path / "hostile.md").write_text(hostile, encoding="utf-8")
    (tmp_path / "huge.md").write_bytes(b"Performer and more prose.\n" * 250_000)  # 6.5 MB
    command = ["check", "--vault", str(tmp_path), "--catalog", str(catalog_dir), "--no-fail"]
    result = subprocess.run(
        [sys.executable, "-m", "tools.notes", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"{tmp_path / 'huge.md'}: larger than 5 MB; skipped" in result.stderr
    assert "1 note(s): " in result.stdout  # the hostile one was checked
