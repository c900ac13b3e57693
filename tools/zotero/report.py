"""What a sync prints: the changes entry by entry and field by field, then the summary.

Every line goes through a :class:`Console`, which redacts the API key from it and writes
out control characters (a title's escape sequence is shown, never obeyed by the terminal).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from tools.catalog.console import printable
from tools.zotero.errors import redact
from tools.zotero.mapping import MappedItem
from tools.zotero.sync import SyncReport


class Console:
    """Prints to stdout and stderr, never letting a secret or a control character through."""

    def __init__(self, secrets: list[str | None], out: TextIO | None = None) -> None:
        self.secrets = [secret for secret in secrets if secret]
        self._out = out

    def _shown(self, line: str) -> str:
        return printable(redact(line, self.secrets))

    def say(self, line: str = "") -> None:
        print(self._shown(line), file=self._out or sys.stdout)

    def warn(self, line: str) -> None:
        print(self._shown(line), file=sys.stderr)


def show(value: Any) -> str:
    """A field value for the change list.

    Examples:
        >>> show(None), show("Reformer"), show(["Yi Tay"]), show(2020)
        ('(absent)', '"Reformer"', '["Yi Tay"]', '2020')
    """
    return "(absent)" if value is None else json.dumps(value, ensure_ascii=False)


def _title(item: MappedItem) -> str:
    title = item.fields.get("title", "(untitled)")
    return title if len(title) <= 70 else title[:67] + "..."


def _kept(name: str, value: Any) -> str:
    """A kept field for the report: scalars with their value, lists by their length.

    Examples:
        >>> _kept("venue", "TACL 2021"), _kept("authors", ["Aurko Roy", "Ashish Vaswani"])
        ('venue "TACL 2021"', 'authors (2 names)')
    """
    return f"{name} ({len(value)} names)" if isinstance(value, list) else f"{name} {show(value)}"


def print_report(report: SyncReport, console: Console, dry_run: bool, root: Path) -> None:
    """The changes entry by entry and field by field, then what needs a person."""
    would = "would " if dry_run else ""
    for flagged in report.deleted:
        console.say(f"{would}flag {flagged.entry_id}: Zotero item {flagged.reason} (entry kept)")
        for change in flagged.changes:
            console.say(f"    {change.field}: {show(change.old)} -> {show(change.new)}")
    for updated in report.updated:
        match = updated.match
        console.say(
            f"{would}update {match.entry_id} (from {match.item.label}, matched by {match.how}):"
        )
        for change in updated.changes:
            console.say(f"    {change.field}: {show(change.old)} -> {show(change.new)}")
        if updated.kept:
            kept = ", ".join(_kept(name, value) for name, value in updated.kept)
            console.say(f"    kept (the item is its arXiv preprint): {kept}")
    for created in report.created:
        path = created.path
        shown = path.relative_to(root.parent) if path.is_relative_to(root.parent) else path
        console.say(f"{would}create draft {created.entry_id} ({shown}) from {created.item.label}")
    for unmatched in report.unmatched:
        console.say(
            f"unmatched {unmatched.item.label} {_title(unmatched.item)!r}: {unmatched.reason}"
        )
    for conflict in report.conflicts:
        console.say(f"conflict {conflict.item.label} {_title(conflict.item)!r}: {conflict.reason}")
    for shadowed in report.shadowed:
        console.say(
            f"other version {shadowed.item.label} of {shadowed.entry_id}: "
            f"the entry is linked to {shadowed.linked} (kept)"
        )
    for failed in report.failed:
        console.say(f"not updated {failed.entry_id}: {failed.reason}")
    for warning in report.warnings:
        console.say(f"warning: {warning}")
    if report.unmatched and not any(u.reason.startswith("cannot") for u in report.unmatched):
        console.say("(use --add-new to create draft entries for unmatched items)")
