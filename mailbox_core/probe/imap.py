"""IMAP4rev1 (RFC 3501), as much of it as a connection test needs, in few round trips.

- The greeting usually carries the capabilities (Dovecot, Gmail and Outlook send them):
  CAPABILITY is asked only when it does not.
- Sign-in, EXAMINE INBOX and LOGOUT leave in one write (pipelining, RFC 3501 §5.5). If
  the sign-in fails the server refuses the other two, and the verdict is the sign-in's.
- With vital signs, STATUS INBOX (MESSAGES UNSEEN) goes along before EXAMINE, and one
  second write asks what the first answers made worth asking (GETQUOTAROOT once the
  post-login capabilities offer QUOTA, FETCH INTERNALDATE of the first unseen message,
  SEARCH for what arrived since), with LOGOUT: at most one more round trip, and none when
  there is nothing to ask. A server whose EXAMINE names no first unseen message (IMAP4rev2,
  RFC 9051, dropped ``[UNSEEN n]``) is asked ``SEARCH RETURN (SAVE MIN) UNSEEN`` and
  ``FETCH $`` in that same write where it offers SEARCHRES (RFC 5182): no turn more.
  Parsing lives in imap_vitals.py; a reply it cannot read is an unknown (None), never a
  failed check.
- XOAUTH2 waits for its answer instead: a refused token gets an error challenge that is
  answered with an empty line, and a pipelined EXAMINE would be taken for that answer.
- LOGIN is ASCII-only; AUTHENTICATE PLAIN carries UTF-8 passwords.
- EXAMINE, never SELECT: read-only, so not even the \\Recent flags change; STATUS,
  GETQUOTAROOT, SEARCH and FETCH INTERNALDATE read without changing a flag.
- No password is sent to a server that offers no password sign-in (LOGINDISABLED and no
  AUTH=PLAIN/LOGIN).
- Literals ({n}) are skipped against the wire's byte budget, never kept.
"""

from __future__ import annotations

import base64
import itertools
import math
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mailbox_core.probe import imap_vitals as parse
from mailbox_core.probe.diagnosis import Problem, ProtocolInfo, StepFailed, Waiting, said
from mailbox_core.probe.session import Session, command
from mailbox_core.probe.vitals import Backlog, Quota, Vitals
from mailbox_core.probe.wire import Wire

_SEARCH = b"* SEARCH"


@dataclass(frozen=True)
class Reply:
    """The end of an answer: the tagged status (or "+" for a continuation) and its text."""

    tag: str
    status: bytes
    text: bytes
    untagged: list[bytes] = field(default_factory=list)
    found: int | None = None  # how many numbers a SEARCH line in the answer held


@dataclass
class _Read:
    """What the answers so far said about INBOX."""

    exists: int | None = None
    status: dict[str, int | None] = field(default_factory=dict)
    first_unseen: int | None = None
    quota: Quota | None = None
    oldest_unseen_at: datetime | None = None
    arrived_since: int | None = None


class ImapSession(Session):
    info = ProtocolInfo("IMAP", plain_port=143, ssl_port=993, starttls="STARTTLS")

    def __init__(self, wire: Wire, *, vitals: bool = False) -> None:
        super().__init__(wire, vitals=vitals)
        self._tags = (f"a{n}" for n in itertools.count(1))
        self._examine: str | None = None  # tag of the EXAMINE, once sent
        self._status: str | None = None  # tag of the STATUS sent with it
        self._quota: str | None = None  # tag of a GETQUOTAROOT sent with it
        self._left = False  # LOGOUT sent
        self._signed_in: frozenset[str] = frozenset()  # the post-login capabilities
        self._read = _Read()

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
        self.greeted = self.capabilities
        return f"{said(line)[:80]} · capabilities: {' '.join(sorted(self.capabilities))[:200]}"

    def start_tls(self) -> None:
        tag = self._tag()
        self.wire.send(command(tag, "STARTTLS"))
        reply = self._answer(tag, Waiting.STARTTLS)
        if reply.status != b"OK":
            raise StepFailed(Problem.STARTTLS_REFUSED, text=said(reply.text))

    def after_tls(self) -> None:
        self.capabilities = self._ask_capabilities()
        self.tls_started = True

    def mechanisms(self) -> frozenset[str]:
        return frozenset(c[5:] for c in self.capabilities if c.startswith("AUTH=") and c[5:])

    def login_disabled(self) -> bool:
        return "LOGINDISABLED" in self.capabilities

    def password_offered(self) -> bool:
        # Dovecot (2.3.19, checked): disable_plaintext_auth = yes on an unencrypted
        # connection sends LOGINDISABLED and drops every AUTH= (PLAIN and LOGIN too); an
        # auth_mechanisms without plain/login sends LOGINDISABLED and only the mechanisms
        # left (AUTH=XOAUTH2) on a TLS (or same-address) connection, but on an unencrypted
        # one from another address neither: LOGIN is then refused with "Unsupported
        # authentication mechanism", which diagnosis reads as this same verdict.
        return not self.login_disabled() or bool({"PLAIN", "LOGIN"} & self.mechanisms())

    def sign_in_with_password(self, account: str, password: str) -> None:
        self.refuse_unless_password_offered()
        tag, mechanisms = self._tag(), self.mechanisms()
        if _quotable(account, password) and not self.login_disabled():
            login = command(tag, "LOGIN", _quote(account), _quote(password))
            self.wire.send(login + self._open_commands())
            reply = self._answer(tag, Waiting.SIGN_IN)
        elif "PLAIN" in mechanisms or "LOGIN" not in mechanisms:
            # LOGIN is ASCII-only; AUTHENTICATE PLAIN carries UTF-8
            plain = f"\0{account}\0{password}"
            reply = self._authenticate(tag, "PLAIN", plain, then=self._open_commands())
        else:
            reply = self._authenticate_login(tag, account, password)
        if reply.status != b"OK":
            raise StepFailed(Problem.PASSWORD_REFUSED, text=said(reply.text))
        self._note_capabilities(reply)

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
        self._note_capabilities(reply)

    def open_inbox(self) -> int:
        if self._examine is None:
            self.wire.send(self._open_commands())
        assert self._examine is not None
        if self._status is not None:
            self._read.status = parse.status(self._answer(self._status, Waiting.MAILBOX).untagged)
        if self._quota is not None:
            self._read.quota = self._quota_of(self._answer(self._quota, Waiting.MAILBOX))
        reply = self._answer(self._examine, Waiting.MAILBOX)
        if reply.status != b"OK":
            raise StepFailed(Problem.NO_INBOX, text=said(reply.text))
        self._read.exists = _exists(reply.untagged)
        self._read.first_unseen = parse.first_unseen(reply.untagged)
        return self._read.exists

    def vitals(self, since: datetime | None = None) -> Vitals:
        """Ask, in one write with LOGOUT, what the first answers made worth asking."""
        asks, batch = self._vital_commands(since)
        self.wire.send(batch + self._logout())
        replies: dict[str, Reply] = {}
        try:
            for _kind, tag in asks:
                replies[tag] = self._answer(tag, Waiting.VITALS, search=True)
        except (StepFailed, OSError):
            pass  # what was not read stays unknown; the mailbox was opened all the same
        # Dovecot answers pipelined commands out of step: the untagged ESEARCH of a SEARCH
        # may come before the tagged end of the FETCH sent ahead of it. So each answer is
        # read from every untagged line of the batch (each names its tag or message).
        untagged = [line for reply in replies.values() for line in reply.untagged]
        found = [r.found for r in replies.values() if r.found is not None]
        for kind, tag in asks:
            if tag in replies:
                self._take(kind, tag, replies[tag], untagged, found[-1] if found else None)
        read = self._read
        messages = read.exists if read.exists is not None else read.status.get("MESSAGES")
        backlog = Backlog(
            messages=messages,
            unseen=read.status.get("UNSEEN"),
            oldest_unseen_at=read.oldest_unseen_at,
            arrived_since=read.arrived_since,
        )
        return Vitals(quota=read.quota, backlog=backlog)

    def leave(self) -> None:
        if not self._left:
            self.wire.send(self._logout())

    # -- helpers

    def _tag(self) -> str:
        return next(self._tags)

    def _open_commands(self) -> bytes:
        """What follows the sign-in in its write: (STATUS, GETQUOTAROOT,) EXAMINE (, LOGOUT)."""
        batch = b""
        if self.vitals_wanted:
            # STATUS before EXAMINE: RFC 3501 advises against STATUS on the open mailbox.
            self._status = self._tag()
            batch += command(self._status, "STATUS", "INBOX", "(MESSAGES UNSEEN)")
            if "QUOTA" in self.capabilities:  # rare before login (Gmail); else in vitals()
                self._quota = self._tag()
                batch += command(self._quota, "GETQUOTAROOT", "INBOX")
        self._examine = self._tag()
        batch += command(self._examine, "EXAMINE", "INBOX")
        # LOGOUT goes along: its answer is never waited for, so it costs no round trip.
        # With vital signs it goes with the second write instead.
        return batch if self.vitals_wanted else batch + self._logout()

    def _vital_commands(self, since: datetime | None) -> tuple[list[tuple[str, str]], bytes]:
        caps = self._signed_in or self.capabilities
        asks: list[tuple[str, str]] = []
        batch = b""
        if self._quota is None and "QUOTA" in caps:
            asks.append(("quota", self._tag()))
            batch += command(asks[-1][1], "GETQUOTAROOT", "INBOX")
        unseen, first = self._read.status.get("UNSEEN"), self._read.first_unseen
        if first is not None and unseen != 0:
            asks.append(("fetch", self._tag()))
            batch += command(asks[-1][1], "FETCH", str(first), "(INTERNALDATE)")
        elif unseen != 0 and "SEARCHRES" in caps:
            # $ is the saved result (the lowest unseen number): pipelined, RFC 5182 §2.1.
            asks.append(("first", self._tag()))
            batch += command(asks[-1][1], "SEARCH", "RETURN", "(SAVE MIN)", "UNSEEN")
            asks.append(("fetch", self._tag()))
            batch += command(asks[-1][1], "FETCH", "$", "(INTERNALDATE)")
        if since is not None:
            asks.append(("search", self._tag()))
            batch += command(asks[-1][1], "SEARCH", *_since(since, caps))
        return asks, batch

    def _take(
        self, kind: str, tag: str, reply: Reply, untagged: list[bytes], found: int | None
    ) -> None:
        ok = reply.status == b"OK"
        if kind == "first" and ok:  # asked before its FETCH: taken first
            self._read.first_unseen = parse.esearch(untagged, tag, "MIN")
        first = self._read.first_unseen
        if kind == "quota":
            self._read.quota = parse.quota(untagged) if ok else None
        elif kind == "fetch" and ok and first is not None:
            self._read.oldest_unseen_at = parse.internaldate(untagged, first)
        elif kind == "search" and ok:
            counted = parse.esearch(untagged, tag)
            self._read.arrived_since = counted if counted is not None else found

    @staticmethod
    def _quota_of(reply: Reply) -> Quota | None:
        return parse.quota(reply.untagged) if reply.status == b"OK" else None

    def _note_capabilities(self, reply: Reply) -> None:
        """The post-login capabilities, when the sign-in's answer carries them."""
        listed = [line[11:] for line in reply.untagged if line[:11].upper() == b"CAPABILITY "]
        code = _capability_code(reply.text)
        self._signed_in = code or _words(b" ".join(listed))

    def _logout(self) -> bytes:
        self._left = True
        return command(self._tag(), "LOGOUT")

    def _authenticate(self, tag: str, mechanism: str, credentials: str, then: bytes = b"") -> Reply:
        """AUTHENTICATE, its answer in the command (SASL-IR) or after the server's "+"."""
        answer = _base64(credentials)
        if "SASL-IR" in self.capabilities:
            self.wire.send(command(tag, "AUTHENTICATE", mechanism, answer) + then)
        else:
            self.wire.send(command(tag, "AUTHENTICATE", mechanism))
            reply = self._answer(tag, Waiting.SIGN_IN)
            if reply.status != b"+":
                return reply
            self.wire.send(command(answer) + then)
        return self._answer(tag, Waiting.SIGN_IN)

    def _authenticate_login(self, tag: str, account: str, password: str) -> Reply:
        """AUTHENTICATE LOGIN (a server with LOGINDISABLED and no AUTH=PLAIN): two "+"."""
        self.wire.send(command(tag, "AUTHENTICATE", "LOGIN"))
        for answer, then in ((account, b""), (password, self._open_commands())):
            reply = self._answer(tag, Waiting.SIGN_IN)
            if reply.status != b"+":
                return reply
            self.wire.send(command(_base64(answer)) + then)
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

    def _answer(self, tag: str, waiting: Waiting, *, search: bool = False) -> Reply:
        """Read up to the answer tagged ``tag`` (or a "+" continuation).

        With ``search``, a SEARCH line is counted as it is read, never kept whole.
        """
        self.wire.expect(waiting)
        untagged: list[bytes] = []
        found: int | None = None
        while True:
            if search and _is_search(self.wire.peek(len(_SEARCH) + 1)):
                found = self._count_search()
                continue
            line = self._line()
            if line.startswith(b"* "):
                untagged.append(line[2:])
            elif line.startswith(b"+"):
                return Reply(tag, b"+", line[2:], untagged)
            else:
                got, _, rest = line.partition(b" ")
                if got == tag.encode():
                    status, _, text = rest.partition(b" ")
                    return Reply(tag, status.upper(), text, untagged, found)

    def _count_search(self) -> int | None:
        counter, skip = parse.Counter(), len(_SEARCH)
        for piece in self.wire.read_pieces():
            counter.feed(piece[skip:])
            skip = max(0, skip - len(piece))
        return counter.end()

    def _line(self) -> bytes:
        """One response line; each literal in it is skipped and charged to the budget."""
        parts = [self.wire.read_line()]
        while (literal := _literal(parts[-1])) is not None:
            parts[-1], size = literal
            self.wire.discard(size)
            parts.append(self.wire.read_line())
        return b"{}".join(parts)


def _is_search(head: bytes) -> bool:
    return head[:-1].upper() == _SEARCH and head[-1:] in (b" ", b"\r", b"\n")


def _since(moment: datetime, caps: frozenset[str]) -> list[str]:
    """SEARCH criteria for what arrived since ``moment``, counted by the server if it can."""
    count = ["RETURN", "(COUNT)"] if "ESEARCH" in caps else []
    if "WITHIN" in caps:  # RFC 5032: to the second, where SINCE counts whole days
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        age = datetime.now(UTC) - aware
        return [*count, "YOUNGER", str(max(1, math.ceil(age.total_seconds())))]
    return [*count, "SINCE", parse.imap_date(moment)]


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


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
