"""Find every reference to the atlas in a folder of Markdown notes, and optionally link it.

What counts as a reference, and how each kind is classified:

* ``wikilink`` ``[[Performer]]``, ``[[Big Bird|BigBird]]``, ``[[Nyströmformer#Results]]``:
  *resolved* when the target names an entry (name, alias, title, id, citekey, or the
  file name of its literature note), a taxonomy class (``[[fixed_patterns]]``) or an
  author of an entry (``[[Yi Tay]]``; every spelling of a person, ``[[Liam Fedus]]`` and
  ``[[William Fedus]]``, is one ``author:`` target); *dangling* when it names nothing but is a near
  miss of an entry's name (``[[Perfomer]]``) or is ambiguous; otherwise *ignored*: a
  topic (``[[nlp_survey]]``) or another note is not a reference to the atlas.
* ``embed`` ``![[figure.png]]``: always ignored (a file of the vault).
* ``mention``: a model's name in prose (``Reformer``, ``Set Transformers``, ``Sinkhorn
  Sorting Network``), matched case-sensitively; always resolved. Not looked for inside
  links, URLs, front matter or the managed blocks of exported notes.
* ``citekey`` ``@key``, ``[@key]``, ``[see @key, p. 3]``: resolved when the key is an
  entry's citekey (or ``@impl:<id>``); an unknown key in brackets is dangling, an
  unknown bare ``@word`` is dangling only when it looks like a citekey (``name2020word``),
  since prose has handles and mentions too.
* ``zotero`` ``zotero://select/...`` and ``https://www.zotero.org/.../items/KEY``:
  matched through the entries' ``zotero`` fields (filled by the Zotero sync); an item
  no entry has, or one deleted in Zotero, is dangling.
* ``impl`` ``impl:<id>``: resolved when the entry has an implementation.
* ``site`` links to ``<site>/papers/<id>/`` or ``<site>/taxonomy/<code>/``.

Nothing inside code (fenced or indented blocks, inline code) or HTML comments is a
reference, nor is anything in math or an escaped ``\\[[...]]``. ``fix`` rewrites
resolvable wikilinks, mentions and ``impl:`` references into Markdown links to the site
pages and changes no other byte; citekeys, Zotero links and site links already point
somewhere and are left as they are, as are wikilinks to notes that exist in the vault
(they work there) and anything in front matter, a managed block, a heading, an HTML tag,
a footnote label or an abbreviation definition (see :mod:`tools.notes.protect`).

Examples:
    >>> from tools.catalog import load_catalog
    >>> resolver = Resolver.build(load_catalog())
    >>> text = "See [[Big Bird]], `Reformer` and Reformer."
    >>> refs = find_references(Path("note.md"), text, resolver)
    >>> [(ref.kind, ref.text, ref.target) for ref in refs]
    [('wikilink', '[[Big Bird]]', 'big-bird'), ('mention', 'Reformer', 'reformer')]
    >>> apply_fixes(text, refs).replace(resolver.site, "/")
    'See [Big Bird](/papers/big-bird/), `Reformer` and [Reformer](/papers/reformer/).'
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from tools.catalog import Catalog
from tools.notes.markdown import (
    LineIndex,
    ManagedBlockError,
    Span,
    code_spans,
    comment_spans,
    front_matter_span,
    inside,
    managed_blocks,
    merge_spans,
)
from tools.notes.protect import math_spans, protected_spans
from tools.notes.resolve import IGNORED, RESOLVED, Resolution, Resolver
from tools.notes.vault import read_note, vault_notes, why_unread

_WIKILINK = re.compile(
    r"(?<!\\)(?P<embed>!?)\[\[(?P<target>[^\[\]\n|#^]*)(?P<anchor>[#^][^\[\]\n|]*)?"
    r"(?:\|(?P<alias>[^\[\]\n]*))?\]\]"
)
_MARKDOWN_LINK = re.compile(
    r"!?\[(?P<text>(?:[^\[\]\n]|\[[^\[\]\n]*\])*)\](?:\((?P<dest>[^)\n]*)\)|\[[^\]\n]*\])"
)
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]\n]+\]:[ \t]*\S+[^\n]*$", re.MULTILINE)
_BRACKETS = re.compile(r"\[[^\[\]\n]*\]")
_URL = re.compile(r"(?:https?|zotero|obsidian|file)://[^\s<>()\[\]]+")
_CITEKEY = re.compile(r"(?<![\w.+\-@/:])@(?P<key>[A-Za-z0-9_][\w:.#$%&+?~/-]*)")
_IMPL = re.compile(r"(?<![\w@/:.-])impl:(?P<id>[a-z0-9]+(?:-[a-z0-9]+)*)(?![\w-])")
_ZOTERO_SELECT = re.compile(
    r"zotero://select/(?:(?P<library>groups/\d+|users/\d+|library)/)?items/"
    r"(?P<item>@[\w:.-]+|(?:\d+_)?[A-Z0-9]{8})"
)
_ZOTERO_WEB = re.compile(
    r"https?://(?:www\.)?zotero\.org/(?P<library>(?:groups|users)/\d+)(?:/[^/\s)\]]+)?"
    r"/items/(?P<item>[A-Z0-9]{8})"
)


@dataclass(frozen=True)
class Reference:
    """One reference found in a note, and what it resolved to."""

    path: Path
    line: int
    column: int
    start: int
    end: int
    kind: str  # wikilink, embed, mention, citekey, zotero, impl, site
    text: str  # exactly as written
    status: str  # resolved, dangling, ignored
    target: str | None = None  # an entry id, "taxonomy:<code>" or "author:<name>"
    detail: str = ""
    replacement: str | None = None  # what --fix writes instead, when it rewrites it

    def describe(self) -> str:
        """``file:line:column: status kind text -> target (detail)``."""
        arrow = f" -> {self.target}" if self.target else ""
        detail = f" ({self.detail})" if self.detail else ""
        where = f"{self.path}:{self.line}:{self.column}"
        return f"{where}: {self.status} {self.kind} {self.text}{arrow}{detail}"


def _markdown_link(label: str, url: str) -> str:
    """A Markdown link; brackets in the label are escaped so the link stays one link.

    Examples:
        >>> print(_markdown_link("a [b]", "https://x/"))
        [a \\[b\\]](https://x/)
    """
    escaped = label.replace("[", "\\[").replace("]", "\\]")
    return f"[{escaped}]({url})"


@dataclass
class _Scan:
    """The regions of one note that decide where references are looked for and fixed."""

    text: str
    excluded: list[Span]  # code and comments: no references at all
    managed: list[Span]  # managed blocks: no mentions, no fixes
    front_matter: list[Span]  # no mentions, no fixes
    protected: list[Span]  # headings, HTML tags, footnotes...: no fixes (mentions reported)
    brackets: list[Span]  # innermost [...] on one line: where a citekey is a Pandoc citation
    wikilinks: list[Span] = field(default_factory=list)  # no citekeys, impl: or mentions
    links: list[Span] = field(default_factory=list)  # Markdown links and URLs, unmerged
    link_texts: list[Span] = field(default_factory=list)  # the [text] parts of Markdown links

    @classmethod
    def of(cls, text: str) -> _Scan:
        code = code_spans(text)
        excluded = merge_spans(code + comment_spans(text, code) + math_spans(text, code))
        try:
            managed = [(block.start, block.end) for block in managed_blocks(text)]
        except ManagedBlockError:  # export reports broken markers; here the note is all prose
            managed = []
        front = front_matter_span(text)
        brackets = [match.span() for match in _BRACKETS.finditer(text)]
        protected = protected_spans(text, code)
        return cls(text, excluded, managed, [front] if front else [], protected, brackets)

    def free(self, match: re.Match[str]) -> bool:
        """Whether a match lies outside code and comments."""
        return not inside(self.excluded, match.start(), match.end())

    def fixable(self, start: int, end: int) -> bool:
        return not any(
            inside(spans, start, end) for spans in (self.managed, self.front_matter, self.protected)
        )


class _Finder:
    """Finds the references of one note, kind by kind, into ``found``."""

    def __init__(self, path: Path, text: str, resolver: Resolver) -> None:
        self.path = path
        self.text = text
        self.resolver = resolver
        self.scan = _Scan.of(text)
        self.lines = LineIndex(text)
        self.found: list[Reference] = []

    def add(
        self, start: int, end: int, kind: str, result: Resolution, fix: str | None = None
    ) -> None:
        line, column = self.lines.position(start)
        status, target, detail = result
        text = self.text[start:end]
        self.found.append(
            Reference(self.path, line, column, start, end, kind, text, status, target, detail, fix)
        )

    def wikilinks(self) -> None:
        for match in filter(self.scan.free, _WIKILINK.finditer(self.text)):
            start, end = match.span()
            self.scan.wikilinks.append((start, end))
            if match["embed"]:
                self.add(start, end, "embed", (IGNORED, None, "an embedded file"))
                continue
            result = self.resolver.wikilink(match["target"])
            status, target, _ = result
            name = match["target"].strip()
            # A link to a note of the vault works there: it is reported, never rewritten.
            in_vault = name.rsplit("/", 1)[-1].casefold() in self.resolver.vault_targets
            fix = None
            if (
                status == RESOLVED
                and target
                and not target.startswith("author:")
                and not in_vault
                and self.scan.fixable(start, end)
            ):
                label = (match["alias"] or name).strip().rstrip("\\").strip()
                fix = _markdown_link(label, self.resolver.page_of(target))
            self.add(start, end, "wikilink", result, fix)

    def links_and_urls(self) -> None:
        for pattern in (_MARKDOWN_LINK, _LINK_DEFINITION):
            for match in filter(self.scan.free, pattern.finditer(self.text)):
                self.scan.links.append(match.span())
                if pattern is _MARKDOWN_LINK:
                    self.scan.link_texts.append(match.span("text"))
        site = re.compile(
            rf"{re.escape(self.resolver.site)}(?P<section>papers|taxonomy)/(?P<slug>[^/\s#?]+)/?"
        )
        for match in filter(self.scan.free, _URL.finditer(self.text)):
            self.scan.links.append(match.span())
            url, start = match.group(0), match.start()
            page = site.match(url)
            if page:
                result = self.resolver.site_link(page["section"], page["slug"])
                self.add(start, start + page.end(), "site", result)
                continue
            zotero = _ZOTERO_SELECT.match(url) or _ZOTERO_WEB.match(url)
            if zotero:
                result = self.resolver.zotero(zotero["library"], zotero["item"])
                self.add(start, start + zotero.end(), "zotero", result)

    def citekeys(self) -> None:
        taken = merge_spans(self.scan.links + self.scan.wikilinks)
        for match in filter(self.scan.free, _CITEKEY.finditer(self.text)):
            key = match["key"].rstrip(".:#$%&+?~/-")  # "see @key." ends before the dot
            if not key or inside(taken, match.start()):
                continue
            start, end = match.start(), match.start() + 1 + len(key)
            bracketed = inside(self.scan.brackets, start, end)
            self.add(start, end, "citekey", self.resolver.citekey(key, bracketed))

    def impl_references(self) -> None:
        linked = merge_spans(self.scan.links)
        link_texts = merge_spans(self.scan.link_texts)
        for match in filter(self.scan.free, _IMPL.finditer(self.text)):
            start, end = match.span()
            if inside(self.scan.wikilinks, start, end):
                continue
            in_link = inside(linked, start, end)
            if in_link and not inside(link_texts, start, end):
                continue  # part of a URL
            result = self.resolver.impl(match["id"])
            fix = None
            if result[0] == RESOLVED and not in_link and self.scan.fixable(start, end):
                fix = _markdown_link(match.group(0), self.resolver.page_of(match["id"]))
            self.add(start, end, "impl", result, fix)

    def mentions(self) -> None:
        scan = self.scan
        occupied = merge_spans(
            scan.excluded
            + scan.managed
            + scan.front_matter
            + scan.links
            + scan.wikilinks
            + [(ref.start, ref.end) for ref in self.found]
        )
        names = self.resolver.names
        ids: dict[str, str | None] = {}  # a long note names the same few models many times
        for match in names.mention_pattern().finditer(self.text):
            start, end = match.span()
            if match.group(0) not in ids:
                ids[match.group(0)] = names.mention_id(match.group(0))
            id = ids[match.group(0)]
            if id is None or inside(occupied, start, end):
                continue
            fix = None
            if self.scan.fixable(start, end):
                fix = _markdown_link(match.group(0), self.resolver.page_of(id))
            self.add(start, end, "mention", (RESOLVED, id, self.resolver.entry(id).name), fix)


def find_references(
    path: Path, text: str, resolver: Resolver, *, mentions: bool = True
) -> list[Reference]:
    """Every reference to the atlas in one note, in the order they appear."""
    finder = _Finder(path, text, resolver)
    finder.wikilinks()
    finder.links_and_urls()
    finder.citekeys()
    finder.impl_references()
    if mentions:
        finder.mentions()
    return sorted(finder.found, key=lambda ref: ref.start)


def apply_fixes(text: str, references: list[Reference]) -> str:
    """``text`` with every reference that has a replacement rewritten; nothing else changes.

    Examples:
        >>> ref = Reference(Path("n.md"), 1, 4, 3, 16, "wikilink", "[[Performer]]",
        ...                 "resolved", "performer", "", "[Performer](u)")
        >>> apply_fixes("Hi [[Performer]]!", [ref])
        'Hi [Performer](u)!'
    """
    parts: list[str] = []
    position = 0
    for ref in sorted(references, key=lambda r: r.start):
        if ref.replacement is None or ref.start < position:
            continue
        parts.append(text[position : ref.start])
        parts.append(ref.replacement)
        position = ref.end
    parts.append(text[position:])
    return "".join(parts)


@dataclass
class NoteReport:
    """The references of one note, its text, and the text after fixing."""

    path: Path
    references: list[Reference]
    text: str
    fixed: str


def check_vault(
    catalog: Catalog, vault: Path, *, mentions: bool = True
) -> tuple[list[NoteReport], list[str]]:
    """Check every note of ``vault``; returns the reports and the notes that could not be read."""
    resolver = Resolver.build(catalog, vault)
    reports: list[NoteReport] = []
    unreadable: list[str] = []
    for path in vault_notes(vault):
        text = read_note(path)
        if text is None:
            unreadable.append(f"{path}: {why_unread(path)}")
            continue
        references = find_references(path, text, resolver, mentions=mentions)
        reports.append(NoteReport(path, references, text, apply_fixes(text, references)))
    return reports, unreadable


def unified_diff(report: NoteReport) -> str:
    """The fix of one note as a unified diff (empty when nothing would change)."""
    return "".join(
        difflib.unified_diff(
            report.text.splitlines(keepends=True),
            report.fixed.splitlines(keepends=True),
            fromfile=str(report.path),
            tofile=f"{report.path} (fixed)",
        )
    )
