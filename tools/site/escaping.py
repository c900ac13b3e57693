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
# Characters that Markdown, its extensions (arithmatex's $, tables' |) or HTML would
# interpret; they are written as character references, which render as themselves.
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]{}<>&$|#!~^:=+-]")
_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def md_text(text: str) -> str:
    """Escape catalog text for Markdown: it renders exactly as written, never as markup.

    Line breaks are kept; blank lines separate paragraphs as in the YAML.
    """
    return _MARKDOWN_SPECIAL.sub(
        lambda m: _ENTITIES.get(m.group(0), f"&#{ord(m.group(0))};"), text.strip()
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


def md_url(url: str) -> Markup:
    """A URL made safe for a Markdown link target (no spaces, parentheses or quotes).

    Examples:
        >>> md_url("https://x.org/a b(c)")
        Markup('https://x.org/a%20b%28c%29')
    """
    return Markup(quote(url, safe=":/?#@!$&*+,;=%~-._"))


def code_span(text: str) -> Markup:
    """Inline code: rendered literally by Markdown, so not escaped (``O(n^2)``)."""
    return Markup(f"`{text}`")


def python_name(text: str) -> Markup:
    """A dotted Python name (``::: implementations.performer``), checked to be nothing else.

    Examples:
        >>> python_name("implementations.big_bird")
        Markup('implementations.big_bird')
    """
    if not re.fullmatch(r"[A-Za-z_][\w.]*", text):
        raise ValueError(f"not a Python name: {text!r}")
    return Markup(text)


def front_matter(title: str) -> Markup:
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
    return Markup(f"---\ntitle: {json.dumps(safe, ensure_ascii=False)}\n---\n")


def fence(code: str, language: str, attributes: str = "") -> Markup:
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
