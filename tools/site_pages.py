"""The data-driven pages of the site, as Markdown text generated from the catalog.

Pure functions from a loaded :class:`~tools.catalog.Catalog` (and the measurement JSON)
to ``{path relative to docs/: content}``; :mod:`tools.site` writes them. Every piece of
text that comes from the catalog or from Zotero goes through :func:`md_text` (Markdown)
or :func:`html_text` (raw HTML), so that a title such as ``<script>`` renders as text.

Addresses are stable, since notes and papers cite them: an entry's page is
``papers/<id>.md`` (``/papers/<id>/``), a class's ``taxonomy/<code>.md``, the comparison
table ``comparison/index.md``.

Examples:
    >>> md_text("A <b>*bold*</b> $x$ & [link](y)")
    'A &lt;b&gt;&#42;bold&#42;&lt;/b&gt; &#36;x&#36; &amp; &#91;link&#93;(y)'
    >>> slug("Łukasz Kaiser"), slug("Aaron van den Oord")
    ('lukasz-kaiser', 'aaron-van-den-oord')
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import quote

from tools import export
from tools.catalog import Catalog, Entry
from tools.complexity import ComplexityError, Growth, parse
from tools.site_mechanisms import MechanismInfo, usage_snippet
from tools.site_plots import (
    DENSE_COLOUR,
    PALETTE,
    Series,
    format_bytes,
    format_count,
    format_seconds,
    loglog_svg,
    panels_svg,
    taxonomy_svg,
)

# Characters that Markdown, its extensions (arithmatex's $, tables' |) or HTML would
# interpret; they are written as character references, which render as themselves.
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]{}<>&$|#!~^:=+-]")
_REPORT_LENGTH = 4096
# Figures of a measurement point, as the site names and formats them.
FIGURES: dict[str, tuple[str, Callable[[float], str]]] = {
    "forward_s": ("forward time", format_seconds),
    "forward_backward_s": ("forward + backward time", format_seconds),
    "peak_bytes": ("peak memory", format_bytes),
    "flops": ("forward FLOPs", format_count),
}


def md_text(text: str) -> str:
    """Escape catalog text for Markdown: it renders exactly as written, never as markup.

    Line breaks are kept; blank lines separate paragraphs as in the YAML.
    """
    entities = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
    return _MARKDOWN_SPECIAL.sub(
        lambda m: entities.get(m.group(0), f"&#{ord(m.group(0))};"), text.strip()
    )


def html_text(text: str) -> str:
    """Escape catalog text for raw HTML (element content or a quoted attribute).

    ``$`` and ``\\`` are written as references too, so the math renderer never sees
    them as delimiters.

    Examples:
        >>> html_text('<script>"x"</script> $y$')
        '&lt;script&gt;&quot;x&quot;&lt;/script&gt; &#36;y&#36;'
    """
    return escape(text, quote=True).replace("$", "&#36;").replace("\\", "&#92;")


def front_matter(title: str) -> str:
    """The page's YAML front matter, setting its title safely.

    Themes print ``page.title`` unescaped in places (the header, and ``<title>`` after
    ``striptags``, which turns ``&lt;`` back into ``<``), so the title is plain text
    with angle brackets replaced by look-alikes and the rest HTML-escaped.

    Examples:
        >>> print(front_matter('A </title> & "B"'), end="")
        ---
        title: "A ‹/title› &amp; &quot;B&quot;"
        ---
    """
    safe = escape(title.replace("<", "‹").replace(">", "›"), quote=True)
    return f"---\ntitle: {json.dumps(safe, ensure_ascii=False)}\n---\n"


def md_url(url: str) -> str:
    """A URL made safe for a Markdown link target (no spaces, parentheses or quotes).

    Examples:
        >>> md_url("https://x.org/a b(c)")
        'https://x.org/a%20b%28c%29'
    """
    return quote(url, safe=":/?#@!$&*+,;=%~-._")


def ascii_fold(text: str) -> str:
    """The text without accents, as people type it into a search box.

    Examples:
        >>> ascii_fold("Nyströmformer, Łukasz")
        'Nystromformer, Lukasz'
    """
    folded = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    return folded.encode("ascii", "ignore").decode("ascii")


def slug(name: str) -> str:
    """An ASCII anchor for a name: accents dropped, lower case, words joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", ascii_fold(name).lower()).strip("-") or "author"


def fence(code: str, language: str, attributes: str = "") -> str:
    """A fenced code block whose fence is longer than any backtick run in ``code``.

    Examples:
        >>> print(fence("a ``` b", "text"))
        ````text
        a ``` b
        ````
    """
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    ticks = "`" * max(3, longest + 1)
    head = f"{ticks}{language}" + (f" {attributes}" if attributes else "")
    return f"{head}\n{code.rstrip()}\n{ticks}"


def indent(text: str, prefix: str = "    ") -> str:
    """Indent every non-empty line (the body of an admonition or a content tab)."""
    return "\n".join(prefix + line if line.strip() else "" for line in text.splitlines())


def growth_text(growth: Growth) -> str:
    """An exponent of n as people write it.

    Examples:
        >>> growth_text(Growth(1.5, 0)), growth_text(Growth(1.0, 1)), growth_text(Growth(2.0))
        ('n^1.5', 'n log n', 'n^2')
    """
    power = "n" if growth.exponent == 1 else f"n^{growth.exponent:g}"
    if growth.exponent == 0:
        power = "1"
    logs = {0: "", 1: " log n"}.get(growth.log_power, f" log^{growth.log_power} n")
    return power + logs


def _growth(text: str, symbol: str = "n") -> Growth | None:
    try:
        return parse(text, length_symbol=symbol)
    except ComplexityError:
        return None


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Measurement:
    """One measurement file (``catalog/measurements/<device>-<dtype>.json``)."""

    name: str
    data: Mapping[str, Any]

    @property
    def label(self) -> str:
        setup = self.data.get("setup", {})
        device = str(setup.get("device", self.name.split("-")[0]))
        return f"{device.upper()} · {setup.get('dtype', '')}".strip(" ·")

    def result(self, key: str) -> Mapping[str, Any] | None:
        return self.data.get("results", {}).get(key)

    def points(self, key: str, figure: str) -> list[tuple[float, float]]:
        result = self.result(key) or {}
        return [
            (float(p["n"]), float(p[figure]))
            for p in result.get("points", [])
            if isinstance(p.get(figure), int | float)
        ]


@dataclass
class SiteContext:
    """Everything the pages need besides the catalog."""

    measurements: list[Measurement] = field(default_factory=list)
    mechanisms: dict[str, MechanismInfo] = field(default_factory=dict)
    repo_url: str | None = None
    commit: str | None = None

    def source_link(self, info: MechanismInfo, from_page: str) -> str:
        """The implementation's source: pinned to the commit in the repository when its
        address is known, else the copy of the file shipped with the site."""
        if self.repo_url and self.commit:
            return f"{self.repo_url.rstrip('/')}/blob/{self.commit}/{info.source_path}"
        depth = from_page.count("/")
        return "../" * depth + f"generated/source/{info.source_path}"


# ----------------------------------------------------------------------------- helpers


def _models(catalog: Catalog) -> list[Entry]:
    return [e for e in catalog.models() if not e.draft]


def _by_name(entries: Iterable[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (e.name.lower(), e.id))


def author_slugs(catalog: Catalog) -> dict[str, str]:
    """A unique anchor per author name, stable under the catalog's order."""
    slugs: dict[str, str] = {}
    used: set[str] = set()
    for name in sorted({a for e in catalog.entries.values() for a in e.authors}):
        base = candidate = slug(name)
        counter = 2
        while candidate in used:
            candidate, counter = f"{base}-{counter}", counter + 1
        used.add(candidate)
        slugs[name] = candidate
    return slugs


def _family_sort_key(name: str) -> tuple[str, str]:
    given, family = export.split_name(name)
    return (slug(family), slug(given))


def _badge(catalog: Catalog, code: str, prefix: str) -> str:
    try:
        name = catalog.taxonomy_class(code).name
    except KeyError:
        return md_text(code)
    return f"[{md_text(code)} · {md_text(name)}]({prefix}taxonomy/{code}.md){{ .atlas-badge }}"


def _decode_text(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "—"}[value]


def _number(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "—"


def _power(value: Any) -> str:
    """A measured exponent of n, as n with a superscript (Markdown with inline HTML)."""
    return f"n<sup>{value:.2f}</sup>" if isinstance(value, int | float) else "—"


def _measured(context: SiteContext, id: str) -> list[tuple[Measurement, Mapping[str, Any]]]:
    """The measurements of ``id``, non-causal first, in measurement-file order."""
    found = []
    for measurement in context.measurements:
        for key in (id, f"{id}:causal"):
            result = measurement.result(key)
            if result:
                found.append((measurement, result))
    return found


def _primary(context: SiteContext, id: str) -> Mapping[str, Any] | None:
    measured = _measured(context, id)
    return measured[0][1] if measured else None


# ----------------------------------------------------------------------------- paper page


def _links(entry: Entry) -> list[str]:
    links: list[str] = []
    if entry.arxiv:
        links.append(
            f"[arXiv:{md_text(entry.arxiv)}]({md_url(f'https://arxiv.org/abs/{entry.arxiv}')})"
        )
    if entry.doi:
        links.append(f"[DOI {md_text(entry.doi)}]({md_url(f'https://doi.org/{entry.doi}')})")
    if entry.url and not (entry.arxiv and "arxiv.org" in entry.url):
        links.append(f"[Paper]({md_url(entry.url)})")
    for index, url in enumerate(entry.official_code):
        label = "Official code" + (f" {index + 1}" if len(entry.official_code) > 1 else "")
        links.append(f"[{label}]({md_url(url)})")
    if entry.zotero and not entry.zotero.deleted:
        links.append(f"[Open in Zotero]({md_url(entry.zotero.select_uri)})")
        links.append(f"[Zotero web]({md_url(entry.zotero.web_uri)})")
    return links


def _complexity_section(entry: Entry, context: SiteContext, plot_path: str | None) -> str:
    lines = ["## Complexity", ""]
    complexity = entry.complexity
    if complexity is None:
        return "\n".join([*lines, "No complexity is recorded for this entry."])
    measured = _measured(context, entry.id)
    header = "| | time | memory |"
    rows = [
        header,
        "|---|---|---|",
        f"| claimed by the paper | `{complexity.time}` | `{complexity.memory}` |",
    ]
    time_growth, memory_growth = _growth(complexity.time), _growth(complexity.memory)
    rows.append(
        "| growth in n (claimed) | "
        f"{growth_text(time_growth) if time_growth else '—'} | "
        f"{growth_text(memory_growth) if memory_growth else '—'} |"
    )
    survey = entry.survey
    if survey is not None:
        printed = re.sub(r"\s+", "", survey.complexity.replace("N", "n")).lower()
        ours = re.sub(r"\s+", "", complexity.time).lower()
        if printed != ours:
            symbol = "N" if re.search(r"\bN\b", survey.complexity) else "n"
            survey_growth = _growth(survey.complexity, symbol)
            same = survey_growth is not None and survey_growth == time_growth
            remark = "same growth in n" if same else "differs from the paper"
            rows.append(
                f"| survey, Table 1 (row {survey.row}) | `{survey.complexity}` ({remark}) | — |"
            )
    for measurement, result in measured:
        exponents = result.get("exponents") or {}
        causal = " causal" if result.get("causal") else ""
        rows.append(
            f"| measured exponent, {md_text(measurement.label)}{causal} | "
            f"{_power(exponents.get('forward_s'))} forward, "
            f"{_power(exponents.get('forward_backward_s'))} forward + backward, "
            f"{_power(exponents.get('flops'))} FLOPs | "
            f"{_power(exponents.get('peak_bytes'))} peak bytes |"
        )
        relative = result.get("relative_to_dense") or {}
        if relative:
            rows.append(
                f"| at n = 4k relative to dense, {md_text(measurement.label)}{causal} | "
                f"{_number(relative.get('forward_s'))}× forward, "
                f"{_number(relative.get('forward_backward_s'))}× forward + backward | "
                f"{_number(relative.get('peak_bytes'))}× |"
            )
    lines += rows
    if complexity.symbols:
        lines += [
            "",
            "Symbols held fixed as n grows: "
            + "; ".join(
                f"`{name}`: {md_text(meaning)}"
                for name, meaning in sorted(complexity.symbols.items())
            )
            + ".",
        ]
    lines.append("")
    if not measured:
        lines.append(
            '!!! note "Not measured yet"\n    No measurement of this mechanism is in '
            "`catalog/measurements/` yet; `python -m tools.measure` produces one."
        )
    elif plot_path:
        lines.append(
            f"![Time and memory of {md_text(entry.name)} against n, beside dense]({plot_path})"
            "{ .atlas-plot }"
        )
        crossings = [
            f"{md_text(m.label)}: n ≈ {r['crossover_n']['forward_s']:.0f}"
            for m, r in measured
            if (r.get("crossover_n") or {}).get("forward_s") and not r.get("causal")
        ]
        if crossings:
            lines += ["", "Faster than dense (forward) from " + ", ".join(crossings) + "."]
    return "\n".join(lines)


def _paper_plot(entry: Entry, context: SiteContext) -> str | None:
    """Time and memory of the entry beside dense, from its first measurement file."""
    measured = _measured(context, entry.id)
    if not measured:
        return None
    measurement = measured[0][0]
    panels = []
    for figure, ylabel in (("forward_s", "forward time"), ("peak_bytes", "peak memory")):
        label, formatter = FIGURES[figure]
        series = []
        for index, causal in enumerate((False, True)):
            suffix = ":causal" if causal else ""
            points = measurement.points(entry.id + suffix, figure)
            if points:
                name = entry.name + (" (causal)" if causal else "")
                series.append(Series(name, points, PALETTE[index], dashed=causal))
                dense = measurement.points("dense" + suffix, figure)
                if dense:
                    series.append(
                        Series(
                            "dense" + (" (causal)" if causal else ""),
                            dense,
                            DENSE_COLOUR,
                            dashed=causal,
                        )
                    )
        panels.append((f"{label.capitalize()} ({measurement.label})", ylabel, formatter, series))
    return panels_svg(panels, label=f"{entry.name}: time and memory against n beside dense")


def _implementation_section(entry: Entry, context: SiteContext, page: str) -> str:
    lines = ["## Implementation", ""]
    info = context.mechanisms.get(entry.id)
    if info is None:
        lines.append(
            "Not implemented yet: the atlas has no reference implementation of this model so far."
        )
        return "\n".join(lines)
    lines += [
        f"`{info.module}`, a `{info.kind}` mechanism "
        f"({'supports' if info.supports_causal else 'no'} causal masking). "
        f"[Source]({md_url(context.source_link(info, page))})"
        + (f" at commit `{context.commit[:10]}`." if context.commit else "."),
        "",
    ]
    title = 'title="Usage"'
    if info.supports_causal:
        lines += [
            '=== "Bidirectional"',
            "",
            indent(fence(usage_snippet(info, causal=False), "python", title)),
            "",
            '=== "Causal"',
            "",
            indent(fence(usage_snippet(info, causal=True), "python", title)),
        ]
    else:
        lines.append(fence(usage_snippet(info, causal=False), "python", title))
    lines += ["", "### API", "", f"::: {info.module}", "    options:", "      heading_level: 4"]
    return "\n".join(lines)


def _cite_section(entry: Entry) -> str:
    csl = json.dumps([export.csl_item(entry)], indent=2, ensure_ascii=False)
    return "\n".join(
        [
            "## Cite",
            "",
            '???+ quote "Cite this paper"',
            "",
            '    === "BibTeX"',
            "",
            indent(fence(export.bibtex_entry(entry), "bibtex"), "        "),
            "",
            '    === "CSL-JSON"',
            "",
            indent(fence(csl, "json"), "        "),
        ]
    )


def paper_page(
    entry: Entry,
    catalog: Catalog,
    context: SiteContext,
    slugs: Mapping[str, str],
    plot_path: str | None,
) -> str:
    """The page of one catalog entry (``papers/<id>.md``)."""
    page = f"papers/{entry.id}.md"
    authors = ", ".join(
        f"[{md_text(name)}](../authors/index.md#{slugs[name]})" for name in entry.authors
    )
    parts = [
        front_matter(entry.name),
        f"# {md_text(entry.name)}",
        "",
        f"*{md_text(entry.title)}*{{ .atlas-paper-title }}",
        "",
        f"**Authors:** {authors}  ",
        f"**Venue:** {md_text(entry.venue)} · first public {entry.year}"
        + (" · *draft entry*" if entry.draft else ""),
        "",
        " · ".join(_links(entry)),
        "",
    ]
    if entry.taxonomy:
        parts += [" ".join(_badge(catalog, code, "../") for code in entry.taxonomy), ""]
    # Search matches words as typed: "nystrom" must find "Nyströmformer".
    plain = [ascii_fold(text) for text in (entry.name, entry.title) if ascii_fold(text) != text]
    if plain:
        parts += [f"Also written: {md_text(' · '.join(plain))}\n{{ .atlas-ascii }}", ""]
    if entry.summary:
        parts += ["## Summary", "", md_text(entry.summary), ""]
    if entry.kind == "model":
        parts += [_complexity_section(entry, context, plot_path), ""]
        parts += [
            "## Decoding",
            "",
            {
                True: "Supports causal, autoregressive decoding.",
                False: "Does not support causal, autoregressive decoding.",
                None: "Not recorded.",
            }[entry.decode]
            + (
                f" The survey's Table 1 says {'yes' if entry.survey.decode else 'no'}."
                if entry.survey is not None and entry.survey.decode != entry.decode
                else ""
            ),
            "",
            _implementation_section(entry, context, page),
            "",
        ]
    if entry.notes:
        parts += ["## Notes", "", md_text(entry.notes), ""]
    related = [catalog.entries[r] for r in entry.related if r in catalog.entries]
    if related:
        parts += ["## Related", ""]
        parts += [f"- [{md_text(r.name)}]({r.id}.md): {md_text(r.title)}" for r in related]
        parts.append("")
    parts += [_cite_section(entry), ""]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- index pages


def _taxonomy_diagram(catalog: Catalog, prefix: str) -> str:
    svg = taxonomy_svg(
        [(c.code, c.name) for c in catalog.taxonomy],
        [(e.id, e.name, e.taxonomy) for e in _models(catalog)],
        href=lambda id: f"{prefix}papers/{id}/",
        class_href=lambda code: f"{prefix}taxonomy/{code}/",
    )
    return f'<div class="atlas-diagram" id="taxonomy-diagram">\n{svg.strip()}\n</div>'


def home_include(catalog: Catalog, context: SiteContext) -> str:
    """The generated part of the home page: counts, the taxonomy diagram, how to cite."""
    models = _models(catalog)
    implemented = sum(1 for e in models if e.id in context.mechanisms)
    measured = sum(1 for e in models if _measured(context, e.id))
    survey = next((e for e in catalog.entries.values() if e.kind == "survey"), None)
    lines = [
        '<div class="atlas-counts" markdown>',
        "",
        f"- **{len(models)}** models in **{len(catalog.taxonomy)}** classes "
        "([papers](papers/index.md), [taxonomy](taxonomy/index.md))",
        f"- **{implemented}** reference implementations ([API](reference/index.md))",
        f"- **{measured}** measured ([benchmarks](benchmarks/index.md))",
        f"- **{len(author_slugs(catalog))}** authors ([index](authors/index.md))",
        "",
        "</div>",
        "",
        "## The taxonomy",
        "",
        "Each class of the survey, linked to the models it contains; a model may belong to "
        "several classes. Click a name to open its page.",
        "",
        _taxonomy_diagram(catalog, ""),
        "",
    ]
    if survey is not None:
        lines += [
            "## How to cite",
            "",
            f"Cite the survey the taxonomy comes from, {md_text(survey.title)} "
            f"([page](papers/{survey.id}.md)), and the papers you use (each page has a Cite "
            "box); the whole catalog is in the [downloads](downloads/index.md).",
            "",
            fence(export.bibtex_entry(survey), "bibtex"),
            "",
        ]
    return "\n".join(lines)


def papers_index(catalog: Catalog) -> str:
    """The list of every entry (``papers/index.md``).

    Examples:
        >>> from tools.catalog import load_catalog
        >>> page = papers_index(load_catalog())
        >>> page.splitlines()[0], "[Performer](performer.md)" in page
        ('# Papers', True)
    """
    rows = ["| model | paper | year | classes |", "|---|---|---|---|"]
    for entry in _by_name(catalog.entries.values()):
        classes = ", ".join(
            f"[{md_text(code)}](../taxonomy/{code}.md)" for code in entry.taxonomy
        ) or md_text(entry.kind)
        rows.append(
            f"| [{md_text(entry.name)}]({entry.id}.md) | {md_text(entry.title)} | {entry.year} "
            f"| {classes} |"
        )
    return "\n".join(
        ["# Papers", "", f"All {len(catalog.entries)} entries of the catalog.", "", *rows, ""]
    )


def taxonomy_index(catalog: Catalog) -> str:
    """The classes with the diagram (``taxonomy/index.md``)."""
    lines = [
        "# Taxonomy",
        "",
        "The classes of Tay et al.'s survey, by core technique.",
        "",
        _taxonomy_diagram(catalog, "../"),
        "",
    ]
    for c in catalog.taxonomy:
        count = sum(1 for e in _models(catalog) if c.code in e.taxonomy)
        lines += [
            f"## [{md_text(c.code)} · {md_text(c.name)}]({c.code}.md)",
            "",
            md_text(c.description),
            "",
            f"{count} models.",
            "",
        ]
    return "\n".join(lines)


def taxonomy_page(
    code: str, catalog: Catalog, context: SiteContext, plots: Iterable[str] = ()
) -> str:
    """A class's page: its description, its models, and their measured time when known."""
    c = catalog.taxonomy_class(code)
    measured: list[str] = []
    for measurement in context.measurements[:1]:
        name = f"{measurement.name}-{code}-forward_s.svg"
        if name in set(plots):
            measured = [
                "## Measured",
                "",
                f"![{md_text(c.name)}: forward time against n](../generated/benchmarks/{name})"
                "{ .atlas-plot }",
                "",
            ]
    members = _by_name(e for e in _models(catalog) if code in e.taxonomy)
    rows = ["| model | year | time | memory | also in |", "|---|---|---|---|---|"]
    for e in members:
        others = ", ".join(f"[{md_text(o)}]({o}.md)" for o in e.taxonomy if o != code) or "—"
        time = f"`{e.complexity.time}`" if e.complexity else "—"
        memory = f"`{e.complexity.memory}`" if e.complexity else "—"
        rows.append(
            f"| [{md_text(e.name)}](../papers/{e.id}.md) | {e.year} | {time} | {memory} "
            f"| {others} |"
        )
    return "\n".join(
        [
            front_matter(f"{c.code} · {c.name}"),
            f"# {md_text(c.code)} · {md_text(c.name)}",
            "",
            md_text(c.description),
            "",
            f"## Models ({len(members)})",
            "",
            *rows,
            "",
            *measured,
            "See how they compare in the [comparison table](../comparison/index.md) and the "
            "[benchmarks](../benchmarks/index.md).",
            "",
        ]
    )


def authors_index(catalog: Catalog) -> str:
    """Every author by family name, each with an anchor the paper pages link to.

    Examples:
        >>> from tools.catalog import load_catalog
        >>> "**Yi Tay**{ #yi-tay }" in authors_index(load_catalog())
        True
    """
    slugs = author_slugs(catalog)
    papers: dict[str, list[Entry]] = defaultdict(list)
    for entry in catalog.entries.values():
        for name in entry.authors:
            papers[name].append(entry)
    lines = ["# Authors", "", f"{len(slugs)} authors of the catalog's papers, by family name.", ""]
    letter = None
    for name in sorted(papers, key=_family_sort_key):
        initial = (_family_sort_key(name)[0][:1] or "?").upper()
        if initial != letter:
            lines += ["", f"## {initial}", ""]
            letter = initial
        works = ", ".join(
            f"[{md_text(e.name)}](../papers/{e.id}.md) ({e.year})"
            for e in sorted(papers[name], key=lambda e: (e.year, e.name))
        )
        lines.append(f"- **{md_text(name)}**{{ #{slugs[name]} }}: {works}")
    return "\n".join([*lines, ""])


def timeline_page(catalog: Catalog) -> str:
    """Every entry by the year it first became public (``timeline/index.md``)."""
    by_year: dict[int, list[Entry]] = defaultdict(list)
    for entry in catalog.entries.values():
        by_year[entry.year].append(entry)
    lines = ["# Timeline", "", "Every entry by the year it first became public.", ""]
    for year in sorted(by_year):
        lines += [f"## {year}", ""]
        for e in _by_name(by_year[year]):
            classes = " ".join(f"`{c}`" for c in e.taxonomy)
            lines.append(
                f"- [{md_text(e.name)}](../papers/{e.id}.md) · {md_text(e.venue)} {classes}"
            )
        lines.append("")
    return "\n".join(lines)


def comparison_page(catalog: Catalog, context: SiteContext) -> str:
    """The comparison of every model, sortable by clicking a header and filterable."""
    headers = [
        ("Model", ""),
        ("Class", ""),
        ("Year", "number"),
        ("Time<br>claimed", "number"),
        ("Memory<br>claimed", "number"),
        ("Time exp.<br>measured", "number"),
        ("Memory exp.<br>measured", "number"),
        ("Decode", ""),
        ("Time at 4k<br>/ dense", "number"),
        ("Memory at 4k<br>/ dense", "number"),
    ]
    head = "".join(
        f"<th{f' data-sort-method={chr(34)}{method}{chr(34)}' if method else ''}>{label}</th>"
        for label, method in headers
    )
    # Numeric columns sort on data-sort; a missing value sorts last.
    missing = "1e9"

    def numeric(value: Any, text: str) -> str:
        if isinstance(value, int | float):
            return f'<td data-sort="{value:g}">{html_text(text)}</td>'
        return f'<td data-sort="{missing}">—</td>'

    rows = []
    for e in _by_name(_models(catalog)):
        result = _primary(context, e.id) or {}
        exponents = result.get("exponents") or {}
        relative = result.get("relative_to_dense") or {}
        time_growth = _growth(e.complexity.time) if e.complexity else None
        memory_growth = _growth(e.complexity.memory) if e.complexity else None
        cells = [
            f'<td><a href="../papers/{e.id}/">{html_text(e.name)}</a></td>',
            f"<td>{html_text(' '.join(e.taxonomy))}</td>",
            f'<td data-sort="{e.year}">{e.year}</td>',
            numeric(
                time_growth.exponent + 0.01 * time_growth.log_power if time_growth else None,
                e.complexity.time if e.complexity else "",
            ),
            numeric(
                memory_growth.exponent + 0.01 * memory_growth.log_power if memory_growth else None,
                e.complexity.memory if e.complexity else "",
            ),
            numeric(exponents.get("forward_s"), _number(exponents.get("forward_s"))),
            numeric(exponents.get("peak_bytes"), _number(exponents.get("peak_bytes"))),
            f"<td>{_decode_text(e.decode)}</td>",
            numeric(relative.get("forward_s"), _number(relative.get("forward_s")) + "×"),
            numeric(relative.get("peak_bytes"), _number(relative.get("peak_bytes")) + "×"),
        ]
        rows.append(
            f'<tr data-classes="{html_text(" ".join(e.taxonomy))}">' + "".join(cells) + "</tr>"
        )
    options = "".join(
        f'<option value="{html_text(c.code)}">{html_text(c.code)} · {html_text(c.name)}</option>'
        for c in catalog.taxonomy
    )
    source = context.measurements[0].label if context.measurements else None
    measured_note = (
        f"Measured columns come from the {md_text(source)} run on the "
        "[benchmarks](../benchmarks/index.md) page."
        if source
        else "Measured columns are empty: no measurement is in the catalog yet."
    )
    return "\n".join(
        [
            # The table needs the full width: no navigation or table-of-contents columns.
            "---\nhide:\n  - navigation\n  - toc\n---",
            "# Comparison",
            "",
            "Every model of the catalog. Click a column header to sort; type to filter by name "
            "or class. Claimed complexities sort by their growth in n. " + measured_note,
            "",
            '<div class="atlas-filter">',
            '<input id="comparison-filter" type="search" placeholder="Filter models…" '
            'aria-label="Filter models">',
            '<select id="comparison-class" aria-label="Class">'
            f'<option value="">all classes</option>{options}</select>',
            "</div>",
            "",
            '<div class="atlas-table-wrapper">',
            '<table class="atlas-sortable" id="comparison-table">',
            f"<thead><tr>{head}</tr></thead>",
            "<tbody>",
            *rows,
            "</tbody>",
            "</table>",
            "</div>",
            "",
        ]
    )


def benchmark_plots(catalog: Catalog, context: SiteContext) -> dict[str, str]:
    """``{file name: svg}``: per measurement file, class and figure, every mechanism."""
    plots: dict[str, str] = {}
    for measurement in context.measurements:
        for c in catalog.taxonomy:
            members = [
                e
                for e in _by_name(_models(catalog))
                if c.code in e.taxonomy and measurement.result(e.id)
            ]
            if not members:
                continue
            for figure in ("forward_s", "peak_bytes", "flops"):
                label, formatter = FIGURES[figure]
                # Past the palette's colours, lines are dotted so that none look alike.
                series = [
                    Series(
                        e.name,
                        measurement.points(e.id, figure),
                        PALETTE[i % len(PALETTE)],
                        dotted=i >= len(PALETTE),
                    )
                    for i, e in enumerate(members)
                ]
                series.append(
                    Series("dense", measurement.points("dense", figure), DENSE_COLOUR, dashed=True)
                )
                plots[f"{measurement.name}-{c.code}-{figure}.svg"] = loglog_svg(
                    series, title=f"{c.name}: {label}", ylabel=label, y_format=formatter
                )
    return plots


def benchmarks_page(catalog: Catalog, context: SiteContext, plots: Iterable[str]) -> str:
    """Time, memory and FLOPs plots per family, and the run's machine and command."""
    lines = [
        "# Benchmarks",
        "",
        "Time, memory and FLOPs against the sequence length n for every measured mechanism, "
        "per family, beside exact attention (`dense`, dashed). Figures are measured by "
        "`python -m tools.measure` and committed to `catalog/measurements/`; the site only "
        "draws them.",
        "",
    ]
    if not context.measurements:
        lines += [
            '!!! note "Not measured yet"',
            "    No measurement is in `catalog/measurements/` yet. Run "
            "`python -m tools.measure` to produce one; the site draws it on the next build.",
            "",
        ]
        return "\n".join(lines)
    available = set(plots)
    for measurement in context.measurements:
        data = measurement.data
        setup = data.get("setup", {})
        machine = data.get("machine", {})
        rate = format_count(float(data.get("matmul_flop_rate") or 0))
        lines += [
            f"## {md_text(measurement.label)}",
            "",
            "| setting | value |",
            "|---|---|",
            f"| machine | {md_text(str(machine.get('processor', '—')))} |",
            f"| system | {md_text(str(machine.get('system', '—')))} |",
            f"| torch | {md_text(str(data.get('torch', '—')))} |",
            f"| setup | {md_text(', '.join(f'{k} {v}' for k, v in setup.items()))} |",
            f"| date | {md_text(str(data.get('date', '—')))} |",
            f"| dense matmul rate | {rate}FLOP/s |",
            "",
            "Command:",
            "",
            fence(str(data.get("command", "")), "bash"),
            "",
        ]
        for c in catalog.taxonomy:
            names = [
                f"{measurement.name}-{c.code}-{f}.svg" for f in ("forward_s", "peak_bytes", "flops")
            ]
            if not all(name in available for name in names):
                continue
            lines += [f"### {md_text(c.name)} ({md_text(c.code)})", ""]
            for name, tab in zip(names, ("Time", "Memory", "FLOPs"), strict=True):
                lines += [
                    f'=== "{tab}"',
                    "",
                    f"    ![{md_text(c.name)}: {tab.lower()} against n]"
                    f"(../generated/benchmarks/{name}){{ .atlas-plot }}",
                    "",
                ]
        rows = [
            "| mechanism | claimed time | fwd exp. | fwd+bwd exp. | memory exp. | FLOPs exp. "
            "| time at 4k / dense | fwd+bwd at 4k / dense | memory at 4k / dense "
            "| memory at 4k / n×n softmax | FLOP rate at 4k, % of matmul | crossover n |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for key, result in sorted(data.get("results", {}).items()):
            exponents = result.get("exponents") or {}
            relative = result.get("relative_to_dense") or {}
            crossover = (result.get("crossover_n") or {}).get("forward_s")
            id = str(result.get("id", key))
            name = (
                f"[{md_text(catalog.entries[id].name)}](../papers/{id}.md)"
                if id in catalog.entries
                else md_text(id)
            )
            claimed = (result.get("claimed") or {}).get("time")
            at_4k = next(
                (p for p in result.get("points", []) if p.get("n") == 4096 and "flops" in p), {}
            )
            fraction = at_4k.get("flop_rate_fraction")
            rows.append(
                f"| {name}{' (causal)' if result.get('causal') else ''} "
                f"| {f'`{claimed}`' if claimed else '—'} "
                f"| {_number(exponents.get('forward_s'))} "
                f"| {_number(exponents.get('forward_backward_s'))} "
                f"| {_number(exponents.get('peak_bytes'))} | {_number(exponents.get('flops'))} "
                f"| {_number(relative.get('forward_s'))} "
                f"| {_number(relative.get('forward_backward_s'))} "
                f"| {_number(relative.get('peak_bytes'))} "
                f"| {_number(result.get('memory_vs_materialised_softmax'))} "
                f"| {f'{100 * fraction:.1f}' if isinstance(fraction, int | float) else '—'} "
                f"| {f'{crossover:.0f}' if isinstance(crossover, int | float) else '—'} |"
            )
        lines += [
            "### Every mechanism",
            "",
            "Exponents are fitted on log–log over the three largest measured lengths. The FLOP "
            "rate is forward FLOPs per second as a share of the dense matrix-multiply rate above: "
            "how close the implementation runs to the hardware. Memory is compared with `dense`, "
            "whose fused CPU kernel never stores the n×n attention matrix (so exact attention "
            "already needs only O(n) memory there), and with that n×n matrix itself, which a "
            "textbook softmax materialises: an honest account of what each mechanism saves.",
            "",
            *rows,
            "",
        ]
    return "\n".join(lines)


def downloads_page(catalog: Catalog) -> str:
    """Links to the whole catalog as BibTeX, CSL-JSON and JSON (``downloads/index.md``)."""
    return "\n".join(
        [
            "# Downloads",
            "",
            f"The whole catalog ({len(catalog.entries)} entries), generated from "
            "`catalog/papers/` at each build:",
            "",
            "- [atlas.bib](atlas.bib): BibTeX, one record per paper under its stable citekey.",
            "- [atlas.csl.json](atlas.csl.json): CSL-JSON, for Zotero, Pandoc and citeproc.",
            "- [atlas.json](atlas.json): every field of every entry, as in the YAML.",
            "",
            "The same files come from the command line:",
            "",
            fence(
                "python -m tools.catalog export --format bibtex -o atlas.bib\n"
                "python -m tools.catalog export --format csljson -o atlas.csl.json\n"
                "python -m tools.catalog export --format json -o atlas.json",
                "bash",
            ),
            "",
        ]
    )


def reference_page(catalog: Catalog, context: SiteContext) -> str:
    """The API reference of ``implementations`` (``reference/index.md``)."""
    rows = ["| mechanism | kind | causal | module |", "|---|---|---|---|"]
    for id, info in sorted(context.mechanisms.items()):
        name = catalog.entries[id].name if id in catalog.entries else id
        rows.append(
            f"| [{md_text(name)}](../papers/{id}.md) | {info.kind} | "
            f"{'yes' if info.supports_causal else 'no'} | `{info.module}` |"
        )
    listing = rows if len(rows) > 2 else ["No catalog entry names an implementation yet."]
    return "\n".join(
        [
            "# API reference",
            "",
            "The `implementations` package: one module per mechanism, registered under its "
            "catalog id, built through one interface. Each mechanism's own API is documented on "
            "its paper's page.",
            "",
            fence(
                "import torch\nimport implementations\n\n"
                "print(implementations.available()[:3])\n"
                'layer = implementations.build("dense", dim=64, heads=4)\n'
                "assert layer(torch.randn(2, 10, 64)).shape == (2, 10, 64)\n",
                "python",
                'title="The interface"',
            ),
            "",
            "## Mechanisms",
            "",
            *listing,
            "",
            "## The registry",
            "",
            "::: implementations._registry",
            "",
            "## Exact attention (the reference)",
            "",
            "::: implementations.dense",
            "",
        ]
    )


# ----------------------------------------------------------------------------- all pages


def render_pages(catalog: Catalog, context: SiteContext) -> dict[str, str]:
    """Every generated file, ``{path relative to docs/: text}``."""
    slugs = author_slugs(catalog)
    files: dict[str, str] = {}
    for entry in catalog.entries.values():
        svg = _paper_plot(entry, context) if entry.kind == "model" else None
        plot = None
        if svg is not None:
            files[f"generated/plots/{entry.id}.svg"] = svg
            plot = f"../generated/plots/{entry.id}.svg"
        files[f"papers/{entry.id}.md"] = paper_page(entry, catalog, context, slugs, plot)
    files["papers/index.md"] = papers_index(catalog)
    plots = benchmark_plots(catalog, context)
    files["taxonomy/index.md"] = taxonomy_index(catalog)
    for c in catalog.taxonomy:
        files[f"taxonomy/{c.code}.md"] = taxonomy_page(c.code, catalog, context, plots)
    files["comparison/index.md"] = comparison_page(catalog, context)
    files["authors/index.md"] = authors_index(catalog)
    files["timeline/index.md"] = timeline_page(catalog)
    files.update({f"generated/benchmarks/{name}": svg for name, svg in plots.items()})
    files["benchmarks/index.md"] = benchmarks_page(catalog, context, plots)
    files["downloads/index.md"] = downloads_page(catalog)
    files["downloads/atlas.bib"] = export.render(catalog, "bibtex")
    files["downloads/atlas.csl.json"] = export.render(catalog, "csljson")
    files["downloads/atlas.json"] = export.render(catalog, "json")
    files["reference/index.md"] = reference_page(catalog, context)
    files["generated/home.inc"] = home_include(catalog, context)
    return files
