"""The command as people run it: the file, ``-m tools.sync_zotero`` and ``-m tools.zotero``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.zotero.zotero_fake_server import FakeZotero
from tests.zotero.zotero_test_data import GROUP_ID, ROOT, SENTINEL_KEY, snapshot


def command(form: str) -> list[str]:
    if form == "script":
        return [sys.executable, str(ROOT / "tools" / "sync_zotero.py")]
    if form == "package":
        return [sys.executable, "-m", "tools.zotero"]
    return [sys.executable, "-m", "tools.sync_zotero"]


def run_cli(form: str, catalog_dir: Path, server: FakeZotero, *options: str, key=SENTINEL_KEY):
    env = {name: value for name, value in os.environ.items() if name != "ZOTERO_API_KEY"}
    env["ZOTERO_API_KEY"] = key
    env["HTTP_PROXY"] = env["HTTPS_PROXY"] = "http://127.0.0.1:9"  # must not catch loopback
    arguments = ["--catalog", str(catalog_dir), "--api-url", server.url, "--timeout", "2"]
    arguments += ["--library-type", "group", "--library-id", str(GROUP_ID), *options]
    return subprocess.run(
        [*command(form), *arguments],
        cwd=ROOT if form == "module" else Path("/"),  # the installed project works from anywhere
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("form", ["script", "module", "package"])
def test_command_forms(form: str, catalog_dir: Path, server: FakeZotero) -> None:
    done = run_cli(form, catalog_dir, server, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "would update linformer" in done.stdout
    assert "dry run, nothing written; summary: updated 7" in done.stdout
    assert SENTINEL_KEY not in done.stdout + done.stderr


def test_cli_error_is_one_line_without_the_key(catalog_dir: Path, server: FakeZotero) -> None:
    before = snapshot(catalog_dir)
    wrong = "wrong-key-" + SENTINEL_KEY[-6:]
    done = run_cli("module", catalog_dir, server, key=wrong)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: access denied (HTTP 403)")
    assert len(done.stderr.strip().splitlines()) == 1
    assert wrong not in done.stderr
    assert snapshot(catalog_dir) == before


def test_cli_usage_errors(catalog_dir: Path) -> None:
    done = subprocess.run(
        [*command("module"), "--catalog", str(catalog_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "give --library-type and --library-id" in done.stderr
