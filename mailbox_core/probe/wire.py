"""The bytes of one connection: sent, and read back as lines within the deadline and budgets.

imaplib and poplib keep whatever a server sends (a CAPA answer of endless lines, a 1 GB
literal) until it ends; this reader stops at a byte budget per response and per
connection, so one hostile server costs a check at most about a megabyte.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mailbox_core.probe.deadline import Deadline
from mailbox_core.probe.diagnosis import Problem, StepFailed, Waiting

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Budget:
    """How many bytes a probe reads at most: per response, and over the whole connection."""

    response: int = 256 * 1024
    connection: int = 1024 * 1024


class Wire:
    """Sends commands and reads answers; every wait ends by the deadline."""

    def __init__(self, sock: socket.socket, deadline: Deadline, budget: Budget = Budget()) -> None:
        self.sock = sock
        self.deadline = deadline
        self.budget = budget
        self._buffer = bytearray()
        self._response_left = budget.response
        self._connection_left = budget.connection
        self._waiting = Waiting.GREETING
        self._since = time.monotonic()  # when the server was last asked (or connected to)

    def expect(self, waiting: Waiting) -> None:
        """Start reading the answer to ``waiting``, with a fresh per-response budget."""
        self._waiting = waiting
        self._response_left = self.budget.response

    def send(self, data: bytes) -> None:
        """Send ``data`` whole (one write, so pipelined commands leave together)."""
        with self._mapped():
            self.sock.settimeout(self.deadline.remaining())
            self.sock.sendall(data)
        self._since = time.monotonic()

    def read_line(self) -> bytes:
        """The next line, without its line end."""
        start = 0
        while (end := self._buffer.find(b"\n", start)) < 0:
            start = len(self._buffer)
            self._fill()
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line.removesuffix(b"\r")

    def peek(self, size: int) -> bytes:
        """Up to ``size`` bytes of what comes next (less when a line ends first), left unread."""
        while len(self._buffer) < size and b"\n" not in self._buffer:
            self._fill()
        return bytes(self._buffer[:size])

    def read_pieces(self) -> Iterator[bytes]:
        """The next line in pieces as they arrive, line end included; nothing is kept.

        For an answer that may be one very long line (IMAP SEARCH): the caller counts as it
        reads, and the budgets still bound how much is read.
        """
        while (end := self._buffer.find(b"\n")) < 0:
            if self._buffer:
                yield bytes(self._buffer)
                self._buffer.clear()
            self._fill()
        yield bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]

    def discard(self, count: int) -> None:
        """Skip ``count`` bytes (an IMAP literal) without keeping them."""
        if count - len(self._buffer) > min(self._response_left, self._connection_left):
            raise self._too_much()
        while count > 0:
            if not self._buffer:
                self._fill()
            taken = min(count, len(self._buffer))
            del self._buffer[:taken]
            count -= taken

    def replace(self, sock: socket.socket) -> None:
        """Carry on over ``sock`` (TLS on top of the same connection).

        Bytes read before TLS started are dropped unread: a man in the middle may have
        appended them to the plain answer to STARTTLS (RFC 3207 §4.3).
        """
        self.sock = sock
        self._buffer.clear()

    def _fill(self) -> None:
        with self._mapped():
            self.sock.settimeout(self.deadline.remaining())
            chunk = self.sock.recv(_CHUNK)
        if not chunk:
            if self.deadline.expired:
                raise self._no_answer()
            raise StepFailed(Problem.CLOSED, waiting=self._waiting, raw=bytes(self._buffer[:8]))
        self._response_left -= len(chunk)
        self._connection_left -= len(chunk)
        if min(self._response_left, self._connection_left) < 0:
            raise self._too_much()
        self._buffer += chunk

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        # After the deadline the watchdog shut the socket: whatever breaks then is the
        # deadline's doing, not the server's answer.
        try:
            yield
        except TimeoutError as exc:
            raise self._no_answer() from exc
        except OSError as exc:
            if self.deadline.expired:
                raise self._no_answer() from exc
            raise

    def _no_answer(self) -> StepFailed:
        return StepFailed(
            Problem.NO_ANSWER, waiting=self._waiting, waited=time.monotonic() - self._since
        )

    def _too_much(self) -> StepFailed:
        connection = self._connection_left < self._response_left
        limit = self.budget.connection if connection else self.budget.response
        return StepFailed(Problem.TOO_MUCH, waiting=self._waiting, limit=_size(limit))


def _size(count: int) -> str:
    return f"{count // 1024 // 1024} MB" if count >= 1024 * 1024 else f"{count // 1024} kB"
