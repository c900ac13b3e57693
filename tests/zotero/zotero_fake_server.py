"""A Zotero Web API v3 server on 127.0.0.1 for the sync's tests, local API included.

It speaks the API as ``shared/reference/zotero.md`` describes it: libraries under
``/users/<id>`` and ``/groups/<id>``; ``/items``, ``/items/top``, ``/items/<KEY>``,
``/collections/<KEY>/items[/top]`` and ``/deleted``; ``format=json|versions|keys``;
``since``, ``itemKey``, ``tag``, ``includeTrashed``, ``limit`` (default 25, at most 100
for JSON) and ``start``; ``Last-Modified-Version``, ``Total-Results`` and ``Link``
headers; 304 for ``If-Modified-Since-Version``; ``Authorization: Bearer`` or
``Zotero-API-Key`` with 403 for a bad key, 404 for an unknown library. The same
libraries are served under ``/api`` as the desktop's local API: no key, no ``/deleted``,
no default page size, a ``Zotero-Server-ID`` header, ``users/0`` for the local user.

Faults are queued with :meth:`FakeZotero.fail`: an HTTP status with headers (429 with
``Retry-After``, 500, 503), ``Backoff`` on a good answer, malformed JSON, a dropped
connection, a response that hangs, or any answer at all (``reply``). Every request is
recorded.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

WEB_LINK_BASE = "https://api.zotero.org"  # real servers put absolute api.zotero.org links


@dataclass
class Recorded:
    """One request as the server saw it."""

    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]
    time: float

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


@dataclass
class Fault:
    """A misbehaviour for the next ``times`` requests whose path and query contain ``match``."""

    kind: str  # "status", "backoff", "malformed", "reply", "disconnect" or "hang"
    match: str = ""
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    body: Any = ""  # the answer of a "reply" fault (a str is sent as it is)


class FakeLibrary:
    """One Zotero library: items with versions, deletions, and a library version."""

    def __init__(self, kind: str, number: int, *, private: bool = True, name: str = "") -> None:
        self.kind, self.number, self.private, self.name = kind, number, private, name
        self.version = 0
        self.items: dict[str, dict[str, Any]] = {}
        self.deleted: dict[str, int] = {}

    @property
    def path(self) -> str:
        return f"{self.kind}s/{self.number}"

    def _bump(self) -> int:
        self.version += 1
        return self.version

    def add(self, key: str, data: dict[str, Any], parsed_date: str | None = None) -> dict:
        """Add (or replace) an item from its ``data``; returns the item object."""
        version = self._bump()
        meta: dict[str, Any] = {}
        if data.get("itemType") not in ("note", "attachment", "annotation"):
            if parsed_date:
                meta["parsedDate"] = parsed_date
            meta["numChildren"] = 0
        if self.kind == "group":
            meta["createdByUser"] = {"id": 1, "username": "atlas", "name": "", "links": {}}
        base = f"{WEB_LINK_BASE}/{self.path}/items/{key}"
        item = {
            "key": key,
            "version": version,
            "library": {
                "type": self.kind,
                "id": self.number,
                "name": self.name,
                "links": {"alternate": {"href": f"https://www.zotero.org/{self.path}"}},
            },
            "links": {
                "self": {"href": base, "type": "application/json"},
                "alternate": {"href": f"https://www.zotero.org/{self.path}/items/{key}"},
            },
            "meta": meta,
            "data": {"key": key, "version": version, "tags": [], "relations": {}, **data},
        }
        if data.get("parentItem"):
            item["links"]["up"] = {
                "href": f"{WEB_LINK_BASE}/{self.path}/items/{data['parentItem']}"
            }
        self.items[key] = item
        self.deleted.pop(key, None)
        return item

    def add_raw(self, item: dict[str, Any]) -> None:
        """Add an item object as the real API returned it (a shared fixture), re-versioned."""
        item = copy.deepcopy(item)
        version = self._bump()
        item["version"] = item["data"]["version"] = version
        self.items[item["key"]] = item

    def edit(self, key: str, **changes: Any) -> None:
        """Change fields of an item, as a Zotero user would; bumps the versions."""
        version = self._bump()
        item = self.items[key]
        item["data"].update(changes)
        item["version"] = item["data"]["version"] = version

    def trash(self, key: str) -> None:
        self.edit(key, deleted=1)

    def delete(self, key: str) -> None:
        """Remove an item for good: it then shows up in ``/deleted``."""
        del self.items[key]
        self.deleted[key] = self._bump()


class FakeZotero:
    """The server. Use as a context manager; ``url`` is the Web API, ``local_url`` the local API."""

    def __init__(self, api_keys: set[str] | None = None, hang_seconds: float = 5.0) -> None:
        self.api_keys = api_keys or set()
        self.libraries: dict[str, FakeLibrary] = {}
        self.local_user: str | None = None  # the library served as users/0 by the local API
        self.server_id: str | None = "fake-desktop-1"
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.hang_seconds = hang_seconds
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        # A short poll interval keeps shutdown (once per test) quick.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeZotero:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def local_url(self) -> str:
        return f"{self.url}/api"

    def library(self, kind: str, number: int, **options: Any) -> FakeLibrary:
        library = FakeLibrary(kind, number, **options)
        self.libraries[library.path] = library
        return library

    def fail(self, kind: str, match: str = "", **options: Any) -> None:
        """Queue a fault for the next matching request(s)."""
        self.faults.append(Fault(kind, match, **options))

    def reset_log(self) -> None:
        self.requests.clear()

    def _take_fault(self, target: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.match in target:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _wait_hanging(self) -> None:
        self._stopping.wait(self.hang_seconds)


class _Reply(Exception):
    """Answer the request with this status, body and headers."""

    def __init__(self, status: int, body: Any = "", headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    @property
    def fake(self) -> FakeZotero:
        return self.server.fake  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = parse_qs(parts.query, keep_blank_values=True)
        self.fake.requests.append(
            Recorded(
                parts.path, params, {k.lower(): v for k, v in self.headers.items()}, time.time()
            )
        )
        local = parts.path == "/api" or parts.path.startswith("/api/")
        extra_headers = {"Zotero-API-Version": "3"}
        if local and self.fake.server_id:
            extra_headers["Zotero-Server-ID"] = self.fake.server_id
        fault = self.fake._take_fault(self.path)
        try:
            if fault is not None:
                self._apply_fault(fault, extra_headers)
            path = parts.path[len("/api") :] if local else parts.path
            self._route(path, params, local)
        except _Reply as reply:
            self._send(reply, extra_headers)
        except _Dropped:
            self.close_connection = True

    # ---------------------------------------------------------------- faults

    def _apply_fault(self, fault: Fault, headers: dict[str, str]) -> None:
        if fault.kind == "status":
            raise _Reply(fault.status, {"error": f"fault {fault.status}"}, fault.headers)
        if fault.kind == "backoff":
            headers.update(fault.headers)  # a good answer that asks the client to slow down
            return
        if fault.kind == "reply":  # any answer, e.g. a 200 that is not the documented JSON
            raise _Reply(fault.status, fault.body, fault.headers)
        if fault.kind == "malformed":
            raise _Reply(200, '[{"key": "ABCD2345", "data": ', {"Last-Modified-Version": "1"})
        if fault.kind == "hang":
            self.fake._wait_hanging()
            raise _Dropped
        if fault.kind == "disconnect":
            raise _Dropped
        raise AssertionError(f"unknown fault {fault.kind}")

    # ---------------------------------------------------------------- routing

    def _key(self) -> str | None:
        authorization = self.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            return authorization.removeprefix("Bearer ").strip()
        return self.headers.get("Zotero-API-Key")

    def _library(self, kind: str, number: str, local: bool) -> FakeLibrary:
        path = f"{kind}/{number}"
        if local and path == "users/0" and self.fake.local_user:
            path = self.fake.local_user
        library = self.fake.libraries.get(path)
        if library is None:
            raise _Reply(404, "Not found")
        if local:
            sent = self.headers.get("Zotero-Server-ID")
            if sent and self.fake.server_id and sent != self.fake.server_id:
                raise _Reply(412, "Server ID mismatch")
            return library
        key = self._key()
        if key is not None and key not in self.fake.api_keys:
            raise _Reply(403, "Invalid key")
        if library.private and key is None:
            raise _Reply(403, "Forbidden")
        return library

    def _route(self, path: str, params: dict[str, list[str]], local: bool) -> None:
        match = re.fullmatch(r"/(users|groups)/(\d+)(/.*)?", path)
        if not match:
            raise _Reply(404, "Not found")
        library = self._library(match.group(1), match.group(2), local)
        rest = match.group(3) or ""
        if rest == "/deleted":
            self._deleted(library, params, local)
        single = re.fullmatch(r"/items/([A-Z0-9]{8})", rest)
        if single:
            item = library.items.get(single.group(1))
            if item is None:
                raise _Reply(404, "Not found")
            raise _Reply(200, item, {"Last-Modified-Version": str(item["version"])})
        listing = re.fullmatch(r"(?:/collections/([A-Z0-9]{8}))?/items(/top)?", rest)
        if not listing:
            raise _Reply(404, "Not found")
        self._items(library, params, local, listing.group(1), bool(listing.group(2)), path)

    def _deleted(self, library: FakeLibrary, params: dict[str, list[str]], local: bool) -> None:
        if local:
            raise _Reply(404, "Not found")  # the local API has no /deleted
        since = params.get("since")
        if not since:
            raise _Reply(400, "'since' parameter must be provided")
        keys = [key for key, version in library.deleted.items() if version > int(since[0])]
        body = {"collections": [], "items": keys, "searches": [], "tags": [], "settings": []}
        raise _Reply(200, body, {"Last-Modified-Version": str(library.version)})

    def _items(
        self,
        library: FakeLibrary,
        params: dict[str, list[str]],
        local: bool,
        collection: str | None,
        top: bool,
        path: str,
    ) -> None:
        versions_header = {"Last-Modified-Version": str(library.version)}
        not_since = self.headers.get("If-Modified-Since-Version")
        if not_since is not None and library.version <= int(not_since):
            raise _Reply(304, "", versions_header)
        selected = self._select(library, params, collection, top)
        fmt = (params.get("format") or ["json"])[0]
        total = len(selected)
        default_limit = None if local or fmt in ("versions", "keys") else 25
        limit_text = (params.get("limit") or [None])[0]
        limit = int(limit_text) if limit_text else default_limit
        if limit is not None and fmt == "json":
            limit = min(limit, 100)
        start = int((params.get("start") or ["0"])[0])
        page = selected[start : start + limit] if limit is not None else selected[start:]
        headers = {**versions_header, "Total-Results": str(total)}
        if limit is not None:
            headers["Link"] = self._links(path, params, local, start, limit, total)
        if fmt == "versions":
            raise _Reply(200, {item["key"]: item["version"] for item in page}, headers)
        if fmt == "keys":
            text = "".join(item["key"] + "\n" for item in page)
            raise _Reply(200, text, {**headers, "Content-Type": "text/plain"})
        raise _Reply(200, page, headers)

    @staticmethod
    def _select(
        library: FakeLibrary, params: dict[str, list[str]], collection: str | None, top: bool
    ) -> list[dict[str, Any]]:
        since = int((params.get("since") or ["0"])[0] or 0)
        include_trashed = (params.get("includeTrashed") or ["0"])[0] == "1"
        keys = {k for value in params.get("itemKey", []) for k in value.split(",") if k}
        tags = params.get("tag", [])
        selected = []
        for item in library.items.values():
            data = item["data"]
            if top and data.get("parentItem"):
                continue
            if data.get("deleted") and not include_trashed:
                continue
            if collection and collection not in data.get("collections", []):
                continue
            if keys and item["key"] not in keys:
                continue
            if item["version"] <= since:
                continue
            names = {tag["tag"] for tag in data.get("tags", [])}
            if any(tag not in names for tag in tags):
                continue
            selected.append(item)
        return selected

    def _links(
        self,
        path: str,
        params: dict[str, list[str]],
        local: bool,
        start: int,
        limit: int,
        total: int,
    ) -> str:
        base = f"{self.fake.local_url}{path}" if local else f"{WEB_LINK_BASE}{path}"
        kept = [(k, v) for k, values in params.items() if k != "start" for v in values]
        links = []
        if start + limit < total:
            links.append(f'<{base}?{urlencode([*kept, ("start", start + limit)])}>; rel="next"')
            last = ((total - 1) // limit) * limit
            links.append(f'<{base}?{urlencode([*kept, ("start", last)])}>; rel="last"')
        links.append(f'<https://www.zotero.org/{path.strip("/")}>; rel="alternate"')
        return ", ".join(links)

    # ---------------------------------------------------------------- answering

    def _send(self, reply: _Reply, extra_headers: dict[str, str]) -> None:
        headers = {**extra_headers, **reply.headers}
        if isinstance(reply.body, str):
            body = reply.body.encode()
            headers.setdefault(
                "Content-Type", "application/json" if reply.status == 200 else "text/plain"
            )
        else:
            body = json.dumps(reply.body).encode()
            headers.setdefault("Content-Type", "application/json")
        if reply.status == 304:
            body = b""
        self.send_response(reply.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Dropped(Exception):
    """Close the connection without an answer."""
