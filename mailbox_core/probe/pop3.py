"""POP3 (RFC 1939, with RFC 2449's CAPA), as much of it as a connection test needs.

- CAPA right after the greeting: it says whether STLS and PIPELINING are offered.
- With PIPELINING, USER, PASS, STAT and QUIT leave in one write. Without it USER and PASS
  each wait for their answer, and STAT and QUIT go together (QUIT is the last command, so
  a server that reads one line at a time still answers both): never more turns than poplib.
- STAT, then QUIT: never RETR or DELE, so nothing is removed or marked as read.
- A multi-line answer is read line by line against the wire's byte budget.
"""

from __future__ import annotations

from mailbox_core.probe.diagnosis import Problem, ProtocolInfo, StepFailed, Waiting, said
from mailbox_core.probe.session import Session, command
from mailbox_core.probe.wire import Wire


class Pop3Session(Session):
    info = ProtocolInfo("POP3", plain_port=110, ssl_port=995, starttls="STLS")

    def __init__(self, wire: Wire) -> None:
        super().__init__(wire)
        self._stat_sent = False
        self._left = False  # QUIT sent

    def greet(self) -> str:
        self.wire.expect(Waiting.GREETING)
        line = self.wire.read_line()
        if line.startswith(b"-ERR"):
            raise StepFailed(Problem.GREETING_REFUSED, text=said(line))
        if not _ok(line):
            raise StepFailed(Problem.NOT_THIS_PROTOCOL, text=said(line), raw=line[:8])
        self.capabilities = self._capa()
        return f"{said(line)[:80]} · capabilities: {' '.join(sorted(self.capabilities))[:200]}"

    def start_tls(self) -> None:
        self.wire.send(command("STLS"))
        line = self._reply(Waiting.STARTTLS)
        if not _ok(line):
            raise StepFailed(Problem.STARTTLS_REFUSED, text=_text(line))

    def after_tls(self) -> None:
        self.capabilities = self._capa()

    def sign_in_with_password(self, account: str, password: str) -> None:
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

    def open_inbox(self) -> int:
        if not self._stat_sent:
            self.wire.send(self._stat_and_quit())
        line = self._reply(Waiting.MAILBOX)
        words = line.split()
        if not _ok(line) or len(words) < 2 or not words[1].isdigit() or len(words[1]) > 18:
            raise StepFailed(Problem.NO_INBOX, text=_text(line))
        return int(words[1])

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

    def _capa(self) -> frozenset[str]:
        self.wire.send(command("CAPA"))
        if not _ok(self._reply(Waiting.CAPABILITIES)):
            return frozenset()  # a server without CAPA (RFC 1939 only)
        names: set[str] = set()
        while (line := self.wire.read_line()) != b".":
            names.add(line.split(b" ", 1)[0].decode(errors="replace").upper())
        return frozenset(names)


def _ok(line: bytes) -> bool:
    return line[:3].upper() == b"+OK"


def _text(line: bytes) -> str:
    """What the server said after its status word."""
    return said(line[4:] if line[:4].upper() == b"-ERR" else line)
