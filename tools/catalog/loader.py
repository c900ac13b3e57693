"""Loading a catalog folder: every entry and the taxonomy, validated, with every problem.

:func:`load_catalog` never raises on bad data: it collects :class:`Problem` records so
that ``python -m tools.catalog check`` can report all of them at once. Loading reads
YAML only; it imports neither torch nor the implementations (the check's
implementation cross-check, in :mod:`tools.catalog.check`, does).

Examples:
    >>> catalog = load_catalog()
    >>> catalog.entries["performer"].name
    'Performer'
    >>> catalog.problems
    []
    >>> catalog.entry("performr")
    Traceback (most recent call last):
    ...
    KeyError: "no catalog entry 'performr'; closest: performer, reformer, cluster-former"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.catalog.journal import JOURNAL_NAME
from tools.catalog.model import SCHEMA_COMMENT, Entry, People, Person, Taxonomy, TaxonomyClass
from tools.catalog.names import closest_hint
from tools.catalog.paths import CATALOG_DIR, display
from tools.catalog.people import PEOPLE_NAME, person_key
from tools.catalog.results import RESULTS_FOLDER, Results, ResultsFile, check_results, flatten
from tools.catalog.yamlio import Problem, line_of, read_yaml, validate


@dataclass
class Catalog:
    """Everything loaded from a catalog folder, and every problem found on the way."""

    root: Path
    entries: dict[str, Entry] = field(default_factory=dict)
    taxonomy: list[TaxonomyClass] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
    results: dict[str, Results] = field(default_factory=dict)

    @property
    def papers_dir(self) -> Path:
        return self.root / "papers"

    def entry(self, id: str) -> Entry:
        """The entry ``id``; ``KeyError`` names the closest ids when it does not exist."""
        try:
            return self.entries[id]
        except KeyError:
            raise KeyError(f"no catalog entry {id!r}{closest_hint(id, self.entries)}") from None

    def models(self) -> list[Entry]:
        """Entries of kind ``model``, sorted by id."""
        return sorted((e for e in self.entries.values() if e.kind == "model"), key=lambda e: e.id)

    def taxonomy_class(self, code: str) -> TaxonomyClass:
        for taxonomy_class in self.taxonomy:
            if taxonomy_class.code == code:
                return taxonomy_class
        raise KeyError(f"no taxonomy class {code!r}")


def load_catalog(root: Path | None = None) -> Catalog:
    """Load and validate every catalog file under ``root`` (default: the shipped catalog).

    Problems are collected, never raised, so a check can report all of them at once.
    """
    catalog = Catalog(root=(root or CATALOG_DIR).resolve())
    taxonomy_path = catalog.root / "taxonomy.yaml"
    if taxonomy_path.exists():
        data = read_yaml(taxonomy_path, catalog.problems)
        taxonomy = validate(Taxonomy, data, taxonomy_path, catalog.problems)
        if taxonomy is not None:
            catalog.taxonomy = taxonomy.classes
    else:
        catalog.problems.append(Problem(taxonomy_path, 1, "(file)", "taxonomy.yaml is missing"))

    _load_people(catalog)
    raw: dict[Path, Any] = {}
    for path in sorted(catalog.papers_dir.glob("*.yaml")):
        data = read_yaml(path, catalog.problems)
        if data is None:
            continue
        raw[path] = data
        entry = validate(Entry, data, path, catalog.problems)
        if entry is None:
            continue
        if entry.id in catalog.entries:
            first = catalog.paths[entry.id]
            for where, other in ((first, path), (path, first)):
                catalog.problems.append(
                    Problem(
                        where,
                        line_of(raw[where], ["id"]),
                        "id",
                        f"duplicate id {entry.id!r} (also in {display(other)})",
                    )
                )
            continue
        catalog.entries[entry.id] = entry
        catalog.paths[entry.id] = path
    _cross_check(catalog, raw)
    _load_results(catalog)
    if (catalog.root / JOURNAL_NAME).exists():
        catalog.problems.append(
            Problem(
                catalog.root / JOURNAL_NAME,
                1,
                "(journal)",
                "a write was interrupted; python -m tools.catalog check finishes it",
            )
        )
    catalog.problems.sort(key=lambda p: (str(p.path), p.line, p.field))
    return catalog


def _load_results(catalog: Catalog) -> None:
    """Read ``results/*.yaml`` (published results), each checked against the entries."""
    citekeys = {entry.citekey: entry.id for entry in catalog.entries.values()}
    for path in sorted((catalog.root / RESULTS_FOLDER).glob("*.yaml")):
        data = read_yaml(path, catalog.problems)
        if data is None:
            continue
        parsed = validate(ResultsFile, data, path, catalog.problems)
        found = check_results(data, path, catalog.entries, citekeys)
        catalog.problems.extend(found)
        if parsed is not None and not found:
            catalog.results[path.stem] = flatten(parsed)


def _load_people(catalog: Catalog) -> None:
    """Read ``people.yaml`` (optional): each spelling names one person only."""
    path = catalog.root / PEOPLE_NAME
    if not path.exists():
        return
    data = read_yaml(path, catalog.problems)
    people = validate(People, data, path, catalog.problems) if data is not None else None
    if people is None:
        return
    owner: dict[str, str] = {}
    for index, person in enumerate(people.people):
        for where, spelling in (
            ("name", person.name),
            *(("spellings", s) for s in person.spellings),
        ):
            loc: list[Any] = ["people", index, where]
            if where == "spellings":
                loc.append(person.spellings.index(spelling))
            key = person_key(spelling)
            if key in owner and owner[key] != person.name:
                message = f"{spelling!r} is already a spelling of {owner[key]!r}"
            elif key in owner:
                message = f"{spelling!r} repeats {person.name!r} once folded"
            else:
                owner[key] = person.name
                continue
            catalog.problems.append(
                Problem(path, line_of(data, loc), ".".join(map(str, loc[:3])), message)
            )
    catalog.people = people.people


def _cross_check(catalog: Catalog, raw: Mapping[Path, Any]) -> None:
    """Checks across files, run on every parsed file, valid or not, to report all at once."""
    codes = {taxonomy_class.code for taxonomy_class in catalog.taxonomy}
    ids = {path.stem for path in raw}
    citekeys: dict[str, Path] = {}
    for path, data in raw.items():
        if not isinstance(data, Mapping):
            continue

        def report(loc: list[Any], message: str, data: Any = data, path: Path = path) -> None:
            catalog.problems.append(
                Problem(path, line_of(data, loc), ".".join(map(str, loc)), message)
            )

        id = data.get("id")
        if isinstance(id, str) and path.stem != id:
            report(["id"], f"id {id!r} must equal the file name {path.stem!r}")
        citekey = data.get("citekey")
        if isinstance(citekey, str):
            if citekey in citekeys:
                report(
                    ["citekey"],
                    f"duplicate citekey {citekey!r} (also in {display(citekeys[citekey])})",
                )
            else:
                citekeys[citekey] = path
        taxonomy = data.get("taxonomy")
        if catalog.taxonomy and isinstance(taxonomy, list):
            for index, code in enumerate(taxonomy):
                if isinstance(code, str) and code not in codes:
                    known = ", ".join(c.code for c in catalog.taxonomy)
                    report(
                        ["taxonomy", index],
                        f"unknown taxonomy code {code!r}; expected one of {known}",
                    )
        related = data.get("related")
        if isinstance(related, list):
            for index, other in enumerate(related):
                if not isinstance(other, str):
                    continue
                if other == id:
                    report(["related", index], "an entry cannot be related to itself")
                elif other not in ids:
                    report(["related", index], f"related id {other!r} is not in the catalog")
        if not path.read_text(encoding="utf-8").startswith(SCHEMA_COMMENT):
            catalog.problems.append(
                Problem(path, 1, "(schema)", f"first line must be {SCHEMA_COMMENT!r}")
            )
