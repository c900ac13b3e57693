"""The catalog: its data model, and the only code that reads or writes catalog files.

``catalog/papers/<id>.yaml`` holds one entry per paper, ``catalog/taxonomy.yaml`` the
survey's classes, ``catalog/measurements/`` measured figures and ``catalog/zotero/`` the
Zotero sync's watermarks. Every tool (check, export, measure, site, Zotero sync, cite,
notes) goes through this module, so the rules of the data live in one place.

The pydantic models below are the single source of truth of the format; the JSON
Schema in ``catalog/schema/entry.schema.json`` is generated from them
(``python -m tools.catalog schema``), and each YAML entry names it on its first line so
that editors validate while people type.

Command line::

    python -m tools.catalog check                      # validate everything
    python -m tools.catalog export --format bibtex -o atlas.bib
    python -m tools.catalog schema [--check]           # (re)generate the JSON Schema

Examples:
    >>> catalog = load_catalog()
    >>> catalog.entries["performer"].name
    'Performer'
    >>> catalog.problems
    []
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import io
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from tools.complexity import ComplexityError, parse_full

ROOT = Path(__file__).resolve().parents[1]
CATALOG_DIR = ROOT / "catalog"
SCHEMA_RELATIVE = "schema/entry.schema.json"
SCHEMA_COMMENT = f"# yaml-language-server: $schema=../{SCHEMA_RELATIVE}"

# Fields a citation manager owns; the Zotero sync may write these and nothing else.
CITATION_FIELDS: tuple[str, ...] = (
    "title",
    "authors",
    "year",
    "venue",
    "arxiv",
    "doi",
    "url",
    "citekey",
    "zotero",
)

# Human explanations of the formats, used in error messages and the JSON Schema.
FORMATS: dict[str, tuple[str, str]] = {
    "id": (r"^[a-z0-9]+(?:-[a-z0-9]+)*$", "a kebab-case id such as big-bird"),
    "arxiv": (
        r"^(?:\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?/\d{7})$",
        "an arXiv id such as 2009.14794 (no 'arXiv:' prefix, no version)",
    ),
    "doi": (r"^10\.\d{4,9}/\S+$", "a DOI such as 10.1145/3530811 (no https://doi.org/)"),
    "citekey": (r"^[A-Za-z][A-Za-z0-9_:.+-]*$", "a BibTeX key such as choromanski2021rethinking"),
    "url": (r"^https?://\S+$", "an http(s) URL"),
    "library": (r"^(?:users|groups)/\d+$", "a Zotero library such as groups/2480461"),
    "key": (r"^[A-Z0-9]{8}$", "an 8-character Zotero item key such as HF7B8SJU"),
    "implementation": (
        r"^implementations\.[a-z0-9_]+$",
        "a module path such as implementations.performer",
    ),
}


def _formatted(name: str) -> Any:
    pattern, description = FORMATS[name]
    return Field(pattern=pattern, description=description)


Id = Annotated[str, _formatted("id")]
Url = Annotated[str, _formatted("url")]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)


def _parsable(parse: Any) -> AfterValidator:
    """A validator that accepts a big-O string when ``parse`` accepts it."""

    def check(value: str) -> str:
        try:
            parse(value)
        except ComplexityError as error:
            raise ValueError(f"unparsable complexity: {error}") from None
        return value

    return AfterValidator(check)


BigO = Annotated[str, _parsable(parse_full)]


class Complexity(_Strict):
    """Claimed asymptotic cost of one layer in the sequence length ``n``."""

    time: BigO = Field(description="Big-O time, e.g. O(n log n)")
    memory: BigO = Field(description="Big-O memory, e.g. O(n w)")
    symbols: dict[str, str] = Field(
        default_factory=dict, description="Every symbol other than n, explained (w: window size)"
    )

    @model_validator(mode="after")
    def _symbols_explained(self) -> Complexity:
        used = parse_full(self.time).symbols | parse_full(self.memory).symbols
        missing = sorted(used - set(self.symbols))
        if missing:
            raise ValueError(f"symbols {', '.join(missing)} are used but not explained in symbols")
        return self


SurveyBigO = Annotated[str, _parsable(lambda text: survey_growth_symbol(text))]


class SurveyRow(_Strict):
    """The survey's Table 1 row for this model, exactly as printed."""

    row: int = Field(ge=1, description="Position in Table 1 (1-based)")
    class_: str = Field(alias="class", description='Class as printed, e.g. "FP+M"')
    complexity: SurveyBigO = Field(description="Complexity as printed, N for the length")
    decode: bool


class ZoteroLink(_Strict):
    """Where this entry lives in Zotero; written by the Zotero sync."""

    library: Annotated[str, _formatted("library")]
    key: Annotated[str, _formatted("key")]
    deleted: bool = Field(default=False, description="The item was deleted in Zotero")

    @property
    def select_uri(self) -> str:
        """The Zotero desktop link, e.g. zotero://select/groups/2480461/items/HF7B8SJU."""
        scope = "library" if self.library.startswith("users/") else self.library
        return f"zotero://select/{scope}/items/{self.key}"

    @property
    def web_uri(self) -> str:
        """The zotero.org page of the item."""
        return f"https://www.zotero.org/{self.library}/items/{self.key}"


class Entry(_Strict):
    """One paper of the catalog (``catalog/papers/<id>.yaml``)."""

    id: Id
    name: str = Field(min_length=1, description='Model name, e.g. "Performer"')
    aliases: list[str] = Field(
        default_factory=list,
        description='Other names people write, e.g. "Big Bird" for BigBird (notes use them)',
    )
    kind: Literal["model", "survey"]
    draft: bool = Field(default=False, description="Created by the Zotero sync; fields missing")
    title: str = Field(min_length=1)
    authors: list[str] = Field(min_length=1, description='Ordered "Given Family" names')
    year: int = Field(ge=1950, le=2100, description="Year first public")
    venue: str = Field(min_length=1, description='e.g. "ICLR 2021" or "arXiv preprint"')
    arxiv: Annotated[str, _formatted("arxiv")] | None = None
    doi: Annotated[str, _formatted("doi")] | None = None
    url: Url
    citekey: Annotated[str, _formatted("citekey")]
    taxonomy: list[str] = Field(default_factory=list, description="Class codes of taxonomy.yaml")
    complexity: Complexity | None = None
    decode: bool | None = Field(default=None, description="Supports causal decoding")
    survey: SurveyRow | None = None
    official_code: list[Url] = Field(default_factory=list)
    implementation: Annotated[str, _formatted("implementation")] | None = None
    summary: str | None = None
    notes: str | None = None
    related: list[Id] = Field(default_factory=list)
    zotero: ZoteroLink | None = None

    @model_validator(mode="after")
    def _complete_unless_draft(self) -> Entry:
        if self.kind == "model" and not self.draft:
            missing = [
                name for name in ("complexity", "decode", "summary") if getattr(self, name) is None
            ]
            if not self.taxonomy:
                missing.append("taxonomy")
            if missing:
                raise ValueError(
                    f"a model entry needs {', '.join(missing)} (or draft: true until filled)"
                )
        return self

    @property
    def venue_year(self) -> int:
        """The year of the venue when it names one ("ICLR 2021" gives 2021), else ``year``."""
        match = re.search(r"\b(19|20)\d{2}\b", self.venue)
        return int(match.group(0)) if match else self.year


class TaxonomyClass(_Strict):
    """A class of the survey's taxonomy."""

    code: str = Field(pattern=r"^[A-Za-z]+$")
    name: str
    description: str


class Taxonomy(_Strict):
    classes: list[TaxonomyClass]


def survey_growth_symbol(text: str) -> str:
    """Parse a Table 1 complexity string and return the length symbol it uses (N or n)."""
    symbol = "N" if re.search(r"\bN\b", text) else "n"
    parse_full(text, length_symbol=symbol)
    return symbol


# ----------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a catalog file, reported as ``path:line: field: message``."""

    path: Path
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{_display(self.path)}:{self.line}: {self.field}: {self.message}"


@dataclass
class Catalog:
    """Everything loaded from a catalog folder, and every problem found on the way."""

    root: Path
    entries: dict[str, Entry] = field(default_factory=dict)
    taxonomy: list[TaxonomyClass] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def papers_dir(self) -> Path:
        return self.root / "papers"

    def entry(self, id: str) -> Entry:
        """The entry ``id``; ``KeyError`` lists the closest ids when it does not exist."""
        try:
            return self.entries[id]
        except KeyError:
            close = difflib.get_close_matches(id, list(self.entries), n=3, cutoff=0.5)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise KeyError(f"no catalog entry {id!r}{hint}") from None

    def models(self) -> list[Entry]:
        """Entries of kind ``model``, sorted by id."""
        return sorted((e for e in self.entries.values() if e.kind == "model"), key=lambda e: e.id)

    def taxonomy_class(self, code: str) -> TaxonomyClass:
        for taxonomy_class in self.taxonomy:
            if taxonomy_class.code == code:
                return taxonomy_class
        raise KeyError(f"no taxonomy class {code!r}")


def _display(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    return str(path)


def _yaml_reader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def _yaml_writer() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    yaml.preserve_quotes = True
    return yaml


def _read_yaml(path: Path, problems: list[Problem]) -> Any:
    """Round-trip load (keeps line numbers); YAML errors become problems, not tracebacks."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problems.append(Problem(path, 1, "(file)", f"cannot read: {error}"))
        return None
    try:
        return _yaml_reader().load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(str(part) for part in (error.context, error.problem) if part)
        if "duplicate key" in what:
            key = re.search(r'duplicate key "?([^"\s]+)"?', what)
            name = key.group(1) if key else "(key)"
            problems.append(Problem(path, line, name, f"duplicate key {name!r}"))
        else:
            problems.append(Problem(path, line, "(yaml)", f"YAML syntax error: {what}"))
        return None


def _line_of(node: Any, loc: Iterable[Any]) -> int:
    """The 1-based line of the deepest part of ``loc`` that exists in the YAML tree."""
    # A missing field is reported where its mapping starts.
    line = node.lc.line + 1 if isinstance(node, CommentedMap) and node.lc.line is not None else 1
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _message(error: Mapping[str, Any], model: type[BaseModel]) -> str:
    kind = error["type"]
    loc = [part for part in error["loc"] if isinstance(part, str)]
    name = loc[-1] if loc else ""
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (not part of the schema)"
    if kind == "string_pattern_mismatch":
        expected = FORMATS.get(name, ("", "the documented format"))[1]
        return f"malformed value {error['input']!r}: expected {expected}"
    if kind == "string_type" and name in FORMATS:
        return f"expected {FORMATS[name][1]}, as a quoted string (got {error['input']!r})"
    if kind.endswith("_type") or kind in ("literal_error", "bool_parsing", "int_parsing"):
        got = type(error["input"]).__name__
        return f"{error['msg'].replace('Input should be', 'expected')} (got {got})"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _plain(node: Any) -> Any:
    """ruamel's round-trip types to plain Python, so strict validation sees ordinary types."""
    if isinstance(node, Mapping):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(value) for value in node]
    for plain_type in (bool, int, float, str):
        if isinstance(node, plain_type):
            return plain_type(node)
    return node


def _validate(model: type[BaseModel], data: Any, path: Path, problems: list[Problem]) -> Any:
    if not isinstance(data, Mapping):
        problems.append(Problem(path, 1, "(file)", "expected a YAML mapping of fields"))
        return None
    try:
        return model.model_validate(_plain(data))
    except ValidationError as error:
        for detail in error.errors():
            loc = [part for part in detail["loc"] if part != "[key]"]
            field_name = ".".join(str(part) for part in loc) or "(entry)"
            problems.append(Problem(path, _line_of(data, loc), field_name, _message(detail, model)))
        return None


def load_catalog(root: Path | None = None) -> Catalog:
    """Load and validate every catalog file under ``root`` (default: the shipped catalog).

    Problems are collected, never raised, so a check can report all of them at once.
    """
    catalog = Catalog(root=(root or CATALOG_DIR).resolve())
    taxonomy_path = catalog.root / "taxonomy.yaml"
    taxonomy = (
        _validate(
            Taxonomy, _read_yaml(taxonomy_path, catalog.problems), taxonomy_path, catalog.problems
        )
        if taxonomy_path.exists()
        else None
    )
    if taxonomy_path.exists() and taxonomy is not None:
        catalog.taxonomy = taxonomy.classes
    elif not taxonomy_path.exists():
        catalog.problems.append(Problem(taxonomy_path, 1, "(file)", "taxonomy.yaml is missing"))

    raw: dict[Path, Any] = {}
    for path in sorted(catalog.papers_dir.glob("*.yaml")):
        data = _read_yaml(path, catalog.problems)
        if data is None:
            continue
        raw[path] = data
        entry = _validate(Entry, data, path, catalog.problems)
        if entry is None:
            continue
        if entry.id in catalog.entries:
            first = catalog.paths[entry.id]
            for where, other in ((first, path), (path, first)):
                catalog.problems.append(
                    Problem(
                        where,
                        _line_of(raw[where], ["id"]),
                        "id",
                        f"duplicate id {entry.id!r} (also in {_display(other)})",
                    )
                )
            continue
        catalog.entries[entry.id] = entry
        catalog.paths[entry.id] = path
    _cross_check(catalog, raw)
    catalog.problems.sort(key=lambda p: (str(p.path), p.line, p.field))
    return catalog


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
                Problem(path, _line_of(data, loc), ".".join(map(str, loc)), message)
            )

        id = data.get("id")
        if isinstance(id, str) and path.stem != id:
            report(["id"], f"id {id!r} must equal the file name {path.stem!r}")
        citekey = data.get("citekey")
        if isinstance(citekey, str):
            if citekey in citekeys:
                report(
                    ["citekey"],
                    f"duplicate citekey {citekey!r} (also in {_display(citekeys[citekey])})",
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
        module = data.get("implementation")
        if isinstance(id, str) and isinstance(module, str):
            error = implementation_problem(id, module)
            if error:
                report(["implementation"], error)
        if not path.read_text(encoding="utf-8").startswith(SCHEMA_COMMENT):
            catalog.problems.append(
                Problem(path, 1, "(schema)", f"first line must be {SCHEMA_COMMENT!r}")
            )


def implementation_problem(id: str, module: str) -> str | None:
    """Why ``module`` is not the registered implementation of ``id``, or None when it is."""
    try:
        implementations = importlib.import_module("implementations")
    except Exception as error:  # a broken package must be reported, whatever it raised
        return f"cannot import the implementations package: {error}"
    expected = implementations.module_name(id)
    if module != expected:
        return f"expected {expected!r} (the module named after the id), got {module!r}"
    try:
        importlib.import_module(module)
    except Exception as error:
        return f"cannot import {module}: {type(error).__name__}: {error}"
    if id not in implementations.available():
        return f"{module} imports but does not register {id!r}"
    return None


# ----------------------------------------------------------------------------- writing


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path, text: str | bytes) -> None:
    """Write ``text`` (UTF-8) or bytes to ``path``: readers see the old file or the new,
    never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file private (0600); keep the old file's mode, or the umask's.
        os.chmod(temporary, path.stat().st_mode & 0o777 if path.exists() else _default_mode())
        with os.fdopen(handle, "wb") as stream:
            stream.write(text.encode("utf-8") if isinstance(text, str) else text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_all(files: Mapping[Path, str | None]) -> None:
    """Write several files all or nothing: on any failure, restore those already written.

    ``None`` as content deletes the file.
    """
    originals: dict[Path, bytes | None] = {
        path: path.read_bytes() if path.exists() else None for path in files
    }
    done: list[Path] = []
    try:
        for path, text in files.items():
            if text is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, text)
            done.append(path)
    except BaseException:
        for path in done:
            original = originals[path]
            if original is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, original)
        raise


def _dump(data: Any) -> str:
    stream = io.StringIO()
    _yaml_writer().dump(data, stream)
    return stream.getvalue()


KEY_ORDER: tuple[str, ...] = tuple(Entry.model_fields)


def render_entry(data: Mapping[str, Any]) -> str:
    """The YAML text of a new entry, keys in the canonical order, schema line first."""
    unknown = set(data) - set(KEY_ORDER)
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    ordered = CommentedMap((key, data[key]) for key in KEY_ORDER if data.get(key) is not None)
    return f"{SCHEMA_COMMENT}\n{_dump(ordered)}"


@dataclass(frozen=True)
class FieldChange:
    """One top-level field of one entry, before and after."""

    id: str
    field: str
    old: Any
    new: Any


def _top_level_spans(text: str) -> dict[str, tuple[int, int]]:
    """Line spans [start, end) of each top-level key's lines, trailing comments excluded."""
    data = _yaml_reader().load(text)
    lines = text.splitlines(keepends=True)
    starts = [(data.lc.key(key)[0], key) for key in data]
    spans: dict[str, tuple[int, int]] = {}
    for index, (start, key) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(lines)
        # Blank lines and column-0 comments before the next key belong to that key.
        while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
            end -= 1
        spans[key] = (start, end)
    return spans


def edit_fields(text: str, changes: Mapping[str, Any]) -> str:
    """Rewrite only the lines of the changed top-level fields of an entry's YAML ``text``.

    Everything else — comments, key order, quoting, formatting — is kept byte for byte.
    A value of ``None`` removes the field; a new field goes after its predecessor in
    the canonical key order.

    Examples:
        >>> text = "id: x  # mine\\ntitle: Old\\nyear: 2020\\n"
        >>> print(edit_fields(text, {"title": "New", "doi": "10.1/x"}), end="")
        id: x  # mine
        title: New
        year: 2020
        doi: 10.1/x
    """
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    spans = _top_level_spans(text)
    replacements: dict[int, tuple[int, list[str]]] = {}  # start -> (end, new lines)
    for key, value in changes.items():
        rendered = [] if value is None else _dump({key: value}).splitlines(keepends=True)
        if key in spans:
            start, end = spans[key]
            replacements[start] = (end, rendered)
        elif rendered:
            order = KEY_ORDER.index(key) if key in KEY_ORDER else len(KEY_ORDER)
            before = [k for k in spans if k in KEY_ORDER and KEY_ORDER.index(k) < order]
            anchor = spans[before[-1]][1] if before else len(lines)
            end, existing = replacements.get(anchor, (anchor, []))
            replacements[anchor] = (end, existing + rendered)
    output: list[str] = []
    index = 0
    for start in sorted(replacements):
        end, rendered = replacements[start]
        output.extend(lines[index:start])
        output.extend(rendered)
        index = max(index, end)
    output.extend(lines[index:])
    new_text = "".join(output)
    reloaded = _yaml_reader().load(new_text)
    for key, value in changes.items():
        if _plain(reloaded.get(key)) != _plain(value):
            raise RuntimeError(f"editing {key!r} did not round-trip; nothing written")
    return new_text


class Store:
    """Reads and writes one catalog folder; the tools change files only through it.

    Args:
        root: The catalog folder (``catalog/`` of the repository by default).
        dry_run: Plan changes and report them, but write nothing.
    """

    def __init__(self, root: Path | None = None, *, dry_run: bool = False) -> None:
        self.root = (root or CATALOG_DIR).resolve()
        self.dry_run = dry_run
        self._pending: dict[Path, str | None] = {}

    def load(self) -> Catalog:
        return load_catalog(self.root)

    def entry_path(self, id: str) -> Path:
        return self.root / "papers" / f"{id}.yaml"

    def _current_text(self, path: Path) -> str:
        pending = self._pending.get(path)
        return pending if pending is not None else path.read_text(encoding="utf-8")

    def update_entry(self, id: str, changes: Mapping[str, Any]) -> list[FieldChange]:
        """Stage changes of citation fields of entry ``id``; returns what actually changes."""
        forbidden = sorted(set(changes) - set(CITATION_FIELDS))
        if forbidden:
            raise ValueError(f"only citation fields may be written, not {forbidden}")
        path = self.entry_path(id)
        text = self._current_text(path)
        current = _plain(_yaml_reader().load(text))
        effective = {k: v for k, v in changes.items() if _plain(current.get(k)) != _plain(v)}
        if not effective:
            return []
        new_text = edit_fields(text, effective)
        data = _yaml_reader().load(new_text)
        problems: list[Problem] = []
        _validate(Entry, data, path, problems)
        if problems:
            raise ValueError("; ".join(str(problem) for problem in problems))
        self._pending[path] = new_text
        return [FieldChange(id, key, current.get(key), value) for key, value in effective.items()]

    def create_entry(self, data: Mapping[str, Any]) -> Path:
        """Stage a new entry file (e.g. a draft from Zotero); refuses to overwrite one."""
        path = self.entry_path(str(data["id"]))
        if path.exists() or path in self._pending:
            raise FileExistsError(f"{_display(path)} already exists")
        text = render_entry(data)
        problems: list[Problem] = []
        _validate(Entry, _yaml_reader().load(text), path, problems)
        if problems:
            raise ValueError("; ".join(str(problem) for problem in problems))
        self._pending[path] = text
        return path

    def read_data(self, relative: str) -> Any:
        """A JSON data file under the catalog folder, or None when it does not exist."""
        path = self.root / relative
        if path in self._pending:
            pending = self._pending[path]
            return None if pending is None else json.loads(pending)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            where = f"{_display(path)}:{error.lineno}"
            raise ValueError(f"{where}: malformed JSON: {error.msg}") from None

    def write_data(self, relative: str, data: Any) -> None:
        """Stage a JSON data file (measurements, sync watermarks) under the catalog folder."""
        path = self.root / relative
        self._pending[path] = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"

    def list_data(self, folder: str) -> list[str]:
        """Relative names of the JSON files in ``folder`` under the catalog folder."""
        directory = self.root / folder
        return (
            sorted(str(path.relative_to(self.root)) for path in directory.glob("*.json"))
            if directory.exists()
            else []
        )

    @property
    def pending(self) -> list[Path]:
        return sorted(self._pending)

    def commit(self) -> list[Path]:
        """Write every staged file, all or nothing; in dry-run mode write nothing."""
        written = self.pending
        if not self.dry_run:
            write_all(self._pending)
        self._pending = {}
        return written

    def discard(self) -> None:
        self._pending = {}


# ----------------------------------------------------------------------------- schema


def json_schema() -> dict[str, Any]:
    """The JSON Schema of an entry, generated from :class:`Entry`."""
    schema = Entry.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Efficient Transformers Atlas catalog entry"
    return schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


# ----------------------------------------------------------------------------- command line


def _check(catalog: Catalog) -> int:
    for problem in catalog.problems:
        print(problem, file=sys.stderr)
    schema_path = catalog.root / SCHEMA_RELATIVE
    if catalog.root == CATALOG_DIR and (
        not schema_path.exists() or schema_path.read_text(encoding="utf-8") != schema_text()
    ):
        print(
            f"{_display(schema_path)}:1: (schema): out of date; run python -m tools.catalog schema",
            file=sys.stderr,
        )
        return 1
    if catalog.problems:
        print(
            f"{len(catalog.problems)} problem(s) in {len(catalog.entries)} valid entries",
            file=sys.stderr,
        )
        return 1
    drafts = sum(entry.draft for entry in catalog.entries.values())
    suffix = f" ({drafts} draft)" if drafts else ""
    print(f"catalog OK: {len(catalog.entries)} entries{suffix}, {len(catalog.taxonomy)} classes")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.catalog", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--root", type=Path, help="catalog folder (default: catalog/)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="validate every entry; report all problems")
    export = commands.add_parser("export", help="export the whole catalog")
    export.add_argument("--format", choices=("bibtex", "csljson", "json"), required=True)
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    export.add_argument("--dry-run", action="store_true", help="report what would be written")
    schema = commands.add_parser("schema", help="write the JSON Schema generated from the model")
    schema.add_argument("--check", action="store_true", help="fail if the file is out of date")
    schema.add_argument("--dry-run", action="store_true", help="report, write nothing")
    args = parser.parse_args(argv)

    catalog = load_catalog(args.root)
    if args.command == "check":
        return _check(catalog)
    if args.command == "schema":
        path = catalog.root / SCHEMA_RELATIVE
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == schema_text():
            print(f"{_display(path)} is up to date")
            return 0
        if args.check or args.dry_run:
            print(f"{_display(path)} is out of date", file=sys.stderr)
            return 1 if args.check else 0
        atomic_write(path, schema_text())
        print(f"wrote {_display(path)}")
        return 0
    # export
    if catalog.problems:
        _check(catalog)
        return 1
    from tools import export as exporter

    text = exporter.render(catalog, args.format)
    if args.output is None:
        sys.stdout.write(text)
    elif args.dry_run:
        print(f"would write {len(text)} characters to {args.output}")
    else:
        atomic_write(args.output, text)
        print(f"wrote {len(catalog.entries)} entries to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
