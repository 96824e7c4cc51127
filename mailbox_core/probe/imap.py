"""IMAP4rev1 (RFC 3501), as much of it as a connection test needs, in few round trips.

- The greeting usually carries the capabilities (Dovecot, Gmail and Outlook send them):
  CAPABILITY is asked only when it does not.
- Sign-in, EXAMINE INBOX and LOGOUT leave in one write (pipelining, RFC 3501 §5.5). If
  the sign-in fails the server refuses the other two, and the verdict is the sign-in's.
- XOAUTH2 waits for its answer instead: a refused token gets an error challenge that is
  answered with an empty line, and a pipelined EXAMINE would be taken for that answer.
- LOGIN is ASCII-only; AUTHENTICATE PLAIN carries UTF-8 passwords.
- EXAMINE, never SELECT: read-only, so not even the \\Recent flags change.
- Literals ({n}) are skipped against the wire's byte budget, never kept.
"""

from __future__ import annotations

import base64
import itertools
import sys
from dataclasses import dataclass, field

from mailbox_core.probe.diagnosis import Problem, ProtocolInfo, StepFailed, Waiting, said
from mailbox_core.probe.session import Session, command
from mailbox_core.probe.wire import Wire


@dataclass(frozen=True)
class Reply:
    """The end of an answer: the tagged status (or "+" for a continuation) and its text."""

    tag: str
    status: bytes
    text: bytes
    untagged: list[bytes] = field(default_factory=list)


class ImapSession(Session):
    info = ProtocolInfo("IMAP", plain_port=143, ssl_port=993, starttls="STARTTLS")

    def __init__(self, wire: Wire) -> None:
        super().__init__(wire)
        self._tags = (f"a{n}" for n in itertools.count(1))
        self._examine: str | None = None  # tag of the EXAMINE, once sent
        self._left = False  # LOGOUT sent

    def greet(self) -> str:
        self.wire.expect(Waiting.GREETING)
        line = self._line()
        star, _, rest = line.partition(b" ")
        status = rest.split(b" ", 1)[0].upper()
        if star != b"*" or status not in (b"OK", b"PREAUTH", b"BYE"):
            raise StepFailed(Problem.NOT_THIS_PROTOCOL, text=said(line), raw=line[:8])
        if status == b"BYE":
            raise StepFailed(Problem.GREETING_REFUSED, text=said(line))
        self.capabilities = _capability_code(line) or self._ask_capabilities()
        return f"{said(line)[:80]} · capabilities: {' '.join(sorted(self.capabilities))[:200]}"

    def start_tls(self) -> None:
        tag = self._tag()
        self.wire.send(command(tag, "STARTTLS"))
        reply = self._answer(tag, Waiting.STARTTLS)
        if reply.status != b"OK":
            raise StepFailed(Problem.STARTTLS_REFUSED, text=said(reply.text))

    def after_tls(self) -> None:
        self.capabilities = self._ask_capabilities()

    def sign_in_with_password(self, account: str, password: str) -> None:
        tag = self._tag()
        if _quotable(account, password) and "LOGINDISABLED" not in self.capabilities:
            login = command(tag, "LOGIN", _quote(account), _quote(password))
            self.wire.send(login + self._examine_and_logout())
            reply = self._answer(tag, Waiting.SIGN_IN)
        else:  # LOGIN is ASCII-only; AUTHENTICATE PLAIN carries UTF-8
            plain = f"\0{account}\0{password}"
            reply = self._authenticate(tag, "PLAIN", plain, then=self._examine_and_logout())
        if reply.status != b"OK":
            raise StepFailed(Problem.PASSWORD_REFUSED, text=said(reply.text))

    def sign_in_with_token(self, account: str, token: str) -> None:
        tag = self._tag()
        reply = self._authenticate(tag, "XOAUTH2", f"user={account}\x01auth=Bearer {token}\x01\x01")
        if reply.status == b"+":
            # A refused token gets an error challenge: an empty answer brings the final NO.
            self.wire.send(b"\r\n")
            reply = self._answer(tag, Waiting.SIGN_IN)
        if reply.status != b"OK":
            unavailable = b"UNAVAILABLE" in reply.text.upper()
            problem = Problem.TOKEN_UNVERIFIED if unavailable else Problem.TOKEN_REFUSED
            raise StepFailed(problem, text=said(reply.text))

    def open_inbox(self) -> int:
        if self._examine is None:
            self.wire.send(self._examine_and_logout())
        assert self._examine is not None
        reply = self._answer(self._examine, Waiting.MAILBOX)
        if reply.status != b"OK":
            raise StepFailed(Problem.NO_INBOX, text=said(reply.text))
        return _exists(reply.untagged)

    def leave(self) -> None:
        if not self._left:
            self.wire.send(self._logout())

    # -- helpers

    def _tag(self) -> str:
        return next(self._tags)

    def _examine_and_logout(self) -> bytes:
        # LOGOUT goes along: its answer is never waited for, so it costs no round trip.
        self._examine = self._tag()
        return command(self._examine, "EXAMINE", "INBOX") + self._logout()

    def _logout(self) -> bytes:
        self._left = True
        return command(self._tag(), "LOGOUT")

    def _authenticate(self, tag: str, mechanism: str, credentials: str, then: bytes = b"") -> Reply:
        """AUTHENTICATE, its answer in the command (SASL-IR) or after the server's "+"."""
        answer = base64.b64encode(credentials.encode()).decode()
        if "SASL-IR" in self.capabilities:
            self.wire.send(command(tag, "AUTHENTICATE", mechanism, answer) + then)
        else:
            self.wire.send(command(tag, "AUTHENTICATE", mechanism))
            reply = self._answer(tag, Waiting.SIGN_IN)
            if reply.status != b"+":
                return reply
            self.wire.send(command(answer) + then)
        return self._answer(tag, Waiting.SIGN_IN)

    def _ask_capabilities(self) -> frozenset[str]:
        tag = self._tag()
        self.wire.send(command(tag, "CAPABILITY"))
        reply = self._answer(tag, Waiting.CAPABILITIES)
        words = [
            line.split(b" ", 1)[1]
            for line in reply.untagged
            if line.upper().startswith(b"CAPABILITY ")
        ]
        return _words(b" ".join(words))

    def _answer(self, tag: str, waiting: Waiting) -> Reply:
        """Read up to the answer tagged ``tag`` (or a "+" continuation)."""
        self.wire.expect(waiting)
        untagged: list[bytes] = []
        while True:
            line = self._line()
            if line.startswith(b"* "):
                untagged.append(line[2:])
            elif line.startswith(b"+"):
                return Reply(tag, b"+", line[2:], untagged)
            else:
                got, _, rest = line.partition(b" ")
                if got == tag.encode():
                    status, _, text = rest.partition(b" ")
                    return Reply(tag, status.upper(), text, untagged)

    def _line(self) -> bytes:
        """One response line; each literal in it is skipped and charged to the budget."""
        parts = [self.wire.read_line()]
        while (literal := _literal(parts[-1])) is not None:
            parts[-1], size = literal
            self.wire.discard(size)
            parts.append(self.wire.read_line())
        return b"{}".join(parts)


def _literal(line: bytes) -> tuple[bytes, int] | None:
    """A line ending in a literal's size, ``{n}``: the text before it, and n."""
    start = line.rfind(b"{")
    digits = line[start + 1 : -1].removesuffix(b"+")
    if not line.endswith(b"}") or start < 0 or not digits.isdigit():
        return None
    return line[:start], int(digits) if len(digits) <= 18 else sys.maxsize


def _capability_code(line: bytes) -> frozenset[str]:
    start = line.upper().find(b"[CAPABILITY ")
    end = line.find(b"]", start)
    return _words(line[start + 12 : end]) if start >= 0 and end > start else frozenset()


def _words(text: bytes) -> frozenset[str]:
    return frozenset(w.upper() for w in text.decode(errors="replace").split())


def _exists(untagged: list[bytes]) -> int:
    counts = [w[0] for w in (line.split() for line in untagged) if w[1:2] == [b"EXISTS"]]
    return int(counts[-1]) if counts and counts[-1].isdigit() and len(counts[-1]) < 19 else 0


def _quotable(*texts: str) -> bool:
    return all(t.isascii() and not any(ch in t for ch in "\r\n\0") for t in texts)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
