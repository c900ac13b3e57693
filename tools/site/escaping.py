"""Escaping, and the template environment that makes it the default.

Every page is a Jinja2 template (``tools/site/templates/``). In a Markdown template
(``*.md.j2``) every ``{{ value }}`` goes through :func:`md_text`; in an HTML fragment
(``*.html.j2``) Jinja's autoescape is on and values go through :func:`html_text`. Text
from the catalog or from Zotero is therefore escaped unless a template says otherwise,
and the only way to say otherwise is a :class:`~markupsafe.Markup` value: markup that
our own code built (a link target by :func:`md_url`, a code span, a fence, an SVG).

Examples:
    >>> md_text("A <b>*bold*</b> $x$ & [link](y)")
    'A &lt;b&gt;&#42;bold&#42;&lt;/b&gt; &#36;x&#36; &amp; &#91;link&#93;(y)'
    >>> render_string("# {{ name }} ([page]({{ id|link }}.md))", name="A_b", id="a-b")
    '# A&#95;b ([page](a-b.md))'
    >>> render_string("<td>{{ name }}</td>", html=True, name="<i>")
    '<td>&lt;i&gt;</td>'
"""

from __future__ import annotations

import json
import re
from functools import cache
from html import escape
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup

from tools.site.context import number, power

TEMPLATES = Path(__file__).parent / "templates"
# Characters that Markdown, its extensions (arithmatex's $, tables' |, details' ?) or HTML
# would interpret; they are written as character references, which render as themselves.
# Every snippets line (--8<--) needs "8<", so an escaped "<" alone disarms it.
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]{}<>&$|#!?~^:=+-]")
_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
# Block syntax is read at the start of a line, after any indentation (indented code,
# "1." lists, "///" blocks, and whatever an extension may add): after the escaping above,
# a line's indentation is dropped and its first non-word character (after any digits) is
# written as a reference too; "&" there already starts one of ours.
_LINE_START = re.compile(r"^[ \t]*(\d*)([^\w\s&])?", re.MULTILINE)
# What Markdown reads as a line break (it turns \r\n and a lone \r into \n).
_LINE_BREAK = re.compile(r"\r\n?")
# The snippets preprocessor reads every line of a page, inside code blocks too: an include
# (--8<-- "file"), a block marker (--8<--) or, anywhere in a line, a section marker
# (--8<-- [start:x]). These mirror pymdownx.snippets' own patterns. A ";" before the marker
# is its documented escape, which it removes when the page is rendered.
_SNIPPET_LINE = re.compile(
    r"""^(?P<space>[ \t]*);*(?:-+8<-+[ \t]+(?:"(?:\\"|[^"\n\r])+?"|'(?:\\'|[^'\n\r])+?')"""
    r"(?![ \t])|-+8<-+(?![ \t]))\r?$"
)
_SNIPPET_SECTION = re.compile(
    r"(?i)^.*?(?<!;)(?!(?<=-)-)(?P<marker>;*-+8<-+[ \t]+\[[ \t]*(?:start|end)[ \t]*:"
    r"[ \t]*[a-z][-_0-9a-z]*[ \t]*\])"
)


def _snippet_escaped(line: str) -> str:
    """``line`` with the snippets escape if the snippets extension would act on it."""
    match = _SNIPPET_LINE.match(line) or _SNIPPET_SECTION.match(line)
    if match is None:
        return line
    at = match.end("space") if "space" in match.groupdict() else match.start("marker")
    return line[:at] + ";" + line[at:]


def _reference(char: str) -> str:
    return _ENTITIES.get(char, f"&#{ord(char)};")


def _line_start(match: re.Match[str]) -> str:
    digits, char = match.group(1), match.group(2)
    return digits + (_reference(char) if char else "")


def md_text(text: str) -> str:
    """Escape catalog text for Markdown: it renders exactly as written, never as markup.

    Line breaks are kept; blank lines separate paragraphs as in the YAML. No line can
    start block syntax of Markdown or of an extension, nor be a snippets line.

    Examples:
        >>> print(md_text('1. item\\n    code\\n??? note\\n--8<-- "index.md"'))
        1&#46; item
        code
        &#63;&#63;&#63; note
        &#45;&#45;8&lt;&#45;&#45; "index.md"
    """
    escaped = _MARKDOWN_SPECIAL.sub(
        lambda m: _reference(m.group(0)), _LINE_BREAK.sub("\n", text).strip()
    )
    return _LINE_START.sub(_line_start, escaped)


def html_text(text: str) -> str:
    """Escape catalog text for raw HTML (element content or a quoted attribute).

    ``$`` and ``\\`` are written as references too, so the math renderer never sees
    them as delimiters.

    Line breaks are written as references too: the text is one line of the page, so no
    line syntax (a snippets line, a block marker) can start in it.

    Examples:
        >>> html_text('<script>"x"</script> $y$')
        '&lt;script&gt;&quot;x&quot;&lt;/script&gt; &#36;y&#36;'
        >>> html_text("a\\r\\n--8<--")
        'a&#13;&#10;--8&lt;--'
    """
    escaped = escape(text, quote=True).replace("$", "&#36;").replace("\\", "&#92;")
    return escaped.replace("\r", "&#13;").replace("\n", "&#10;")


def md_url(url: str) -> Markup:
    """A URL made safe for a Markdown link target (no spaces, parentheses or quotes).

    Examples:
        >>> md_url("https://x.org/a b(c)")
        Markup('https://x.org/a%20b%28c%29')
    """
    return Markup(quote(url, safe=":/?#@!$&*+,;=%~-._"))


def code_span(text: str) -> Markup:
    """Inline code: rendered literally by Markdown, so not escaped (``O(n^2)``).

    It stays on one line (a line break would let its next line be read as syntax) and
    its backtick run is longer than any inside it.

    Examples:
        >>> code_span("O(n^2)")
        Markup('`O(n^2)`')
        >>> code_span("a ` b\\n--8<--")
        Markup('`` a ` b --8<-- ``')
    """
    text = " ".join(_LINE_BREAK.sub("\n", text).split("\n"))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    if longest:
        # Spaces keep a backtick at either end out of the delimiters; Markdown strips them.
        text = f" {text} "
    return Markup(f"{ticks}{text}{ticks}")


def python_name(text: str) -> Markup:
    """A dotted Python name (``::: implementations.performer``), checked to be nothing else.

    Examples:
        >>> python_name("implementations.big_bird")
        Markup('implementations.big_bird')
    """
    if not re.fullmatch(r"[A-Za-z_][\w.]*", text):
        raise ValueError(f"not a Python name: {text!r}")
    return Markup(text)


def front_matter(
    title: str,
    *,
    boost: float | None = None,
    search_exclude: bool = False,
    keywords: list[str] | None = None,
) -> Markup:
    """The page's YAML front matter, setting its title safely.

    Themes print ``page.title`` unescaped in places (the header, and ``<title>`` after
    ``striptags``, which turns ``&lt;`` back into ``<``), so the title is plain text
    with angle brackets replaced by look-alikes and the rest HTML-escaped. ``boost``
    ranks the page higher in the site's search; ``search_exclude`` leaves it out.
    ``keywords`` become the page's ``tags``, which the search weighs above any text (ids,
    citekeys, aliases); the search shows them as text, never as markup.

    Examples:
        >>> print(front_matter('A </title> & "B"'), end="")
        ---
        title: "A ‹/title› &amp; &quot;B&quot;"
        ---
        >>> print(front_matter("P", boost=2), end="")
        ---
        title: "P"
        search:
          boost: 2
        ---
        >>> print(front_matter("P", keywords=["a<b>", "O(n)"]), end="")
        ---
        title: "P"
        tags: ["a‹b›", "O(n)"]
        ---
    """
    safe = escape(title.replace("<", "‹").replace(">", "›"), quote=True)
    lines = [f"title: {json.dumps(safe, ensure_ascii=False)}"]
    if keywords:
        plain = [k.replace("<", "‹").replace(">", "›") for k in keywords]
        lines.append(f"tags: {json.dumps(plain, ensure_ascii=False)}")
    if boost is not None or search_exclude:
        lines.append("search:")
        lines += [f"  boost: {float(boost):g}"] if boost is not None else []
        lines += ["  exclude: true"] if search_exclude else []
    return Markup("---\n" + "\n".join(lines) + "\n---\n")


def fence(code: str, language: str, attributes: str = "") -> Markup:
    """A fenced code block whose fence is longer than any backtick run in ``code``.

    A snippets line in ``code`` gets the snippets escape (``;``), which the snippets
    extension removes: the block shows the line as written, and includes nothing.

    Examples:
        >>> print(fence("a ``` b", "text"))
        ````text
        a ``` b
        ````
        >>> print(fence('--8<-- "index.md"\\nx --8<-- [start:a]', "bash"))
        ```bash
        ;--8<-- "index.md"
        x ;--8<-- [start:a]
        ```
    """
    code = "\n".join(_snippet_escaped(line) for line in _LINE_BREAK.sub("\n", code).split("\n"))
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    ticks = "`" * max(3, longest + 1)
    head = f"{ticks}{language}" + (f" {attributes}" if attributes else "")
    return Markup(f"{head}\n{code.rstrip()}\n{ticks}")


def indent(text: str, prefix: str = "    ") -> Markup:
    """Indent every non-empty line of our own markup (an admonition's or a tab's body)."""
    lines = str(text).splitlines()
    return Markup("\n".join(prefix + line if line.strip() else "" for line in lines))


@pass_eval_context
def _escape(context: EvalContext, value: object) -> object:
    """Every ``{{ value }}``: escaped for the template's language unless it is markup."""
    if hasattr(value, "__html__"):
        return value
    if context.autoescape:
        # Autoescape would leave Markup alone; the extra $ and \ references matter.
        return Markup(html_text(str(value)))
    return Markup(md_text(str(value)))


def _md_filter(value: object) -> Markup:
    """``|md``: escape now, e.g. before joining escaped text with our own markup."""
    return value if isinstance(value, Markup) else Markup(md_text(str(value)))


@cache
def environment() -> Environment:
    """The templates' environment: Markdown escaping by default, autoescape for HTML."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        finalize=_escape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters.update(
        md=_md_filter,
        link=md_url,
        code=code_span,
        python_name=python_name,
        fence=fence,
        indent_block=indent,
        # Figures formatted as our own markup: never escaped.
        number=number,
        power=power,
    )
    return env


def render(template: str, **data: object) -> str:
    """The text of ``template`` (a file of ``tools/site/templates/``) for ``data``."""
    return environment().get_template(template).render(**data)


def render_string(source: str, *, html: bool = False, **data: object) -> str:
    """A template given as text (``html``: with autoescape), for examples and tests."""
    env = environment().overlay(autoescape=html)
    return env.from_string(source).render(**data)
