"""Deadlines a slow server cannot stretch: one for each request, one for the whole reading.

httpx2's timeouts limit each *read*: a server that sends one byte every half second never
trips a one-second timeout, and would hold a sync forever. So every request the sync
sends goes through :class:`BoundedClient`, which gives it a deadline for all of it
(connecting, sending, the headers and the whole body), enforced by the process's
real-time timer (``SIGALRM``), which interrupts even a blocked read. The same client
caps how long a server may ask us to wait (``Retry-After``, ``Backoff``) and refuses a
successful answer that is not JSON. A :class:`RunClock` bounds the whole reading.

Signals reach only the main thread; called from another thread, a request is bounded
by the per-read timeouts alone.

Examples:
    >>> clock = RunClock(60.0)
    >>> 59.0 < clock.remaining() <= 60.0, RunClock(None).remaining()
    (True, inf)
    >>> with time_limit(0.05):
    ...     time.sleep(1)
    Traceback (most recent call last):
    ...
    tools.zotero.deadline.DeadlineExceeded: the time limit ran out
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

import httpx2

from tools.zotero.errors import ZoteroError

JSON_TYPES = ("application/json", "application/vnd.citationstyles.csl+json")
WAIT_HEADERS = ("retry-after", "backoff")


class DeadlineExceeded(Exception):
    """A request (or the whole reading) took longer than it was allowed."""


class WrongAnswer(ZoteroError):
    """A successful answer that is not the JSON the Zotero API documents."""


class RunClock:
    """The time left to a run; ``None`` seconds means no limit."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._end = math.inf if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise DeadlineExceeded("the time limit ran out")


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`DeadlineExceeded` in the block once ``seconds`` have passed."""
    if seconds <= 0:
        raise DeadlineExceeded("the time limit ran out")
    if threading.current_thread() is not threading.main_thread():
        yield  # signals cannot reach this thread; the per-read timeouts still apply
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    started = time.monotonic()
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer > 0:  # someone else's alarm (a test runner's, say) keeps its time
            left = outer - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


class BoundedClient(httpx2.Client):
    """An httpx2 client whose requests each end by a deadline (see the module's docstring).

    Args:
        request_time: Seconds one request may take, all of it.
        clock: The run's clock; no request outlives it.
        max_wait: The longest wait a server may ask for between requests.
        **options: For :class:`httpx2.Client`.
    """

    def __init__(
        self, *, request_time: float, clock: RunClock, max_wait: float, **options: Any
    ) -> None:
        super().__init__(**options)
        self.request_time = request_time
        self.clock = clock
        self.max_wait = max_wait

    def send(self, request: httpx2.Request, **options: Any) -> httpx2.Response:
        with time_limit(min(self.request_time, self.clock.remaining())):
            response = super().send(request, **options)  # the body is read in here too
        for name in WAIT_HEADERS:
            # pyzotero sleeps for as long as these say: a server must not make that forever.
            value = response.headers.get(name)
            if value is not None:
                cap = min(self.max_wait, max(self.clock.remaining(), 0.0))
                response.headers[name] = f"{_capped_wait(value, cap):g}"
        if response.status_code == 200:
            content_type = response.headers.get("content-type", "(none)")
            if content_type.split(";", 1)[0].strip().lower() not in JSON_TYPES:
                raise WrongAnswer(f"an answer of type {content_type[:60]!r}")
        return response


def _capped_wait(value: str, cap: float) -> float:
    """``value`` in seconds, at most ``cap`` (an unreadable value waits the cap).

    Examples:
        >>> _capped_wait("3", 60), _capped_wait("1e9", 60), _capped_wait("soon", 5)
        (3.0, 60, 5)
    """
    try:
        seconds = float(value)
    except ValueError:
        return cap
    return min(seconds, cap) if math.isfinite(seconds) and seconds >= 0 else cap
