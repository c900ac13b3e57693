"""Authors are people: one person, one canonical name, whatever the spelling of a byline."""

from __future__ import annotations

import shutil
from pathlib import Path

from tools.catalog import load_catalog
from tools.catalog.citations import split_name
from tools.catalog.names import fold
from tools.catalog.people import People

CATALOG = load_catalog()
PEOPLE = People.of(CATALOG)


def test_fedus_is_one_person() -> None:
    assert PEOPLE.canonical("Liam Fedus") == "William Fedus"
    assert PEOPLE.canonical("William Fedus") == "William Fedus"
    assert PEOPLE.canonical("liam  fedus") == "William Fedus"


def test_folding_makes_accents_one_spelling() -> None:
    assert PEOPLE.canonical("Lukasz Kaiser") == "Łukasz Kaiser"
    assert PEOPLE.canonical("Łukasz Kaiser") == "Łukasz Kaiser"
    assert PEOPLE.canonical("Someone Unknown") == "Someone Unknown"


def test_spellings_of_a_person() -> None:
    assert PEOPLE.spellings("William Fedus") == ["Liam Fedus", "William Fedus"]


def test_every_author_of_the_catalog_is_one_person_per_family_and_given_name() -> None:
    """After aliases, no two canonical authors share a family name and a first initial."""
    seen: dict[tuple[str, str], set[str]] = {}
    for entry in CATALOG.entries.values():
        for author in entry.authors:
            given, family = split_name(PEOPLE.canonical(author))
            key = (fold(family).lower(), fold(given)[:1].lower())
            seen.setdefault(key, set()).add(PEOPLE.canonical(author))
    shared = {key: names for key, names in seen.items() if len(names) > 1}
    # Different people who share a family name and an initial (checked against the papers).
    assert shared == {
        ("yang", "l"): {"Li Yang", "Liu Yang"},
        ("wang", "s"): {"Shuohang Wang", "Sinong Wang"},
        ("shen", "y"): {"Yelong Shen", "Yikang Shen"},
        ("wang", "y"): {"Yu Emma Wang", "Yuqing Wang"},  # GLaM; Native Sparse Attention
        ("wu", "y"): {"Yonghui Wu", "Yuhuai Wu"},  # GLaM; Memorizing Transformers
        ("zhang", "m"): {"Ming Zhang", "Michael Zhang"},  # Native Sparse Attention; Based
        ("zhang", "z"): {"Zhengyan Zhang", "Zhenyuan Zhang"},  # Native Sparse Attention; RWKV
    }


def test_canonical_authors_count_papers_once_per_person() -> None:
    papers = PEOPLE.papers_by_person(CATALOG)
    assert papers["William Fedus"] == ["glam", "st-moe", "switch-transformer"]
    assert "Liam Fedus" not in papers


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(load_catalog().root, root)
    return root


def test_bad_people_file_is_reported_with_line(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "people.yaml").write_text(
        "people:\n"
        "  - name: William Fedus\n"
        "    spellings: [Liam Fedus]\n"
        "  - name: Liam Fedus\n"
        "    spellings: [Bill Fedus]\n"
        "  - name: Noam Shazeer\n"
        "    spelings: [N. Shazeer]\n",
        encoding="utf-8",
    )
    problems = [str(problem) for problem in load_catalog(root).problems]
    assert any("people.yaml:7: people.2.spelings: unknown field" in p for p in problems), problems
    assert any(
        "people.yaml:6: people.2.spellings: required field is missing" in p for p in problems
    )
    root2 = _copy(tmp_path / "b")
    (root2 / "people.yaml").write_text(
        "people:\n"
        "  - name: William Fedus\n"
        "    spellings: [Liam Fedus]\n"
        "  - name: Liam Fedus\n"
        "    spellings: [Bill Fedus]\n",
        encoding="utf-8",
    )
    problems = [str(problem) for problem in load_catalog(root2).problems]
    assert len(problems) == 1, problems
    assert problems[0].endswith(
        "people.yaml:4: people.1.name: 'Liam Fedus' is already a spelling of 'William Fedus'"
    )
