"""POP3 (RFC 1939, with RFC 2449's CAPA), as much of it as a connection test needs.

- CAPA right after the greeting: it says whether STLS and PIPELINING are offered.
- With PIPELINING, USER, PASS, STAT and QUIT leave in one write. Without it USER and PASS
  each wait for their answer, and STAT and QUIT go together (QUIT is the last command, so
  a server that reads one line at a time still answers both): never more turns than poplib.
- STAT, then QUIT: never RETR or DELE, so nothing is removed or marked as read. STAT's
  count is the only vital sign POP3 has (no quota: "unknown").
- CAPA's USER and SASL lines say whether a password sign-in is offered: without USER but
  with SASL PLAIN the password goes in AUTH PLAIN; with neither, it is not sent at all.
- A multi-line answer is read line by line against the wire's byte budget.
"""

from __future__ import annotations

import base64
from datetime import datetime

from mailbox_core.probe.diagnosis import Problem, ProtocolInfo, StepFailed, Waiting, said
from mailbox_core.probe.session import Session, command
from mailbox_core.probe.vitals import Backlog, Vitals
from mailbox_core.probe.wire import Wire


class Pop3Session(Session):
    info = ProtocolInfo("POP3", plain_port=110, ssl_port=995, starttls="STLS")

    def __init__(self, wire: Wire, *, vitals: bool = False) -> None:
        super().__init__(wire, vitals=vitals)
        self._stat_sent = False
        self._left = False  # QUIT sent
        self._capa = False  # the server answered CAPA (else nothing is known of its offer)
        self._messages: int | None = None

    def greet(self) -> str:
        self.wire.expect(Waiting.GREETING)
        line = self.wire.read_line()
        if line.startswith(b"-ERR"):
            raise StepFailed(Problem.GREETING_REFUSED, text=said(line))
        if not _ok(line):
            raise StepFailed(Problem.NOT_THIS_PROTOCOL, text=said(line), raw=line[:8])
        self.capabilities = self._ask_capa()
        self.greeted = self.capabilities
        return f"{said(line)[:80]} · capabilities: {' '.join(sorted(self.capabilities))[:200]}"

    def start_tls(self) -> None:
        self.wire.send(command("STLS"))
        line = self._reply(Waiting.STARTTLS)
        if not _ok(line):
            raise StepFailed(Problem.STARTTLS_REFUSED, text=_text(line))

    def after_tls(self) -> None:
        self.capabilities = self._ask_capa()
        self.tls_started = True

    def mechanisms(self) -> frozenset[str]:
        return frozenset(c[5:] for c in self.capabilities if c.startswith("SASL="))

    def login_disabled(self) -> bool:
        return self._capa and "USER" not in self.capabilities

    def password_offered(self) -> bool:
        # Dovecot (2.3.19, checked): disable_plaintext_auth = yes on an unencrypted
        # connection drops USER and empties the SASL line; an auth_mechanisms without
        # plain/login keeps USER (PASS is then refused with "Unsupported authentication
        # mechanism", which diagnosis reads as this same verdict).
        return not self.login_disabled() or bool({"PLAIN", "LOGIN"} & self.mechanisms())

    def sign_in_with_password(self, account: str, password: str) -> None:
        self.refuse_unless_password_offered()
        if self.login_disabled() and "PLAIN" in self.mechanisms():
            return self._auth_plain(account, password)
        user, pass_ = command("USER", account), command("PASS", password)
        pipelined = "PIPELINING" in self.capabilities
        self.wire.send(user + pass_ + self._stat_and_quit() if pipelined else user)
        reply = self._reply(Waiting.SIGN_IN)
        if _ok(reply):
            if not pipelined:
                self.wire.send(pass_)
            reply = self._reply(Waiting.SIGN_IN)
        if not _ok(reply):
            raise StepFailed(Problem.PASSWORD_REFUSED, text=_text(reply))

    def sign_in_with_token(self, account: str, token: str) -> None:
        raise StepFailed(Problem.OAUTH_NOT_FOR_POP3)

    def _auth_plain(self, account: str, password: str) -> None:
        """AUTH PLAIN with its initial response (RFC 5034), for a server without USER."""
        plain = base64.b64encode(f"\0{account}\0{password}".encode()).decode()
        pipelined = "PIPELINING" in self.capabilities
        then = self._stat_and_quit() if pipelined else b""
        self.wire.send(command("AUTH", "PLAIN", plain) + then)
        reply = self._reply(Waiting.SIGN_IN)
        if not _ok(reply):
            raise StepFailed(Problem.PASSWORD_REFUSED, text=_text(reply))

    def open_inbox(self) -> int:
        if not self._stat_sent:
            self.wire.send(self._stat_and_quit())
        line = self._reply(Waiting.MAILBOX)
        words = line.split()
        if not _ok(line) or len(words) < 2 or not words[1].isdigit() or len(words[1]) > 18:
            raise StepFailed(Problem.NO_INBOX, text=_text(line))
        self._messages = int(words[1])
        return self._messages

    def vitals(self, since: datetime | None = None) -> Vitals:
        """STAT's count; POP3 says nothing of quotas, unseen mail or arrival times."""
        return Vitals(quota=None, backlog=Backlog(messages=self._messages))

    def leave(self) -> None:
        if not self._left:
            self.wire.send(self._quit())

    # -- helpers

    def _stat_and_quit(self) -> bytes:
        # QUIT goes along: its answer is never waited for, so it costs no round trip.
        self._stat_sent = True
        return command("STAT") + self._quit()

    def _quit(self) -> bytes:
        self._left = True
        return command("QUIT")

    def _reply(self, waiting: Waiting) -> bytes:
        self.wire.expect(waiting)
        return self.wire.read_line()

    def _ask_capa(self) -> frozenset[str]:
        """CAPA's names; the SASL line's mechanisms as "SASL=PLAIN" (like IMAP's AUTH=)."""
        self.wire.send(command("CAPA"))
        self._capa = _ok(self._reply(Waiting.CAPABILITIES))
        if not self._capa:
            return frozenset()  # a server without CAPA (RFC 1939 only)
        names: set[str] = set()
        while (line := self.wire.read_line()) != b".":
            words = line.decode(errors="replace").upper().split()
            if words:
                names.add(words[0])
            if words[:1] == ["SASL"]:
                names.update(f"SASL={w}" for w in words[1:])
        return frozenset(names)


def _ok(line: bytes) -> bool:
    return line[:3].upper() == b"+OK"


def _text(line: bytes) -> str:
    """What the server said after its status word."""
    return said(line[4:] if line[:4].upper() == b"-ERR" else line)
