"""Limits a slow server or a second sync cannot break (issue 15, points 4 and 5).

Each sync here is a real process, as people run it: a hang would otherwise hang the
tests, and the lock is only meaningful between processes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.zotero.zotero_fake_server import FakeZotero
from tests.zotero.zotero_test_data import GROUP, GROUP_ID, LINFORMER, ROOT, SENTINEL_KEY, snapshot
from tools.catalog.lock import catalog_lock

SCRIPT = ROOT / "tools" / "sync_zotero.py"


def sync_command(catalog_dir: Path, url: str, *options: str) -> list[str]:
    return [
        sys.executable,
        str(SCRIPT),
        "--catalog",
        str(catalog_dir),
        "--api-url",
        url,
        "--library-type",
        "group",
        "--library-id",
        str(GROUP_ID),
        *options,
    ]


def environment() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if "PROXY" not in name.upper()}
    env["ZOTERO_API_KEY"] = SENTINEL_KEY
    return env


def run_sync(catalog_dir: Path, url: str, *options: str) -> tuple[subprocess.Popen, float]:
    """The finished process of one sync, and how long it took."""
    started = time.monotonic()
    done = subprocess.run(
        sync_command(catalog_dir, url, *options),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=20,  # far beyond any bound the sync promises
    )
    return done, time.monotonic() - started


# ----------------------------------------------------------------------------- point 4


class TrickleServer:
    """Answers every request one byte every 0.5 s: in its status line, or in its body."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # the listener was closed while we waited: the test is over
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            head += b"Last-Modified-Version: 1\r\nContent-Length: 100000\r\n\r\n"
            if self.where == "body":
                connection.sendall(head)
            slow = head if self.where == "headers" else b"[" + b" " * 99999
            for byte in slow:
                if self.stop.wait(0.5):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return


@pytest.fixture(params=["headers", "body"])
def trickle(request: pytest.FixtureRequest) -> Iterator[TrickleServer]:
    server = TrickleServer(request.param)
    server.thread.start()
    yield server
    server.stop.set()
    server.listener.close()


def test_a_trickling_server_cannot_stretch_a_request(
    trickle: TrickleServer, catalog_dir: Path
) -> None:
    before = snapshot(catalog_dir)
    done, took = run_sync(
        catalog_dir, trickle.url, "--timeout", "1", "--retries", "1", "--retry-delay", "0.1"
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: timed out after 1 s"), done.stderr
    assert "(after 2 tries)" in done.stderr
    assert took < 6, took  # two tries of one second, and starting Python
    assert snapshot(catalog_dir) == before


def test_max_time_bounds_the_whole_reading(server: FakeZotero, catalog_dir: Path) -> None:
    server.fail("status", status=503, headers={"Retry-After": "100000"}, times=999)
    done, took = run_sync(catalog_dir, server.url, "--retries", "50", "--max-time", "1.5")
    assert done.returncode == 1, done.stderr
    assert "not finish within --max-time 1.5 s" in done.stderr, done.stderr
    assert took < 6, took


def test_a_server_cannot_ask_for_an_endless_pause(
    sync, server: FakeZotero, catalog_dir: Path
) -> None:
    assert sync().code == 0
    server.libraries[GROUP].edit(LINFORMER, title="Linformer: Self-Attention in Linear Time")
    server.fail("backoff", match="format=versions", headers={"Backoff": "1e9"})
    done, took = run_sync(catalog_dir, server.url, "--max-time", "1.5")
    assert done.returncode == 1, done.stderr
    assert "not finish within --max-time 1.5 s" in done.stderr, done.stderr
    assert took < 6, took


# ----------------------------------------------------------------------------- point 5


def test_a_second_writer_waits_then_stops_before_reading(
    server: FakeZotero, catalog_dir: Path
) -> None:
    before = snapshot(catalog_dir)
    with catalog_lock(catalog_dir):
        done, took = run_sync(catalog_dir, server.url)
    assert done.returncode == 1
    assert done.stderr.startswith("error: another tool is writing"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "unexpected" not in done.stderr
    assert 4.5 < took < 12, took  # it waited (5 s), then gave up
    assert server.requests == []  # nothing was read before the lock was held
    assert snapshot(catalog_dir) == before


def test_a_sync_reads_only_once_the_other_writer_is_done(
    server: FakeZotero, catalog_dir: Path
) -> None:
    with catalog_lock(catalog_dir):
        waiting = subprocess.Popen(
            sync_command(catalog_dir, server.url),
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        released = time.time()
    out, err = waiting.communicate(timeout=20)
    assert waiting.returncode == 0, err
    assert "summary: updated 7" in out
    assert server.requests and all(r.time >= released for r in server.requests)
