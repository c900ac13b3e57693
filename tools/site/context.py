"""What every page family reads besides the catalog: measurements, mechanisms, source links.

Also the few helpers that several families share (the models in name order, the
authors' anchors, the measured results of an entry) and the formatting of figures as
our own markup (``n<sup>1.50</sup>``, ``0.25``, ``—``).

Examples:
    >>> number(0.254), number(None), power(1.5)
    (Markup('0.25'), Markup('—'), Markup('n<sup>1.50</sup>'))
    >>> growth_text(Growth(1.5, 0)), growth_text(Growth(1.0, 1)), growth_text(Growth(2.0))
    (Markup('n^1.5'), Markup('n log n'), Markup('n^2'))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from markupsafe import Markup

from tools.catalog import Catalog, Entry, MeasurementFile
from tools.catalog.addresses import pinned_source_url, shipped_source_url
from tools.catalog.citations import split_name
from tools.catalog.complexity import ComplexityError, Growth, parse
from tools.catalog.measurements import Figure, Result
from tools.catalog.mechanisms import DeclaredMechanism
from tools.catalog.names import slug

# The usage snippet's sequence length; its options are the measurement's at this length.
SNIPPET_LENGTH = 256


@dataclass(frozen=True)
class Measurement:
    """One measurement file (``catalog/measurements/<device>-<dtype>.json``)."""

    name: str
    file: MeasurementFile

    @property
    def label(self) -> str:
        return f"{self.file.setup.device.upper()} · {self.file.setup.dtype}"

    def result(self, key: str) -> Result | None:
        return self.file.results.get(key)

    def points(self, key: str, figure: Figure) -> list[tuple[float, float]]:
        """``(n, value)`` of each measured point of ``key``, in the file's order."""
        result = self.result(key)
        found = []
        for point in result.points if result else []:
            value = getattr(point, figure)
            if value is not None:
                found.append((float(point.n), float(value)))
        return found


@dataclass
class SiteContext:
    """Everything the pages need besides the catalog."""

    measurements: list[Measurement] = field(default_factory=list)
    mechanisms: dict[str, DeclaredMechanism] = field(default_factory=dict)
    repo_url: str | None = None
    commit: str | None = None

    def source_link(self, info: DeclaredMechanism, from_page: str) -> str:
        """The implementation's source: pinned to the commit in the repository when its
        address is known, else the copy of the file shipped with the site."""
        if self.repo_url and self.commit:
            return pinned_source_url(info, self.commit, self.repo_url)
        return shipped_source_url(info, from_page)

    def measured(self, id: str) -> list[tuple[Measurement, Result]]:
        """The measurements of ``id``, non-causal first, in measurement-file order."""
        found = []
        for measurement in self.measurements:
            for key in (id, f"{id}:causal"):
                result = measurement.result(key)
                if result is not None:
                    found.append((measurement, result))
        return found

    def primary(self, id: str) -> Result | None:
        measured = self.measured(id)
        return measured[0][1] if measured else None

    def snippet_options(self, id: str) -> dict[str, int | float | str | bool]:
        """The options ``id`` was measured with at the snippet's length (none if unmeasured)."""
        for _, result in self.measured(id):
            point = result.point(SNIPPET_LENGTH)
            if point is not None:
                return dict(point.options)
        return {}


def models(catalog: Catalog) -> list[Entry]:
    return [e for e in catalog.models() if not e.draft]


def by_name(entries: Iterable[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (e.name.lower(), e.id))


def author_slugs(catalog: Catalog) -> dict[str, str]:
    """A unique anchor per author name, stable under the catalog's order."""
    slugs: dict[str, str] = {}
    used: set[str] = set()
    for name in sorted({a for e in catalog.entries.values() for a in e.authors}):
        base = candidate = slug(name) or "author"
        counter = 2
        while candidate in used:
            candidate, counter = f"{base}-{counter}", counter + 1
        used.add(candidate)
        slugs[name] = candidate
    return slugs


def family_sort_key(name: str) -> tuple[str, str]:
    given, family = split_name(name)
    return (slug(family), slug(given))


def growth_text(growth: Growth) -> Markup:
    """An exponent of n as people write it (``n^1.5``: our markup, not escaped)."""
    power = "n" if growth.exponent == 1 else f"n^{growth.exponent:g}"
    if growth.exponent == 0:
        power = "1"
    logs = {0: "", 1: " log n"}.get(growth.log_power, f" log^{growth.log_power} n")
    return Markup(power + logs)


def growth(text: str, symbol: str = "n") -> Growth | None:
    """The growth in n of a big-O expression, or None when it does not parse."""
    try:
        return parse(text, length_symbol=symbol)
    except ComplexityError:
        return None


def number(value: float | None, digits: int = 2) -> Markup:
    return Markup(f"{value:.{digits}f}" if value is not None else "—")


def power(value: float | None) -> Markup:
    """A measured exponent of n, as n with a superscript (Markdown with inline HTML)."""
    return Markup(f"n<sup>{value:.2f}</sup>" if value is not None else "—")
