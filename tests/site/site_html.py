"""Reading the built site's HTML with the standard library: links, ids, text, code blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

# Schemes that leave the site; they are not checked.
EXTERNAL = ("http", "https", "mailto", "zotero", "data", "javascript")


@dataclass
class PageFacts:
    """What one HTML file links to, which ids it defines, its visible text, its blocks."""

    links: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    text: list[str] = field(default_factory=list)
    python_blocks: int = 0


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.facts = PageFacts()
        self._hidden = 0  # inside <script> or <style>
        self._divs: list[bool] = []  # per open <div>: is it mkdocstrings' API documentation?

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name in ("href", "src"):
            if values.get(name):
                self.facts.links.append(values[name])
        for name in ("id", "name"):
            if values.get(name) and tag != "meta" and tag != "input":
                self.facts.ids.add(values[name])
        if tag in ("script", "style"):
            self._hidden += 1
        if tag == "div":
            classes = values.get("class", "").split()
            inside_api = any(self._divs) or "doc" in classes
            # Source listings and docstring examples of the API docs are not page examples.
            if not inside_api and ({"language-python", "language-py"} & set(classes)):
                self.facts.python_blocks += 1
            self._divs.append("doc" in classes)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden -= 1
        if tag == "div" and self._divs:
            self._divs.pop()

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.facts.text.append(data)


def read_page(path: Path) -> PageFacts:
    reader = _Reader()
    reader.feed(path.read_text(encoding="utf-8"))
    return reader.facts


def visible_text(path: Path) -> str:
    return "".join(read_page(path).text)


def page_html(site: Path, page: str) -> Path:
    """The HTML file MkDocs writes for a Markdown page (directory URLs)."""
    stem = page.removesuffix(".md")
    if stem == "index" or stem.endswith("/index"):
        return site / (stem + ".html")
    return site / stem / "index.html"


def broken_links(site: Path) -> list[str]:
    """Every internal link of every page that does not resolve to a file (and anchor)."""
    site = site.resolve()
    facts = {path: read_page(path) for path in site.rglob("*.html") if path.name != "404.html"}
    broken = []
    for path, page in facts.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme in EXTERNAL or parts.netloc:
                continue
            if not parts.path:
                target = path
            else:
                target = (path.parent / unquote(parts.path)).resolve()
                if link.startswith("/"):
                    broken.append(f"{path.relative_to(site)}: absolute link {link}")
                    continue
                if target.is_dir():
                    target = target / "index.html"
            if not target.is_file():
                broken.append(f"{path.relative_to(site)}: {link} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = facts[target].ids if target in facts else read_page(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{path.relative_to(site)}: {link} (no such anchor)")
    return sorted(set(broken))


def shown_examples(path: Path) -> list[str]:
    """The text of every ``>>>`` example a page shows (its highlighted ``<pre>`` blocks)."""
    import html
    import re

    found = []
    for block in re.findall(r"<pre[^>]*>(.*?)</pre>", path.read_text(encoding="utf-8"), re.S):
        text = html.unescape(re.sub(r"<[^>]+>", "", block))
        if any(line.lstrip().startswith(">>>") for line in text.splitlines()):
            found.append(text)
    return found
