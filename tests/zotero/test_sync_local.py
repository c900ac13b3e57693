"""``--local``: the same server under ``/api``, as the Zotero desktop's local API."""

from __future__ import annotations

import json
from pathlib import Path

from tests.zotero.zotero_fake_server import FakeZotero
from tests.zotero.zotero_test_data import GROUP, LINFORMER, SPARSE, snapshot
from tools.catalog import load_catalog

LOCAL_WATERMARK = "zotero/local/groups-2480461.json"


def local(sync, server: FakeZotero, *options: str):
    return sync("--local", "--api-url", server.local_url, *options)


def test_local_sync_matches_the_web_sync(sync, server: FakeZotero, catalog_dir: Path) -> None:
    run = local(sync, server)
    assert run.code == 0, run.err
    assert all(request.path.startswith("/api/") for request in server.requests)
    # The local API needs no key, and the web key is not handed to the desktop.
    assert not any("authorization" in request.headers for request in server.requests)
    assert run.summary == (
        "summary: updated 7, unchanged 1, new 0, unmatched 1, deleted 0, conflicts 2"
    )
    entries = load_catalog(catalog_dir).entries
    assert (entries["linformer"].zotero.library, entries["linformer"].zotero.key) == (
        GROUP,
        LINFORMER,
    )
    # The watermark is kept per server: the desktop's Zotero-Server-ID names it.
    state = json.loads((catalog_dir / LOCAL_WATERMARK).read_text(encoding="utf-8"))
    assert state["servers"] == {"server-id:fake-desktop-1": 17}
    assert not (catalog_dir / "zotero/web").exists()


def test_local_second_sync_costs_one_request(sync, server: FakeZotero, catalog_dir: Path) -> None:
    assert local(sync, server).code == 0
    before = snapshot(catalog_dir)
    server.reset_log()
    run = local(sync, server)
    assert run.code == 0, run.err
    assert snapshot(catalog_dir) == before
    assert len(server.requests) <= 2
    assert server.requests[0].param("format") == "versions"
    assert server.requests[0].param("since") is None  # early Zotero 7 drops version 0 for since=0


def test_local_edits_and_deletions_without_a_deleted_endpoint(
    sync, server: FakeZotero, catalog_dir: Path
) -> None:
    assert local(sync, server).code == 0
    library = server.libraries[GROUP]
    library.edit(LINFORMER, title="Linformer, revised")
    library.delete(SPARSE)
    server.reset_log()
    run = local(sync, server)
    assert run.code == 0, run.err
    assert not any(request.path.endswith("/deleted") for request in server.requests)
    assert [r.param("itemKey") for r in server.requests if r.param("itemKey")] == [LINFORMER]
    entries = load_catalog(catalog_dir).entries
    assert entries["linformer"].title == "Linformer, revised"
    assert entries["sparse-transformer"].zotero.deleted
    assert "is no longer in the library" in run.out


def test_local_user_library_needs_the_real_user_id(sync, server: FakeZotero) -> None:
    run = local(sync, server, "--library-type", "user", "--library-id", "0")
    assert run.code == 1 and "numeric user ID" in run.err
    run = local(sync, server, "--library-type", "user", "--library-id", "475425")
    assert run.code == 0, run.err
    assert server.requests[-1].path.startswith("/api/users/475425/items")


def test_local_group_not_in_the_desktop_is_404(sync, server: FakeZotero, catalog_dir: Path):
    before = snapshot(catalog_dir)
    run = local(sync, server, "--library-id", "7")
    assert run.code == 1
    assert "not found (HTTP 404)" in run.err and "synced to it" in run.err
    assert snapshot(catalog_dir) == before
