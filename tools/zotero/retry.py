"""How hard to try a Zotero request, and which failures deserve another try.

pyzotero 1.16 retries only HTTP 429 (honouring ``Backoff`` and ``Retry-After``). For the
rest, :func:`classify` turns what pyzotero or httpx2 raised into a :class:`Failure`: a
one-line message, whether to try again (5xx answers and transport errors: refused
connections, resets, timeouts) and how long a 503's ``Retry-After`` asks us to wait.

Examples:
    >>> RetryPolicy(first_delay=0.5).delay(3)
    2.0
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx2
from pyzotero import errors as ze


class NotModified(Exception):
    """The server answered 304: nothing changed since the version asked about."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request.

    Attributes:
        attempts: Tries per request, the first included.
        first_delay: Seconds before the first retry; doubled for each further retry.
        max_delay: The longest wait between tries, ``Retry-After`` included.
        timeout: Seconds to wait for a connection or for data before a try fails.
    """

    attempts: int = 4
    first_delay: float = 1.0
    max_delay: float = 60.0
    timeout: float = 30.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        return min(self.max_delay, self.first_delay * 2 ** (retry - 1))


@dataclass(frozen=True)
class Failure:
    """One failed try: the line to report, and whether (and after how long) to try again."""

    message: str
    retryable: bool = False
    wait: float | None = None


@dataclass(frozen=True)
class Place:
    """What a failure message names: the library (and collection), its server, the timeout.

    Attributes:
        where: The library and server, e.g. ``groups/1 on api.zotero.org``.
        endpoint: The server's URL.
        local: Whether the server is the Zotero desktop's local API.
        timeout: The seconds a try waits.
    """

    where: str
    endpoint: str
    local: bool
    timeout: float


def _status(error: BaseException) -> int | None:
    """The HTTP status of a pyzotero error (it wraps httpx2's HTTPStatusError)."""
    cause = error.__cause__
    response = getattr(cause, "response", None)
    return getattr(response, "status_code", None)


def _retry_after(error: BaseException) -> float | None:
    """Seconds a 5xx answer asks us to wait (``Retry-After`` or ``Backoff``), if any."""
    response = getattr(error.__cause__, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after") or response.headers.get("backoff")
    try:
        return float(value) if value else None
    except ValueError:  # an HTTP-date; the Zotero servers send seconds
        return None


def classify(error: Exception, what: str, place: Place) -> Failure:
    """The failure ``error`` means for the request for ``what``.

    Raises:
        NotModified: the server answered 304.
        Exception: ``error`` itself when it is no failure of Zotero or of the network.
    """
    where = place.where
    if isinstance(error, ze.UserNotAuthorisedError):
        hint = (
            "enable 'Allow other applications on this computer to communicate with Zotero'"
            if place.local
            else "ZOTERO_API_KEY is missing, invalid, or has no read access to this library"
        )
        return Failure(f"access denied (HTTP {_status(error) or 403}) to {where}: {hint}")
    if isinstance(error, ze.ResourceNotFoundError):
        hint = (
            "it is not in this Zotero desktop (a group must be synced to it)"
            if place.local
            else "check --library-type, --library-id and --collection"
        )
        return Failure(f"not found (HTTP 404): {where}; {hint}")
    if isinstance(error, ze.TooManyRetriesError):
        return Failure(f"rate-limited (HTTP 429) by {where}; try again later")
    if isinstance(error, ze.HTTPError):
        status = _status(error)
        if status == 304:
            raise NotModified from None
        if status is not None and status >= 500:
            return Failure(
                f"server error (HTTP {status}) for {what} from {where}",
                retryable=True,
                wait=_retry_after(error),
            )
        return Failure(f"unexpected answer (HTTP {status}) for {what} from {where}")
    if isinstance(error, ze.PyZoteroError):
        status = _status(error)
        return Failure(f"{type(error).__name__} (HTTP {status}) for {what} from {where}")
    if isinstance(error, httpx2.TimeoutException):
        return Failure(
            f"timed out after {place.timeout:g} s waiting for {what} from {where}",
            retryable=True,
        )
    if isinstance(error, httpx2.TransportError):
        return Failure(
            f"cannot reach the Zotero server at {place.endpoint}: {type(error).__name__}: {error}",
            retryable=True,
        )
    if isinstance(error, json.JSONDecodeError):
        return Failure(f"malformed JSON in {what} from {where}: {error.msg} at {error.pos}")
    if isinstance(error, ValueError):  # e.g. a Retry-After pyzotero cannot read
        return Failure(f"unreadable answer for {what} from {where}: {error}")
    raise error
