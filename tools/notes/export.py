"""Export one literature note per catalog entry into an Obsidian-style vault.

A note has the shape of the vault's own notes (title; Zotero links; authors as
``[[wikilinks]]`` to the person's one canonical name, ``[[William Fedus|Liam Fedus]]``
where the byline spells it otherwise; topics; venue and year tags; then sections to
fill in). What the atlas knows sits in a *managed block*::

    <!-- atlas:begin id=performer | ... -->
    ...
    <!-- atlas:end -->

Re-exporting rewrites that block only; every other byte of the note (what the reader
wrote, its line endings) is kept. A note is found again by the id in its marker, so
it may be renamed or moved within the vault. An existing note without a block (one
the reader wrote before exporting) is left alone unless ``adopt`` is asked for: then
the block is put on its top (after a byte order mark, which stays first).

No catalog text can end or open a block: inside it, ``<!--`` and ``-->`` are written as
``&lt;!--`` and ``--&gt;``, every field is one line and no line opens a code fence (which
would hide the end marker). A note is written through a symlink only to a target inside
the vault; a read-only note, or one over the size limit, is skipped with its reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tools.catalog import Catalog, Entry, project, write_all
from tools.catalog.addresses import (
    paper_page_url,
    pinned_source_url,
    source_location,
    taxonomy_page_url,
)
from tools.catalog.filenames import literature_note_name
from tools.catalog.people import People
from tools.notes.markdown import ManagedBlockError, managed_blocks, newline_of
from tools.notes.vault import read_note, unwritable, vault_notes, why_unread

BEGIN_MARKER = (
    "<!-- atlas:begin id={id} | written by `python -m tools.notes export`: "
    "edits between these markers are replaced on re-export; write below -->"
)
END_MARKER = "<!-- atlas:end -->"
SEPARATOR = "---"
# The sections a reader fills in, as in the vault's own notes; written once, never again.
READER_SECTIONS = (
    "### Major Contributions\n- \n---\n"
    "### Secondary Contribution\n---\n"
    "### Limitations/Future Work\n---\n"
    "### Notes (Try to use backlinks)\n- \n"
)


def tag(text: str) -> str:
    """An Obsidian tag for ``text``: no spaces or punctuation other than ``_ - /``.

    Examples:
        >>> tag("ACM Computing Surveys")
        '#ACM_Computing_Surveys'
        >>> tag("arXiv")
        '#arXiv'
    """
    cleaned = re.sub(r"[^\w/-]+", "_", text, flags=re.UNICODE).strip("_")
    return "#" + (cleaned or "untagged")


def venue_name(venue: str) -> str:
    """The venue without its year, volume or "preprint": the part worth a tag.

    Examples:
        >>> venue_name("ICLR 2021")
        'ICLR'
        >>> venue_name("ACM Computing Surveys 55(6), 2022")
        'ACM Computing Surveys'
        >>> venue_name("arXiv preprint")
        'arXiv'
    """
    name = re.sub(r"\bpreprint\b", "", venue, flags=re.IGNORECASE)
    name = re.sub(r"\s*\d+\(\d+\)", "", name)  # volume(issue)
    name = re.sub(r",?\s*\b(19|20)\d{2}\b", "", name)
    return name.strip(" ,") or venue


def topic_link(text: str) -> str:
    """A topic wikilink in the vault's style (``[[nlp_survey]]``).

    Examples:
        >>> topic_link("Fixed Patterns")
        '[[fixed_patterns]]'
    """
    return "[[" + re.sub(r"[^\w]+", "_", text.casefold()).strip("_") + "]]"


def neutralise(line: str) -> str:
    """One line of catalog text made inert inside a managed block: no comment markers
    (which could end or open a block) and no code fence at its start (which would hide the
    end marker from :func:`tools.notes.markdown.managed_blocks`).

    Examples:
        >>> neutralise("<!-- atlas:end -->")
        '&lt;!-- atlas:end --&gt;'
        >>> neutralise("```python")
        '\\\\```python'
    """
    line = line.replace("<!--", "&lt;!--").replace("-->", "--&gt;")
    return "\\" + line if line.lstrip(" \t").startswith(("```", "~~~")) else line


def _one_line(text: str) -> str:
    return " ".join(text.split())


def render_block(entry: Entry, catalog: Catalog, commit: str) -> str:
    """The managed block of ``entry``'s note, with ``\\n`` line endings."""
    lines = _render_lines(entry, catalog, commit)
    # Between the markers only neutralised, single-line text: see neutralise().
    inner = [neutralise(_one_line(line)) for line in lines]
    return "\n".join([BEGIN_MARKER.format(id=entry.id), *inner, END_MARKER])


def author_link(name: str, people: People) -> str:
    """A wikilink to the person ``name`` spells, showing the byline's spelling.

    Every note links one person by one name (its note in the vault); a byline that
    spells it otherwise keeps its spelling as the link's text.

    Examples:
        >>> from tools.catalog.model import Person
        >>> people = People.build([Person(name="William Fedus", spellings=["Liam Fedus"])])
        >>> author_link("Liam Fedus", people), author_link("Nan Du", people)
        ('[[William Fedus|Liam Fedus]]', '[[Nan Du]]')
    """
    canonical = people.canonical(name)
    return f"[[{name}]]" if canonical == name else f"[[{canonical}|{name}]]"


def _render_lines(entry: Entry, catalog: Catalog, commit: str) -> list[str]:
    people = People.of(catalog)
    page = paper_page_url(entry.id)
    lines = [f"### {entry.title}", SEPARATOR]
    lines.append(f"- Atlas: [{entry.name}]({page})")
    if entry.zotero and not entry.zotero.deleted:
        lines.append(f"- [Zotero Select Link]({entry.zotero.select_uri})")
        lines.append(f"- [Zotero URI]({entry.zotero.web_uri})")
    lines.append("- Authors: " + " ".join(author_link(name, people) for name in entry.authors))
    topics = ["nlp_transformers", "nlp_survey" if entry.kind == "survey" else "efficient_attention"]
    classes = [catalog.taxonomy_class(code) for code in entry.taxonomy]
    lines.append(
        "- Topics: "
        + " ".join([f"[[{topic}]]" for topic in topics] + [topic_link(c.name) for c in classes])
    )
    lines.append(f"- Venue: {tag(venue_name(entry.venue))}")
    lines.append(f"- Year: #{entry.year}")
    lines.append(f"- Citekey: @{entry.citekey}")
    links = [f"[{entry.url}]({entry.url})"]
    if entry.doi:
        links.append(f"[doi:{entry.doi}](https://doi.org/{entry.doi})")
    lines.append("- Paper: " + " · ".join(links))
    if classes:
        lines.append(
            "- Taxonomy: "
            + ", ".join(f"[{c.name} ({c.code})]({taxonomy_page_url(c.code)})" for c in classes)
        )
    if entry.complexity:
        symbols = "; ".join(
            f"{name}: {_one_line(meaning)}" for name, meaning in entry.complexity.symbols.items()
        )
        where = f" (where {symbols})" if symbols else ""
        lines.append(
            f"- Complexity: time `{entry.complexity.time}`, memory `{entry.complexity.memory}`"
            + where
        )
    if entry.decode is not None:
        lines.append(f"- Causal decoding: {'yes' if entry.decode else 'no'}")
    lines.append(SEPARATOR)
    lines.append("### Implementation")
    location = source_location(entry)
    if location is None:
        lines.append("- No reference implementation in the atlas yet.")
        lines.append(f"- Site page: [{entry.name} on the atlas]({page})")
    else:
        source = pinned_source_url(location, commit)
        lines.append(
            f"- Source: [{location.path}{location.fragment}]({source}) "
            f"(class `{location.class_name}`, commit `{commit[:12]}`)"
        )
        lines.append(f"- Site page: [{entry.name} on the atlas]({page})")
        lines.append(
            f"- Cite as: impl:{entry.id} (full citation: `python -m tools.cite {entry.id}`)"
        )
    if entry.summary:
        lines += [SEPARATOR, "### Summary (atlas)", _one_line(entry.summary)]
    return lines


def render_new_note(block: str) -> str:
    """A whole new note: the managed block, then the sections the reader fills in."""
    return f"{block}\n{SEPARATOR}\n{READER_SECTIONS}"


def _with_newline(text: str, newline: str) -> str:
    return text.replace("\n", newline) if newline != "\n" else text


def replace_block(note: str, id: str, block: str) -> str:
    """``note`` with its managed block of ``id`` replaced by ``block``; all else kept.

    Raises:
        ManagedBlockError: the note's markers do not pair up, or it has no block ``id``.

    Examples:
        >>> note = "<!-- atlas:begin id=x -->\\nold\\n<!-- atlas:end -->\\nmine\\n"
        >>> replace_block(note, "x", "<!-- atlas:begin id=x -->\\nnew\\n<!-- atlas:end -->")
        '<!-- atlas:begin id=x -->\\nnew\\n<!-- atlas:end -->\\nmine\\n'
    """
    for found in managed_blocks(note):
        if found.id == id:
            block = _with_newline(block, newline_of(note))
            return note[: found.start] + block + note[found.end :]
    raise ManagedBlockError(f"no managed block of {id!r}")


@dataclass(frozen=True)
class Action:
    """What export does (or would do) to one note."""

    verb: str  # create, update, unchanged, adopt, skip
    path: Path
    id: str
    reason: str = ""


@dataclass
class ExportPlan:
    """The actions of one export and the files they write."""

    actions: list[Action]
    files: dict[Path, str]


def _existing_blocks(vault: Path) -> tuple[dict[str, list[Path]], list[Action]]:
    """Which notes hold a managed block of which id, and notes whose markers are broken."""
    by_id: dict[str, list[Path]] = {}
    broken: list[Action] = []
    for path in vault_notes(vault):
        text = read_note(path)
        if text is None and why_unread(path).startswith("larger"):
            broken.append(Action("skip", path, "", why_unread(path)))
        if text is None or "atlas:" not in text:
            continue
        try:
            blocks = managed_blocks(text)
        except ManagedBlockError as error:
            broken.append(Action("skip", path, "", f"markers do not pair up: {error}"))
            continue
        for block in blocks:
            by_id.setdefault(block.id, []).append(path)
    return by_id, broken


def name_of(entry: Entry) -> str:
    """The file name of ``entry``'s new note."""
    return literature_note_name(entry.year, entry.title)


def plan_export(catalog: Catalog, vault: Path, *, adopt: bool = False) -> ExportPlan:
    """Decide, for every entry, whether its note is created, updated, adopted or skipped."""
    commit = project.commit()
    by_id, actions = _existing_blocks(vault)
    broken = {action.path for action in actions}
    files: dict[Path, str] = {}
    # File names in the vault's top folder, where new notes go, compared as Windows and
    # macOS do (case-insensitively).
    taken = {path.name.casefold() for path in vault.iterdir()} if vault.is_dir() else set()
    for entry in sorted(catalog.entries.values(), key=lambda e: e.id):
        block = render_block(entry, catalog, commit)
        holders = by_id.get(entry.id, [])
        if len(holders) > 1:
            names = ", ".join(str(path) for path in holders)
            actions.append(Action("skip", holders[0], entry.id, f"several notes hold it: {names}"))
            continue
        refused = unwritable(vault, holders[0] if holders else vault / name_of(entry))
        if refused:
            path = holders[0] if holders else vault / name_of(entry)
            actions.append(Action("skip", path, entry.id, f"{refused}; not written"))
            continue
        if holders:
            path = holders[0]
            old = read_note(path) or ""
            new = replace_block(old, entry.id, block)
            verb = "unchanged" if new == old else "update"
            if new != old:
                files[path] = new
            actions.append(Action(verb, path, entry.id))
            continue
        name = name_of(entry)
        path = vault / name
        if path in broken:
            continue  # already reported: its markers do not pair up
        if path.exists():
            existing = read_note(path)
            if existing is None:
                actions.append(Action("skip", path, entry.id, "not UTF-8 text"))
            elif adopt and "atlas:begin" not in existing:
                newline = newline_of(existing)
                # A byte order mark belongs at the very start, before the block.
                bom = "\ufeff" if existing.startswith("\ufeff") else ""
                files[path] = bom + _with_newline(block + "\n", newline) + existing[len(bom) :]
                actions.append(Action("adopt", path, entry.id))
            else:
                reason = (
                    "holds the managed block of another entry"
                    if "atlas:begin" in existing
                    else "exists without a managed block (--adopt puts one on its top)"
                )
                actions.append(Action("skip", path, entry.id, reason))
            continue
        if name.casefold() in taken and not path.exists():
            # Another note differs only in case: on Windows and macOS it is the same file.
            path = vault / literature_note_name(entry.year, f"{entry.title} ({entry.id})")
        taken.add(path.name.casefold())
        files[path] = render_new_note(block)
        actions.append(Action("create", path, entry.id))
    return ExportPlan(actions, files)


def run_export(catalog: Catalog, vault: Path, *, dry_run: bool, adopt: bool) -> ExportPlan:
    """Plan the export and, unless ``dry_run``, write every changed note all or nothing."""
    plan = plan_export(catalog, vault, adopt=adopt)
    if not dry_run:
        write_all(plan.files)
    return plan
