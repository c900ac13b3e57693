"""Faults: every failure is one clear line, and the catalog and watermark stay byte-identical.

Each test first syncs once (so a watermark exists), then changes an item in Zotero so the
next run has something to write, then makes that run fail in one way.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.zotero.zotero_fake_server import FakeZotero
from tests.zotero.zotero_test_data import GROUP, LINFORMER, SENTINEL_KEY, snapshot
from tools.catalog import load_catalog
from tools.zotero.client import LibraryRef, ZoteroSource
from tools.zotero.errors import ZoteroError
from tools.zotero.retry import RetryPolicy

NEW_TITLE = "Linformer: Self-Attention in Linear Time"


@pytest.fixture
def pending_change(sync, server: FakeZotero, catalog_dir: Path) -> dict[str, bytes]:
    """A synced catalog with one change waiting in Zotero; returns the files before the fault."""
    assert sync().code == 0
    server.libraries[GROUP].edit(LINFORMER, title=NEW_TITLE)
    server.reset_log()
    return snapshot(catalog_dir)


def assert_failed_cleanly(run, catalog_dir: Path, before: dict[str, bytes], message: str) -> None:
    assert run.code == 1
    assert run.out == ""
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]
    assert "Traceback" not in run.err
    assert snapshot(catalog_dir) == before


FAULTS = {
    "500 on every try": (dict(kind="status", match="/items", status=500, times=99), "HTTP 500"),
    "503 on the deletions": (
        dict(kind="status", match="/deleted", status=503, times=99),
        "server error (HTTP 503) for the deleted items",
    ),
    "malformed JSON": (
        dict(kind="malformed", match="itemKey"),
        "malformed JSON in 1 changed items",
    ),
    "hanging response": (dict(kind="hang", times=99), "timed out after 0.5 s"),
    "dropped connection": (dict(kind="disconnect", times=99), "cannot reach the Zotero server"),
    "429 without Retry-After": (
        dict(kind="status", status=429, times=99),
        "rate-limited (HTTP 429)",
    ),
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_fault_leaves_catalog_and_watermark_untouched(
    fault: str, sync, server: FakeZotero, catalog_dir: Path, pending_change
) -> None:
    options, message = FAULTS[fault]
    server.fail(**options)
    assert_failed_cleanly(sync(), catalog_dir, pending_change, message)


def test_bad_key_is_403(sync, catalog_dir: Path, pending_change) -> None:
    run = sync(key="not-the-right-key")
    assert_failed_cleanly(run, catalog_dir, pending_change, "access denied (HTTP 403)")
    assert "ZOTERO_API_KEY" in run.err and "not-the-right-key" not in run.err


def test_missing_key_for_a_private_library_is_403(sync, catalog_dir, pending_change) -> None:
    assert_failed_cleanly(sync(key=None), catalog_dir, pending_change, "HTTP 403")


def test_unknown_library_is_404(sync, catalog_dir: Path, pending_change) -> None:
    run = sync("--library-id", "1")
    # A different library has its own watermark: the failure must not create it either.
    assert_failed_cleanly(run, catalog_dir, pending_change, "not found (HTTP 404): groups/1")


def test_unreachable_server(sync, catalog_dir: Path, pending_change) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = sync("--api-url", f"http://127.0.0.1:{port}")
    assert_failed_cleanly(run, catalog_dir, pending_change, "cannot reach the Zotero server")
    assert "(after 2 tries)" in run.err


def test_write_failure_changes_no_file(sync, catalog_dir: Path, pending_change) -> None:
    """The entry is staged first; staging the watermark fails; nothing is written.

    A folder where the watermark's staged copy must go makes the write fail for real.
    """
    watermark = catalog_dir / "zotero/web/groups-2480461.json"
    (watermark.parent / f".{watermark.name}.atlas-staged").mkdir(parents=True)
    run = sync()
    assert run.code == 1 and "Is a directory" in run.err
    (watermark.parent / f".{watermark.name}.atlas-staged").rmdir()
    assert snapshot(catalog_dir) == pending_change


def test_malformed_watermark_is_reported(sync, catalog_dir: Path, pending_change) -> None:
    watermark = catalog_dir / "zotero/web/groups-2480461.json"
    watermark.write_text("{not json", encoding="utf-8")
    before = snapshot(catalog_dir)
    run = sync()
    assert_failed_cleanly(run, catalog_dir, before, "malformed JSON")
    assert "delete the file" in run.err


# ----------------------------------------------------------------------------- recoveries


def test_transient_500_is_retried(sync, server: FakeZotero, catalog_dir: Path, pending_change):
    server.fail("status", match="itemKey", status=500)
    run = sync()
    assert run.code == 0, run.err
    assert load_catalog(catalog_dir).entries["linformer"].title == NEW_TITLE
    tries = [r for r in server.requests if r.param("itemKey")]
    assert len(tries) == 2
    # pyzotero keeps the parameters of a failed call; they must not leak into the retry.
    assert tries[0].params == tries[1].params


def test_503_retry_after_is_honoured(sync, server: FakeZotero, pending_change) -> None:
    server.fail("status", match="itemKey", status=503, headers={"Retry-After": "0.3"})
    run = sync()
    assert run.code == 0, run.err
    tries = [r for r in server.requests if r.param("itemKey")]
    assert tries[1].time - tries[0].time >= 0.3


def test_429_retry_after_is_honoured(sync, server: FakeZotero, pending_change) -> None:
    server.fail("status", match="itemKey", status=429, headers={"Retry-After": "0.3"})
    run = sync()
    assert run.code == 0, run.err
    tries = [r for r in server.requests if r.param("itemKey")]
    assert len(tries) == 2 and tries[1].time - tries[0].time >= 0.3


def test_backoff_header_slows_the_next_request(sync, server: FakeZotero, pending_change) -> None:
    server.fail("backoff", match="format=versions", headers={"Backoff": "0.4"})
    run = sync()
    assert run.code == 0, run.err
    versions, batch = server.requests[0], server.requests[1]
    assert batch.param("itemKey") and batch.time - versions.time >= 0.4


def test_one_hanging_response_is_retried(sync, server: FakeZotero, pending_change) -> None:
    server.fail("hang", match="itemKey")
    run = sync()
    assert run.code == 0, run.err
    assert "update linformer" in run.out


def test_key_never_leaks(sync, server: FakeZotero, catalog_dir: Path, pending_change) -> None:
    """The sentinel key is sent, yet found in no output, error or file, whatever happens."""
    outputs = []
    for fault in (
        dict(kind="status", status=500, times=99),
        dict(kind="malformed", match="itemKey"),
        dict(kind="status", status=403, times=99),
        dict(kind="hang", times=99),
    ):
        server.faults.clear()
        server.fail(**fault)
        run = sync()
        outputs += [run.out, run.err]
    server.faults.clear()
    run = sync("--add-new", "--dry-run")
    outputs += [run.out, run.err]
    run = sync("--add-new")
    outputs += [run.out, run.err]
    assert any(r.headers.get("authorization") == f"Bearer {SENTINEL_KEY}" for r in server.requests)
    for text in outputs:
        assert SENTINEL_KEY not in text
    for name, data in snapshot(catalog_dir).items():
        assert SENTINEL_KEY.encode() not in data, name


def test_key_is_redacted_from_error_messages() -> None:
    """Whatever a message quotes (here an endpoint with the key in it), the key is masked."""
    source = ZoteroSource(
        LibraryRef("group", 1),
        SENTINEL_KEY,
        endpoint=f"http://user:{SENTINEL_KEY}@127.0.0.1:1",
        policy=RetryPolicy(attempts=1, timeout=0.5),
    )
    with source, pytest.raises(ZoteroError) as failure:
        source.all_versions()
    assert SENTINEL_KEY not in str(failure.value)
    assert "[redacted]" in str(failure.value)
