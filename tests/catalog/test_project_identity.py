"""``tools.catalog.project`` and CITATION.cff: the project's identity, stated once, consistent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tools.catalog import project

CFF = project.ROOT / "CITATION.cff"


def load_cff() -> dict:
    return YAML(typ="safe", pure=True).load(CFF.read_text(encoding="utf-8"))


def test_mkdocs_config_with_python_tags_is_read() -> None:
    text = (
        "site_name: x\nsite_url: https://example.org/atlas\n"
        "repo_url: https://github.com/o/r/\n"
        "markdown_extensions:\n  - pymdownx.emoji:\n"
        "      emoji_index: !!python/name:material.extensions.emoji.twemoji\n"
    )
    config = project.read_mkdocs_config(text)
    assert project.urls_from_config(config) == (
        "https://example.org/atlas/",
        "https://github.com/o/r",
    )


def test_defaults_when_mkdocs_names_no_addresses() -> None:
    assert project.urls_from_config(project.read_mkdocs_config("site_name: x\n")) == (
        project.DEFAULT_SITE_URL,
        project.DEFAULT_REPO_URL,
    )


def test_version_and_commit() -> None:
    assert project.version() == project.pyproject_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", project.version())
    if not (project.ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    assert re.fullmatch(r"[0-9a-f]{40}", project.commit())
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", project.commit_date())


def test_not_a_checkout_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(project, "ROOT", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    with pytest.raises(project.NotACheckoutError, match="not a git checkout"):
        project._git("rev-parse", "HEAD")


def test_citation_cff_has_the_required_keys() -> None:
    cff = load_cff()
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "version", "repository-code", "license"):
        assert cff.get(key), key
    assert cff["authors"] == [{"name": "Efficient Transformers Atlas contributors"}]
    assert cff["license"] == "MIT"
    survey = cff["references"][0]
    assert survey["title"] == "Efficient Transformers: A Survey"
    assert survey["doi"] == "10.1145/3530811"
    assert [author["family-names"] for author in survey["authors"]] == [
        "Tay", "Dehghani", "Bahri", "Metzler",
    ]  # fmt: skip


def test_citation_cff_agrees_with_the_project() -> None:
    cff = load_cff()
    assert str(cff["version"]) == project.pyproject_version(), (
        "CITATION.cff's version must equal pyproject.toml's; bump both together"
    )
    assert cff["repository-code"] == project.repo_url(), "repo_url of mkdocs.yml changed?"
    assert cff["url"] == project.site_url(), "site_url of mkdocs.yml changed?"
