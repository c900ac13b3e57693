"""Reading a Zotero library through pyzotero, with the care pyzotero leaves to its caller.

:class:`ZoteroSource` adds what a sync needs (see ``zotero.md``, section 1):

* a deadline for every whole request and for the whole reading, which a server that
  trickles its answer cannot stretch (:mod:`tools.zotero.deadline`), besides the per-read
  timeout (pyzotero's module-wide ``DEFAULT_TIMEOUT`` overrides the client's own, so it
  is set for the duration of a :class:`ZoteroSource`);
* answers checked against what the API documents (:mod:`tools.zotero.answers`): a 200
  that is not that JSON is an error, never an empty library;
* a collection key sent as one URL-quoted path segment;
* bounded exponential backoff for 5xx answers and transport errors, by the rules of
  :mod:`tools.zotero.retry`;
* stale query parameters cleared before each try (pyzotero keeps them after a failure);
* one-line :class:`~tools.zotero.errors.ZoteroError` messages for a bad key (403), an
  unknown library (404), malformed JSON, an unreachable server or a timeout — never a
  traceback, and never the API key, which travels only in the ``Authorization`` header;
* no proxy for a loopback server (the local API or a test server), as Zotero desktop does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, quote, urlparse

import httpx2
import pyzotero._client as pyzotero_client
from pyzotero import Zotero
from pyzotero import errors as ze

from tools.zotero import answers
from tools.zotero.deadline import BoundedClient, DeadlineExceeded, RunClock, WrongAnswer
from tools.zotero.errors import ZoteroError, redact
from tools.zotero.options import KEY
from tools.zotero.retry import Failure, NotModified, Place, RetryPolicy, classify

T = TypeVar("T")

WEB_API = "https://api.zotero.org"
LOCAL_API = "http://127.0.0.1:23119/api"
PAGE_SIZE = 100  # the Web API's maximum page
KEY_BATCH = 50  # the Web API's maximum number of keys in one itemKey request
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass(frozen=True)
class LibraryRef:
    """A Zotero library: ``user`` or ``group`` and its numeric id.

    Examples:
        >>> LibraryRef("group", 2480461).path
        'groups/2480461'
    """

    kind: Literal["user", "group"]
    id: int

    @property
    def path(self) -> str:
        return f"{self.kind}s/{self.id}"


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (where a proxy must never be used).

    Examples:
        >>> is_loopback("http://127.0.0.1:23119/api"), is_loopback(WEB_API)
        (True, False)
    """
    return (urlparse(url).hostname or "") in LOOPBACK_HOSTS


def server_name(url: str) -> str:
    """A short, stable name of a server for its watermark: host, port and path.

    Examples:
        >>> server_name("https://api.zotero.org"), server_name("http://127.0.0.1:23119/api/")
        ('api.zotero.org', '127.0.0.1:23119/api')
    """
    parsed = urlparse(url)
    host = parsed.netloc.rpartition("@")[2]  # never a user name or password
    return f"{host}{parsed.path.rstrip('/')}"


class ZoteroSource:
    """One library on one server, read with retries; use it as a context manager.

    Args:
        library: The library to read.
        api_key: The Zotero API key, or None for a public library and the local API.
        local: Read the Zotero desktop's local API instead of the Web API.
        endpoint: The server (default: api.zotero.org, or the desktop's local API).
        collection: Read only this collection's items (subcollections are not included).
        tag: Read only items with this tag.
        policy: Timeouts and retries.
        clock: The time left to the whole reading (no limit by default).
        sleep: How to wait between retries.
    """

    def __init__(
        self,
        library: LibraryRef,
        api_key: str | None = None,
        *,
        local: bool = False,
        endpoint: str | None = None,
        collection: str | None = None,
        tag: str | None = None,
        policy: RetryPolicy | None = None,
        clock: RunClock | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if tag and "tags" in tag:
            # pyzotero treats any response whose URL contains "tags" as a tag list.
            raise ZoteroError(f"--tag {tag!r}: values containing 'tags' cannot be read (pyzotero)")
        self.library = library
        self.local = local
        self.endpoint = (endpoint or (LOCAL_API if local else WEB_API)).rstrip("/")
        self.collection = collection.upper() if collection else None
        if self.collection is not None and not KEY.fullmatch(self.collection):
            raise ZoteroError(f"{self.collection[:20]!r} is not a Zotero collection key")
        self.tag = tag
        self.policy = policy or RetryPolicy()
        self.clock = clock or RunClock(None)
        self._sleep = sleep
        self._secrets = [api_key]
        self._http = self._new_client()
        self._zot = Zotero(library.id, library.kind, api_key, local=local, client=self._http)
        self._zot.endpoint = self.endpoint
        self._saved_timeout = pyzotero_client.DEFAULT_TIMEOUT

    def _new_client(self) -> BoundedClient:
        return BoundedClient(
            request_time=self.policy.timeout,
            clock=self.clock,
            max_wait=self.policy.max_delay,
            follow_redirects=True,
            timeout=self.policy.timeout,
            trust_env=not is_loopback(self.endpoint),
        )

    def __enter__(self) -> ZoteroSource:
        # pyzotero passes DEFAULT_TIMEOUT with every read, overriding the client's timeout.
        _set_default_timeout(self.policy.timeout)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _set_default_timeout(self._saved_timeout)
        self._http.close()

    # ------------------------------------------------------------------ identity

    @property
    def server(self) -> str:
        """The name the watermark is stored under: the local server's ID when it sends one."""
        if self.local and self._zot.server_id:
            return f"server-id:{self._zot.server_id}"
        return server_name(self.endpoint)

    @property
    def scoped(self) -> bool:
        """Whether only part of the library is read (a collection or a tag)."""
        return bool(self.collection or self.tag)

    def _where(self) -> str:
        place = self.library.path + (f" collection {self.collection}" if self.collection else "")
        return f"{place} on {server_name(self.endpoint)}"

    def _place(self) -> Place:
        return Place(self._where(), self.endpoint, self.local, self.policy.timeout)

    # ------------------------------------------------------------------ requests

    def _call(self, what: str, request: Callable[[], T]) -> T:
        """Run one request with the retry policy; failures become one-line ZoteroErrors."""
        for attempt in range(1, self.policy.attempts + 1):
            # pyzotero keeps the parameters of a failed call and would merge them in again.
            self._zot.url_params = None
            try:
                return request()
            except WrongAnswer as error:
                raise self._wrong_answer(what, str(error)) from None
            except DeadlineExceeded:
                self._reset_connections()  # the interrupted connection is not reused
                failure = Failure(
                    f"timed out after {self.policy.timeout:g} s waiting for {what} "
                    f"from {self._where()}",
                    retryable=True,
                )
            except (ze.PyZoteroError, httpx2.HTTPError, ValueError) as error:
                failure = classify(error, what, self._place())
            if self.clock.expired():
                raise self._out_of_time(what)
            if not failure.retryable or attempt == self.policy.attempts:
                tries = f" (after {attempt} tries)" if attempt > 1 else ""
                raise ZoteroError(redact(failure.message + tries, self._secrets)) from None
            wait = min(max(self.policy.delay(attempt), failure.wait or 0.0), self.policy.max_delay)
            if wait >= self.clock.remaining():
                raise self._out_of_time(what)
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wrong_answer(self, what: str, detail: str) -> ZoteroError:
        message = (
            f"the answer for {what} from {self._where()} is not the JSON the Zotero API "
            f"documents: {detail}; nothing was written"
        )
        return ZoteroError(redact(message, self._secrets))

    def _out_of_time(self, what: str) -> ZoteroError:
        return ZoteroError(
            f"stopped waiting for {what} from {self._where()}: reading the library would "
            f"not finish within --max-time {self.clock.seconds:g} s; nothing was written"
        )

    def _reset_connections(self) -> None:
        self._http.close()
        self._http = self._new_client()
        self._zot.client = self._http

    def _checked(self, check: Callable[[Any], T], value: Any, what: str) -> T:
        try:
            return check(value)
        except WrongAnswer as error:
            raise self._wrong_answer(what, str(error)) from None

    def _top(self, **params: Any) -> Any:
        """``/items/top`` of the library or collection, with the tag filter."""
        if self.tag:
            params["tag"] = self.tag
        if self.collection:
            # One path segment, quoted, whatever the key (it was checked already).
            return self._zot.collection_items_top(quote(self.collection, safe=""), **params)
        return self._zot.top(**params)

    def _header(self, name: str) -> str | None:
        """A header of the last answer."""
        response = self._zot.request
        return response.headers.get(name) if response is not None else None

    def _header_int(self, name: str) -> int:
        try:
            return int(self._header(name) or "")
        except ValueError:
            raise ZoteroError(f"the server sent no valid {name} header ({self._where()})") from None

    def _library_version(self) -> int:
        return self._header_int("Last-Modified-Version")

    # ------------------------------------------------------------------ reads

    def changed_versions(self, since: int) -> tuple[dict[str, int] | None, int]:
        """Top-level items changed after library version ``since`` (trashed ones included).

        Returns ``(None, since)`` when the server says nothing changed (304), else
        ``({key: version}, library version)``. One request.
        """
        what = "the list of changed items"
        headers = self._http.headers
        headers["If-Modified-Since-Version"] = str(since)
        try:
            versions = self._call(
                what,
                lambda: self._top(format="versions", since=since, includeTrashed=1, limit=None),
            )
        except NotModified:
            return None, since
        finally:
            del headers["If-Modified-Since-Version"]
        return self._checked_versions(versions, what), self._library_version()

    def all_versions(self) -> tuple[dict[str, int], int]:
        """Every top-level item's version (trashed ones included) and the library version.

        Used with the local API, which has no ``/deleted``: the keys that are missing
        are the deletions. ``since`` is left out on purpose: early Zotero 7 local APIs
        drop never-synced (version 0) items for ``since=0``.
        """
        what = "the list of items"
        versions = self._call(
            what, lambda: self._top(format="versions", includeTrashed=1, limit=None)
        )
        return self._checked_versions(versions, what), self._library_version()

    def _checked_versions(self, versions: Any, what: str) -> dict[str, int]:
        return self._checked(answers.versions, versions, what)

    def all_items(
        self, on_page: Callable[[int, int | None], None] = lambda n, t: None
    ) -> tuple[list[dict[str, Any]], int]:
        """Every top-level item (trashed included), page by page along ``Link: rel="next"``.

        If the library changes between pages (the library version moves), the listing
        is started again once, since pages may then skip or repeat items.

        Args:
            on_page: Called with the number of items of each page and the total.
        """
        for _ in range(2):
            items, versions, total = self._list_pages(on_page)
            if len(versions) == 1:
                if total is not None and len(items) != total:
                    raise ZoteroError(
                        f"the server listed {len(items)} of {total} items ({self._where()})"
                    )
                return items, versions.pop()
        raise ZoteroError(f"{self._where()} kept changing while it was read; run the sync again")

    def _list_pages(
        self, on_page: Callable[[int, int | None], None]
    ) -> tuple[list[dict[str, Any]], set[int], int | None]:
        items: list[dict[str, Any]] = []
        versions: set[int] = set()
        total: int | None = None
        start = 0
        while True:
            what = f"items {start + 1}-{start + PAGE_SIZE}"
            page = self._call(
                what,
                partial(
                    self._top,
                    includeTrashed=1,
                    limit=PAGE_SIZE,
                    start=start,
                    sort="dateAdded",  # stable order: edits during the listing do not reorder
                    direction="asc",
                ),
            )
            items.extend(self._checked(answers.items, page, what))
            versions.add(self._library_version())
            if total is None and self._header("Total-Results"):
                total = self._header_int("Total-Results")
            on_page(len(page), total)
            next_start = self._next_start()
            if next_start is None:
                return items, versions, total
            if next_start <= start:
                raise ZoteroError(f"the server's next page does not advance ({self._where()})")
            start = next_start

    def _next_start(self) -> int | None:
        """The ``start`` of the ``Link: rel="next"`` page, or None on the last page.

        The link is read, not followed: pyzotero would join its path to an endpoint
        that has a path of its own (a self-hosted server) twice.
        """
        link = (self._zot.links or {}).get("next")
        if not link:
            return None
        values = parse_qs(urlparse(link).query).get("start")
        try:
            return int(values[0]) if values else None
        except ValueError:
            return None

    def items_by_key(
        self, keys: Sequence[str], on_batch: Callable[[int], None] = lambda n: None
    ) -> list[dict[str, Any]]:
        """The items with these keys, in batches of 50 (trashed ones included)."""
        items: list[dict[str, Any]] = []
        for batch in _chunks(sorted(keys), KEY_BATCH):
            what = f"{len(batch)} changed items"
            found = self._call(
                what,
                partial(
                    self._zot.items, itemKey=",".join(batch), includeTrashed=1, limit=KEY_BATCH
                ),
            )
            items.extend(self._checked(answers.items, found, what))
            on_batch(len(batch))
        return items

    def deleted_since(self, since: int) -> list[str]:
        """Keys of items deleted (not merely trashed) after library version ``since``."""
        what = "the deleted items"
        deleted = self._call(what, lambda: self._zot.deleted(since=since))
        return self._checked(answers.deleted_keys, deleted, what)


def _set_default_timeout(seconds: float) -> None:
    # pyzotero declares the module's timeout an int; httpx2 takes any number of seconds.
    module: Any = pyzotero_client
    module.DEFAULT_TIMEOUT = seconds


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
