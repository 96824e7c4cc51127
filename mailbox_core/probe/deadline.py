"""One deadline per probe, and one watchdog thread that enforces every probe's deadline.

Every blocking call of a probe waits at most ``Deadline.remaining()``; the watchdog is the
backstop for anything that would not honour a socket timeout: when a deadline passes it
calls the probe's abort, which shuts the socket. Whatever fails after that is read as
"the deadline passed", never as the server's answer (``Deadline.expired``).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Deadline:
    """The moment a probe must be over, ``timeout`` seconds after it started."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.at = time.monotonic() + timeout

    def remaining(self) -> float:
        """Seconds left; raises TimeoutError once none are."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the probe's deadline passed")
        return left

    def left(self) -> float:
        """Seconds left, 0.0 once none are (for asking, where raising would end the probe)."""
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at


class Watchdog:
    """One thread for all probes: calls a probe's abort when its deadline passes.

    A timer thread per probe would mean hundreds of sleeping threads during Check all.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, at: float, callback: Callable[[], None]) -> int:
        """Call ``callback`` at monotonic time ``at``; returns a ticket for ``cancel``."""
        with self._cond:
            ticket = next(self._ids)
            self._callbacks[ticket] = callback
            heapq.heappush(self._heap, (at, ticket))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="probe-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
            return ticket

    def cancel(self, ticket: int) -> None:
        with self._cond:
            self._callbacks.pop(ticket, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                at, ticket = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                callback = self._callbacks.pop(ticket, None)
            if callback is not None:
                callback()


_watchdog = Watchdog()


@contextmanager
def watched(deadline: Deadline, abort: Callable[[], None]) -> Iterator[None]:
    """Call ``abort`` if the block is still running when ``deadline`` passes."""
    ticket = _watchdog.watch(deadline.at, abort)
    try:
        yield
    finally:
        _watchdog.cancel(ticket)
