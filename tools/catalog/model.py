"""The data model of a catalog entry: the single source of truth of the format.

The pydantic models below define ``catalog/papers/<id>.yaml`` and
``catalog/taxonomy.yaml``; the JSON Schema in ``catalog/schema/entry.schema.json`` is
generated from them (:mod:`tools.catalog.schema`). Validation is strict: types are not
coerced and unknown fields are rejected, so a typo is an error, not a silent default.

Examples:
    >>> entry = Entry.model_validate({
    ...     "id": "x", "name": "X", "kind": "survey", "title": "T", "authors": ["A B"],
    ...     "year": 2020, "venue": "arXiv preprint", "url": "https://x.org/", "citekey": "b2020t"})
    >>> entry.venue_year
    2020
    >>> FORMATS["arxiv"][1]
    "an arXiv id such as 2009.14794 (no 'arXiv:' prefix, no version)"
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from tools.catalog.complexity import ComplexityError, parse_full

# Where the generated JSON Schema lives (relative to the catalog folder), and the line
# every entry starts with so that editors validate while people type.
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
    # Braces, quotes, backslashes and white space never occur in a real DOI or URL, and
    # each would let a value break out of a BibTeX field or a Markdown link.
    "doi": (
        r'^10\.\d{4,9}/[^\s{}"\\]+$',
        "a DOI such as 10.1145/3530811 (no https://doi.org/; no spaces, braces or quotes)",
    ),
    "citekey": (r"^[A-Za-z][A-Za-z0-9_:.+-]*$", "a BibTeX key such as choromanski2021rethinking"),
    "url": (
        r'^https?://[^\s{}"<>\\^`|]+$',
        "an http(s) URL (no spaces, braces, quotes or angle brackets)",
    ),
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


def _single_line(value: str) -> str:
    """Refuse line breaks and control characters in a field shown on one line.

    A title is printed on a terminal, written into a Markdown page and a BibTeX record;
    a line break there can start Markdown block syntax (a snippet include, a heading)
    and a control character can drive the terminal.
    """
    bad = next((char for char in value if unicodedata.category(char) in ("Cc", "Zl", "Zp")), None)
    if bad is not None:
        raise ValueError(f"must be a single line without control characters (found {bad!r})")
    return value


Line = Annotated[str, AfterValidator(_single_line)]


def _page_range(value: str) -> str:
    """Accept "7", "1-28" or "e1-e9"; refuse en dashes, blanks and backward ranges.

    Examples:
        >>> _page_range("5156-5165")
        '5156-5165'
        >>> _page_range("28-1")
        Traceback (most recent call last):
        ...
        ValueError: page range '28-1' ends before it starts
    """
    match = re.fullmatch(r"([a-z]?)([0-9]+)(?:-([a-z]?)([0-9]+))?", value)
    if match is None:
        raise ValueError(
            f"malformed pages {value!r}: expected a page or a range such as 1-28 (a hyphen)"
        )
    if match.group(4) is not None and int(match.group(4)) < int(match.group(2)):
        raise ValueError(f"page range {value!r} ends before it starts")
    return value


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
    class_: Line = Field(alias="class", description='Class as printed, e.g. "FP+M"')
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


class Publication(_Strict):
    """Where the paper was published, as a bibliography cites it (BibTeX, CSL-JSON).

    ``Entry.venue`` stays the short form shown on the site ("ICLR 2021"); these fields
    are the structured form a citation needs. An arXiv-only preprint has none.

    Examples:
        >>> p = Publication.model_validate({
        ...     "container_title": "ACM Computing Surveys", "volume": "55", "issue": "6",
        ...     "article": "109", "pages": "1-28", "year": 2022})
        >>> p.pages_bibtex
        '1--28'
    """

    container_title: Line = Field(
        min_length=1,
        description='Journal or proceedings title, e.g. "ACM Computing Surveys" or'
        ' "Proceedings of the 37th International Conference on Machine Learning"',
    )
    year: int = Field(ge=1950, le=2100, description="Year of the volume or proceedings")
    volume: Annotated[str, Field(pattern=r"^[0-9]+$")] | None = Field(
        default=None, description='Volume, as a string, e.g. "55" (PMLR: the PMLR volume)'
    )
    issue: Annotated[str, Field(pattern=r"^[0-9]+$")] | None = Field(
        default=None, description='Issue or number, e.g. "6" (BibTeX number, CSL issue)'
    )
    article: Annotated[str, Field(pattern=r"^[0-9A-Za-z]+$")] | None = Field(
        default=None, description='Article number where the journal numbers articles, e.g. "109"'
    )
    pages: Annotated[str, AfterValidator(_page_range)] | None = Field(
        default=None,
        description='Pages as "first-last" with a hyphen (not an en dash), e.g. "1-28"',
    )
    publisher: Line | None = Field(
        default=None, description='e.g. "Association for Computational Linguistics"'
    )
    series: Line | None = Field(
        default=None, description='Book series, e.g. "Proceedings of Machine Learning Research"'
    )

    @property
    def pages_bibtex(self) -> str | None:
        """The page range with BibTeX's ``--``."""
        return self.pages.replace("-", "--") if self.pages else None


class Entry(_Strict):
    """One paper of the catalog (``catalog/papers/<id>.yaml``)."""

    id: Id
    name: Line = Field(min_length=1, description='Model name, e.g. "Performer"')
    aliases: list[Line] = Field(
        default_factory=list,
        description='Other names people write, e.g. "Big Bird" for BigBird (notes use them)',
    )
    kind: Literal["model", "survey", "benchmark"] = Field(
        description="model: proposes a mechanism; survey: reviews them; benchmark: measures them"
    )
    draft: bool = Field(default=False, description="Created by the Zotero sync; fields missing")
    title: Line = Field(min_length=1)
    authors: list[Line] = Field(min_length=1, description='Ordered "Given Family" names')
    year: int = Field(ge=1950, le=2100, description="Year first public")
    venue: Line = Field(min_length=1, description='e.g. "ICLR 2021" or "arXiv preprint"')
    publication: Publication | None = Field(
        default=None, description="Structured venue facts for citations; none for a preprint"
    )
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
        if self.publication is not None and self.publication.year < self.year:
            raise ValueError(
                f"publication.year {self.publication.year} is before year {self.year},"
                " when the paper was first public"
            )
        return self

    @property
    def venue_year(self) -> int:
        """The year cited: ``publication.year``, else the venue's ("ICLR 2021"), else ``year``."""
        if self.publication is not None:
            return self.publication.year
        match = re.search(r"\b(19|20)\d{2}\b", self.venue)
        return int(match.group(0)) if match else self.year


class TaxonomyClass(_Strict):
    """A class of the taxonomy: one of the survey's nine, or one the atlas adds.

    The survey's Table 1 stops in 2022; models after it (FlashAttention, state-space models,
    gated linear recurrences) need classes the survey does not have. ``source`` keeps the two
    apart, so the survey's taxonomy stays visible as printed.
    """

    code: str = Field(pattern=r"^[A-Za-z]+$")
    name: Line
    description: str
    source: Literal["survey", "atlas"] = Field(
        default="survey",
        description="survey: a class of Tay et al.'s taxonomy; atlas: added for later models",
    )


class Taxonomy(_Strict):
    classes: list[TaxonomyClass]


def survey_growth_symbol(text: str) -> str:
    """Parse a Table 1 complexity string and return the length symbol it uses (N or n)."""
    symbol = "N" if re.search(r"\bN\b", text) else "n"
    parse_full(text, length_symbol=symbol)
    return symbol


class Person(_Strict):
    """One author whose name is spelled more than one way across the catalog's bylines."""

    name: Line = Field(min_length=1, description='The canonical "Given Family" name')
    spellings: list[Annotated[Line, Field(min_length=1)]] = Field(
        min_length=1, description='Other spellings of the same person, e.g. "Liam Fedus"'
    )


class People(_Strict):
    """``catalog/people.yaml``: the authors listed under more than one spelling."""

    people: list[Person] = Field(default_factory=list)
