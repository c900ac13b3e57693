"""Find every reference to the atlas in a folder of Markdown notes, and optionally link it.

What counts as a reference, and how each kind is classified:

* ``wikilink`` ``[[Performer]]``, ``[[Big Bird|BigBird]]``, ``[[Nyströmformer#Results]]``:
  *resolved* when the target names an entry (name, alias, title, id, citekey, or the
  file name of its literature note), a taxonomy class (``[[fixed_patterns]]``) or an
  author of an entry (``[[Yi Tay]]``); *dangling* when it names nothing but is a near
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
reference. ``fix`` rewrites resolvable wikilinks, mentions and ``impl:`` references into
Markdown links to the site pages and changes no other byte; citekeys, Zotero links and
site links already point somewhere and are left as they are, as are wikilinks to notes
that exist in the vault (they work there) and anything in front matter or a managed block.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from tools import project
from tools.atlas_links import paper_page_url, source_location, taxonomy_page_url
from tools.atlas_names import NameIndex, name_key
from tools.catalog import Catalog, Entry
from tools.notes_filenames import literature_note_name
from tools.notes_markdown import (
    LineIndex,
    ManagedBlockError,
    Span,
    code_spans,
    comment_spans,
    front_matter_span,
    inside,
    managed_blocks,
)
from tools.notes_vault import link_targets, read_note, vault_notes

RESOLVED, DANGLING, IGNORED = "resolved", "dangling", "ignored"

_WIKILINK = re.compile(
    r"(?P<embed>!?)\[\[(?P<target>[^\[\]\n|#^]*)(?P<anchor>[#^][^\[\]\n|]*)?"
    r"(?:\|(?P<alias>[^\[\]\n]*))?\]\]"
)
_MARKDOWN_LINK = re.compile(
    r"!?\[(?P<text>(?:[^\[\]\n]|\[[^\[\]\n]*\])*)\](?:\((?P<dest>[^)\n]*)\)|\[[^\]\n]*\])"
)
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]\n]+\]:[ \t]*\S+[^\n]*$", re.MULTILINE)
_URL = re.compile(r"(?:https?|zotero|obsidian|file)://[^\s<>()\[\]]+")
_CITEKEY = re.compile(r"(?<![\w.+\-@/:])@(?P<key>[A-Za-z0-9_][\w:.#$%&+?~/-]*)")
_CITEKEY_SHAPE = re.compile(r"^[A-Za-z][A-Za-z-]*\d{4}[A-Za-z0-9_-]*$")
_IMPL = re.compile(r"(?<![\w@/:.-])impl:(?P<id>[a-z0-9]+(?:-[a-z0-9]+)*)(?![\w-])")
_ZOTERO_SELECT = re.compile(
    r"zotero://select/(?:(?P<library>groups/\d+|users/\d+|library)/)?items/"
    r"(?P<item>@[\w:.-]+|(?:\d+_)?[A-Z0-9]{8})"
)
_ZOTERO_WEB = re.compile(
    r"https?://(?:www\.)?zotero\.org/(?P<library>(?:groups|users)/\d+)(?:/[^/\s)\]]+)?"
    r"/items/(?P<item>[A-Z0-9]{8})"
)
# A near miss of an entry's name is a typo (dangling); a farther one a topic (ignored).
_NEAR_MISS_RATIO = 0.85
_NEAR_MISS_LENGTH = 2


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

    def describe(self, root: Path | None = None) -> str:
        """``file:line:column: status kind `text` -> target (detail)``."""
        shown = self.path
        if root is not None:
            try:
                shown = root / self.path.relative_to(root)
            except ValueError:
                pass
        arrow = f" -> {self.target}" if self.target else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{shown}:{self.line}:{self.column}: {self.status} {self.kind} {self.text}{arrow}{detail}"


@dataclass
class Resolver:
    """Everything a check needs to know about the catalog and the vault."""

    catalog: Catalog
    names: NameIndex
    vault_targets: set[str] = field(default_factory=set)
    site: str = field(default_factory=project.site_url)

    @classmethod
    def build(cls, catalog: Catalog, vault: Path | None = None) -> Resolver:
        note_names = [
            (literature_note_name(entry.year, entry.title).removesuffix(".md"), entry.id)
            for entry in catalog.entries.values()
        ]
        return cls(
            catalog=catalog,
            names=NameIndex.build(catalog, extra=note_names),
            vault_targets=link_targets(vault) if vault else set(),
        )

    # -- one resolver per kind; each returns (status, target, detail)

    def wikilink(self, target: str) -> tuple[str, str | None, str]:
        name = target.strip().rsplit("/", 1)[-1].removesuffix(".md").rstrip("\\").strip()
        if not name:
            return IGNORED, None, "a heading of the same note"
        ids = self.names.lookup(name)
        if len(ids) == 1:
            return RESOLVED, ids[0], self.catalog.entries[ids[0]].name
        if ids:
            return DANGLING, None, f"ambiguous: {', '.join(ids)}"
        code = self.names.lookup_class(name)
        if code:
            return RESOLVED, f"taxonomy:{code}", self.catalog.taxonomy_class(code).name
        wrote = self._authored(name)
        if wrote:
            return RESOLVED, f"author:{name}", f"author of {', '.join(wrote)}"
        if name.casefold() in self.vault_targets:
            return IGNORED, None, "a note of the vault"
        near = self._near_misses(name)
        if near:
            return DANGLING, None, "not in the atlas; closest: " + ", ".join(near)
        return IGNORED, None, "not an atlas name (a topic or another note)"

    def _authored(self, name: str) -> list[str]:
        key = name_key(name)
        return sorted(
            entry.id
            for entry in self.catalog.entries.values()
            if any(name_key(author) == key for author in entry.authors)
        )

    def _near_misses(self, name: str) -> list[str]:
        key = name_key(name)
        near = []
        for candidate in difflib.get_close_matches(key, list(self.names.by_key), 3, _NEAR_MISS_RATIO):
            if abs(len(candidate) - len(key)) <= _NEAR_MISS_LENGTH:
                near += sorted(self.names.by_key[candidate])
        return list(dict.fromkeys(near))

    def citekey(self, key: str, bracketed: bool) -> tuple[str, str | None, str]:
        if key.startswith("impl:"):
            return self.impl(key.removeprefix("impl:"))
        for entry in self.catalog.entries.values():
            if entry.citekey == key:
                return RESOLVED, entry.id, entry.name
        if bracketed or _CITEKEY_SHAPE.match(key):
            close = difflib.get_close_matches(
                key, [e.citekey for e in self.catalog.entries.values()], 3, 0.7
            )
            hint = f"; closest: {', '.join(close)}" if close else ""
            return DANGLING, None, f"no entry has this citekey{hint}"
        return IGNORED, None, "not a citekey (a handle or a mention)"

    def impl(self, id: str) -> tuple[str, str | None, str]:
        entry = self.catalog.entries.get(id)
        if entry is None:
            close = difflib.get_close_matches(id, list(self.catalog.entries), 3, 0.5)
            hint = f"; closest: {', '.join(close)}" if close else ""
            return DANGLING, None, f"no catalog entry {id!r}{hint}"
        if source_location(entry) is None:
            return DANGLING, id, "the entry has no implementation"
        return RESOLVED, id, entry.name

    def zotero(self, library: str | None, item: str) -> tuple[str, str | None, str]:
        if item.startswith("@"):
            return self.citekey(item[1:], bracketed=True)
        key = item.split("_")[-1]
        for entry in self.catalog.entries.values():
            link = entry.zotero
            if link is None or link.key != key:
                continue
            same_library = (
                library is None
                or library == link.library
                or (library == "library" and link.library.startswith("users/"))
            )
            if same_library:
                if link.deleted:
                    return DANGLING, entry.id, "the item was deleted in Zotero"
                return RESOLVED, entry.id, entry.name
        return (
            DANGLING,
            None,
            "no catalog entry has this Zotero item (the Zotero sync fills the zotero fields)",
        )

    def site_link(self, section: str, slug: str) -> tuple[str, str | None, str]:
        if section == "papers":
            entry = self.catalog.entries.get(slug)
            if entry:
                return RESOLVED, slug, entry.name
            return DANGLING, None, f"no catalog entry {slug!r}"
        if any(c.code == slug for c in self.catalog.taxonomy):
            return RESOLVED, f"taxonomy:{slug}", self.catalog.taxonomy_class(slug).name
        return DANGLING, None, f"no taxonomy class {slug!r}"

    def page_of(self, target: str) -> str:
        if target.startswith("taxonomy:"):
            return taxonomy_page_url(target.removeprefix("taxonomy:"), self.site)
        return paper_page_url(target, self.site)

    def entry(self, id: str) -> Entry:
        return self.catalog.entries[id]


def _bracketed(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` sits inside ``[...]`` on its line (a Pandoc citation)."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    before = text[line_start:start]
    after = text[end:line_end]
    opened = before.rfind("[") > before.rfind("]")
    closes = after.find("]") >= 0 and (after.find("[") < 0 or after.find("]") < after.find("["))
    return opened and closes


def _markdown_link(text: str, label: str, url: str) -> str:
    escaped = label.replace("[", "\\[").replace("]", "\\]")
    return f"[{escaped}]({url})"


@dataclass
class _Scan:
    """The regions of one note that decide where references are looked for and fixed."""

    text: str
    excluded: list[Span]  # code and comments: no references at all
    managed: list[Span]  # managed blocks: no mentions, no fixes
    front_matter: list[Span]  # no mentions, no fixes
    linked: list[Span] = field(default_factory=list)  # Markdown links, URLs: no mentions

    @classmethod
    def of(cls, text: str) -> _Scan:
        code = code_spans(text)
        excluded = sorted(code + comment_spans(text, code))
        try:
            managed = [(block.start, block.end) for block in managed_blocks(text)]
        except ManagedBlockError:
            managed = []
        front = front_matter_span(text)
        return cls(text, excluded, managed, [front] if front else [])

    def fixable(self, start: int, end: int) -> bool:
        return not inside(self.managed, start, end) and not inside(self.front_matter, start, end)


def find_references(
    path: Path, text: str, resolver: Resolver, *, mentions: bool = True
) -> list[Reference]:
    """Every reference to the atlas in one note, in the order they appear."""
    scan = _Scan.of(text)
    lines = LineIndex(text)
    found: list[Reference] = []

    def add(start: int, end: int, kind: str, result: tuple[str, str | None, str], fix=None):
        line, column = lines.position(start)
        status, target, detail = result
        found.append(
            Reference(path, line, column, start, end, kind, text[start:end], status, target, detail, fix)
        )

    def free(match: re.Match[str]) -> bool:
        return not inside(scan.excluded, match.start(), match.end())

    for match in filter(free, _WIKILINK.finditer(text)):
        start, end = match.span()
        if match["embed"]:
            add(start, end, "embed", (IGNORED, None, "an embedded file"))
            continue
        result = resolver.wikilink(match["target"])
        status, target, _ = result
        fix = None
        name = match["target"].strip()
        exists_in_vault = name.rsplit("/", 1)[-1].casefold() in resolver.vault_targets
        if (
            status == RESOLVED
            and target
            and not target.startswith("author:")
            and not exists_in_vault
            and scan.fixable(start, end)
        ):
            label = (match["alias"] or name).strip().rstrip("\\").strip()
            fix = _markdown_link(text, label, resolver.page_of(target))
        add(start, end, "wikilink", result, fix)

    for match in filter(free, _MARKDOWN_LINK.finditer(text)):
        scan.linked.append(match.span())
    for match in filter(free, _LINK_DEFINITION.finditer(text)):
        scan.linked.append(match.span())
    for match in filter(free, _URL.finditer(text)):
        scan.linked.append(match.span())
        url = match.group(0)
        site_match = re.match(
            rf"{re.escape(resolver.site)}(?P<section>papers|taxonomy)/(?P<slug>[^/\s#?]+)/?", url
        )
        if site_match:
            add(
                match.start(),
                match.start() + site_match.end(),
                "site",
                resolver.site_link(site_match["section"], site_match["slug"]),
            )
            continue
        zotero = _ZOTERO_SELECT.match(url) or _ZOTERO_WEB.match(url)
        if zotero:
            add(
                match.start(),
                match.start() + zotero.end(),
                "zotero",
                resolver.zotero(zotero["library"], zotero["item"]),
            )
    scan.linked.sort()

    for match in filter(free, _CITEKEY.finditer(text)):
        key = match["key"].rstrip(".:#$%&+?~/-")
        if not key or inside(scan.linked, match.start()):
            continue
        start, end = match.start(), match.start() + 1 + len(key)
        add(start, end, "citekey", resolver.citekey(key, _bracketed(text, start, end)))

    for match in filter(free, _IMPL.finditer(text)):
        start, end = match.span()
        if inside(scan.linked, start, end) and not _in_link_text(text, scan.linked, start):
            continue  # part of a URL
        result = resolver.impl(match["id"])
        fix = None
        if result[0] == RESOLVED and scan.fixable(start, end) and not inside(scan.linked, start):
            fix = _markdown_link(text, match.group(0), resolver.page_of(match["id"]))
        add(start, end, "impl", result, fix)

    if mentions:
        occupied = sorted(
            scan.excluded
            + scan.managed
            + scan.front_matter
            + scan.linked
            + [(ref.start, ref.end) for ref in found]
        )
        for match in resolver.names.mention_pattern().finditer(text):
            start, end = match.span()
            if inside(occupied, start, end):
                continue
            id = resolver.names.mention_id(match.group(0))
            if id is None:
                continue
            entry = resolver.entry(id)
            fix = _markdown_link(text, match.group(0), resolver.page_of(id))
            add(start, end, "mention", (RESOLVED, id, entry.name), fix)

    return sorted(found, key=lambda ref: ref.start)


def _in_link_text(text: str, linked: list[Span], offset: int) -> bool:
    """Whether ``offset`` is in the text part ``[...]`` of a Markdown link (not its URL)."""
    for start, end in linked:
        if start <= offset < end and text[start] in "[!":
            close = text.find("](", start)
            return close > offset
    return False


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
            unreadable.append(f"{path}: not UTF-8 text; skipped")
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
