"""The project's identity in one place: its addresses, its version and the current commit.

``site_url`` and ``repo_url`` are read from ``mkdocs.yml`` (the site's configuration is
where the project's addresses are set); the version from ``pyproject.toml``; the commit
from git. Citations, literature notes and the site take them from here, so that a
change of address is made once.

Examples:
    >>> site_url().endswith("/")
    True
    >>> version() == pyproject_version()
    True
"""

from __future__ import annotations

import subprocess
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor

from tools.catalog.paths import ROOT

MKDOCS_YML = ROOT / "mkdocs.yml"
PYPROJECT = ROOT / "pyproject.toml"
DISTRIBUTION = "efficient-transformers-atlas"
# Used until mkdocs.yml names the addresses (and by copies of the tools without it).
DEFAULT_SITE_URL = "https://efficient-transformers-atlas.github.io/atlas/"
DEFAULT_REPO_URL = "https://github.com/efficient-transformers-atlas/atlas"


class NotACheckoutError(RuntimeError):
    """The project is not a git checkout (or git is missing), so there is no commit."""


class _TolerantConstructor(SafeConstructor):
    """A safe YAML constructor that reads unknown tags (``!!python/name:...``) as None.

    mkdocs.yml may name Python objects through such tags; we only need plain keys.
    """

    def construct_undefined(self, node: Any) -> None:
        return None


_TolerantConstructor.add_constructor(None, _TolerantConstructor.construct_undefined)


def read_mkdocs_config(text: str) -> dict[str, Any]:
    """The top-level mapping of a ``mkdocs.yml`` text; unknown tags become None.

    Args:
        text: The YAML text.

    Returns:
        The mapping, or an empty dict when the text is not a mapping.

    Examples:
        >>> read_mkdocs_config("site_url: https://a.b/\\nx: !!python/name:pkg.func\\n")
        {'site_url': 'https://a.b/', 'x': None}
        >>> read_mkdocs_config("")
        {}
    """
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = _TolerantConstructor
    data = yaml.load(text)
    return dict(data) if isinstance(data, dict) else {}


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def urls_from_config(config: dict[str, Any]) -> tuple[str, str]:
    """(site_url, repo_url) from a parsed mkdocs config, with the project's defaults.

    The site URL always ends with ``/``; the repository URL never does.

    Examples:
        >>> urls_from_config({})
        ('https://efficient-transformers-atlas.github.io/atlas/', \
'https://github.com/efficient-transformers-atlas/atlas')
        >>> urls_from_config({"site_url": "https://x.org/atlas", "repo_url": "https://g/a/b/"})
        ('https://x.org/atlas/', 'https://g/a/b')
    """
    site = config.get("site_url")
    repo = config.get("repo_url")
    site = site.strip() if isinstance(site, str) and site.strip() else DEFAULT_SITE_URL
    repo = repo.strip() if isinstance(repo, str) and repo.strip() else DEFAULT_REPO_URL
    return _with_slash(site), repo.rstrip("/")


@cache  # read once per process: every page and note asks for it
def mkdocs_config() -> dict[str, Any]:
    """The parsed ``mkdocs.yml`` of the project (empty when there is none)."""
    text = MKDOCS_YML.read_text(encoding="utf-8") if MKDOCS_YML.exists() else ""
    return read_mkdocs_config(text)


def configured(key: str) -> str | None:
    """``key`` of ``mkdocs.yml`` when it is set to a non-empty string, else None.

    For callers that behave differently without a real address (the site may link a
    shipped copy of a source file when ``repo_url`` is not set).
    """
    value = mkdocs_config().get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _urls() -> tuple[str, str]:
    return urls_from_config(mkdocs_config())


def site_url() -> str:
    """The published site's root URL, ending with ``/``."""
    return _urls()[0]


def repo_url() -> str:
    """The repository's web URL (no trailing ``/``)."""
    return _urls()[1]


def pyproject_version(path: Path = PYPROJECT) -> str:
    """``project.version`` of a ``pyproject.toml``."""
    with path.open("rb") as stream:
        return str(tomllib.load(stream)["project"]["version"])


def version() -> str:
    """The project's version: ``pyproject.toml`` of this tree, else the installed metadata.

    The source tree wins because an editable install's metadata goes stale when the
    version is bumped without reinstalling.
    """
    if PYPROJECT.exists():
        return pyproject_version()
    return metadata.version(DISTRIBUTION)


def _git(*args: str) -> str:
    try:
        result = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise NotACheckoutError("git is not installed, so the current commit is unknown") from None
    if result.returncode != 0:
        raise NotACheckoutError(
            f"{ROOT} is not a git checkout (git {' '.join(args)}: {result.stderr.strip()}); "
            "citations pin a commit, so run this from a clone of the repository"
        )
    return result.stdout.strip()


def commit() -> str:
    """The full hash of the checked-out commit (``git rev-parse HEAD``).

    Raises:
        NotACheckoutError: not a git checkout, or git is missing.
    """
    return _git("rev-parse", "HEAD")


def commit_date() -> str:
    """The checked-out commit's date, ``YYYY-MM-DD``."""
    return _git("log", "-1", "--format=%cs", "HEAD")


def has_local_changes(relative_path: str) -> bool:
    """Whether ``relative_path`` differs from the checked-out commit.

    A pinned line range is only right for a file that is committed as it is.
    """
    return bool(_git("status", "--porcelain", "--", relative_path))
