"""Literature-note file names are safe on Windows, macOS and Linux, and linkable in Obsidian."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from tools.catalog import load_catalog
from tools.catalog.filenames import MAX_STEM_BYTES, literature_note_name, safe_stem

WINDOWS_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|COM[1-9]|LPT[1-9])(\..*)?$", re.IGNORECASE)
ODD_TITLES = [
    'Attention: "Is" <All> You|Need? *Really*',
    "Back\\slash/and/slash",
    "Trailing dots...",
    "Trailing space ",
    "con",
    "Nul.txt",
    "COM1",
    ".hidden",
    "Tabs\tand\nnewlines\x00nul",
    "Nyströmformer: A Nyström-based Algorithm",
    "Nyströmformer",  # decomposed ö must come out composed
    "Links [[break]] on #hash and ^caret",
    "日本語のタイトル：効率的なトランスフォーマー" * 8,
    "x" * 300,
    "",
]


def assert_safe(name: str) -> None:
    stem = name.removesuffix(".md")
    assert stem and stem == stem.strip() and not stem.endswith(".")
    assert not stem.startswith(".")
    assert not set('<>:"/\\|?*#^[]') & set(stem), name
    assert not any(unicodedata.category(char).startswith("C") for char in stem), name
    assert not WINDOWS_RESERVED.match(stem), name
    assert len(stem.encode("utf-8")) <= MAX_STEM_BYTES
    assert unicodedata.is_normalized("NFC", name)


@pytest.mark.parametrize("title", ODD_TITLES)
def test_odd_titles_give_safe_names(title: str, tmp_path: Path) -> None:
    if title == "Nyströmformer":
        title = unicodedata.normalize("NFD", title)
    name = literature_note_name(2021, title)
    assert_safe(name)
    (tmp_path / name).write_text("ok", encoding="utf-8")  # and the file system takes it
    assert safe_stem(title) == safe_stem(safe_stem(title)) or not title  # stable


def test_every_catalog_title_gives_a_safe_distinct_name() -> None:
    entries = load_catalog().entries.values()
    names = [literature_note_name(entry.year, entry.title) for entry in entries]
    for name in names:
        assert_safe(name)
    assert len({name.casefold() for name in names}) == len(names)


def test_examples() -> None:
    assert literature_note_name(2020, "Rethinking Attention with Performers") == (
        "2020 Rethinking Attention with Performers.md"
    )
    assert literature_note_name(2020, "Efficient Transformers: A Survey") == (
        "2020 Efficient Transformers - A Survey.md"
    )
    assert safe_stem("CON") == "CON_"
    assert safe_stem("Trailing dots...") == "Trailing dots"
