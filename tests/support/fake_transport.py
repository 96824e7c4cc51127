"""A scripted mail server behind the probe's connector: no network, no Dovecot, milliseconds.

The probe's transport takes a connector the way httpx takes a transport (httpx's
``MockTransport``): here the connector hands the probe one end of a ``socketpair`` and a
thread answers on the other from a ``Script``. The probe runs all its real code — deadline,
byte budgets, TLS with SNI and certificate checks, both protocols — and the test reads what
the server received::

    server = FakeServer(imap(LOGIN="{tag} NO [AUTHENTICATIONFAILED] Authentication failed."))
    result = run_probe(target(), **server.options())
    assert result.failed_step.name == "Sign-in"
    assert server.commands() == ["LOGIN", "EXAMINE", "LOGOUT"]

Replies are keyed by command word (IMAP's second word, POP3's first; ``"+"`` for the line
that answers a continuation). A text reply is one or more lines (``\\n``-separated,
``{tag}`` filled in); ``Stall``, ``Close``, ``Flood``, ``Raw`` and ``StartTLS`` misbehave or
switch to TLS. ``tls=True`` serves implicit TLS with a certificate for ``HOST`` that
``CA_FILE`` trusts. Turns are counted the way bench/check_all.py counts them on the wire:
each time the server answers after the client spoke last.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from tests.support.tls import make_certificate

HOST = "imap.example.com"
ADDRESS = "192.0.2.10"  # what the fake resolver answers; never dialed (RFC 5737)


@dataclass(frozen=True)
class Stall:
    """Say nothing more; hold the connection until the client gives up."""


@dataclass(frozen=True)
class Close:
    """Close the connection."""


@dataclass(frozen=True)
class Raw:
    """Send these bytes as they are (then keep listening)."""

    data: bytes


@dataclass(frozen=True)
class Flood:
    """Send ``first``, then ``line`` for ever (until the client closes)."""

    line: bytes
    first: bytes = b""


@dataclass(frozen=True)
class StartTLS:
    """Answer with ``text``, then start TLS on the server's side."""

    text: str


@dataclass(frozen=True)
class Answer:
    """Wait for whatever the client sends next (say, a TLS ClientHello), then send ``data``."""

    data: bytes


Reply = (
    str | Stall | Close | Raw | Flood | StartTLS | Answer | list["Reply"] | Callable[[str], "Reply"]
)


@dataclass(frozen=True)
class Script:
    """What the fake server says: a greeting, then a reply per command word."""

    protocol: str  # "IMAP" or "POP3"
    greeting: Reply
    replies: Mapping[str, Reply]


IMAP_CAPS = "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE STARTTLS AUTH=PLAIN AUTH=XOAUTH2"
IMAP_REPLIES: dict[str, Reply] = {
    "CAPABILITY": f"* CAPABILITY {IMAP_CAPS}\n{{tag}} OK Capability completed.",
    "LOGIN": "{tag} OK [CAPABILITY IMAP4rev1] Logged in",
    "AUTHENTICATE": "{tag} OK [CAPABILITY IMAP4rev1] Logged in",
    "EXAMINE": (
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\n* 3 EXISTS\n* 0 RECENT\n"
        "* OK [UIDVALIDITY 1] UIDs valid\n{tag} OK [READ-ONLY] Examine completed."
    ),
    "STATUS": "* STATUS INBOX (MESSAGES 3 UNSEEN 0)\n{tag} OK Status completed.",
    "LOGOUT": "* BYE Logging out\n{tag} OK Logout completed.",
    "STARTTLS": StartTLS("{tag} OK Begin TLS negotiation now."),
}
POP3_CAPA = "+OK\nTOP\nUIDL\nRESP-CODES\nPIPELINING\nUSER\nSTLS\nSASL PLAIN XOAUTH2\n."
POP3_REPLIES: dict[str, Reply] = {
    "CAPA": POP3_CAPA,
    "USER": "+OK",
    "PASS": "+OK Logged in.",
    "STAT": "+OK 3 255",
    "QUIT": "+OK Logging out.",
    "STLS": StartTLS("+OK Begin TLS negotiation now."),
}


def imap(greeting: Reply | None = None, **replies: Reply) -> Script:
    """A Dovecot-like IMAP server (capabilities in the greeting), with some replies changed."""
    hello = f"* OK [CAPABILITY {IMAP_CAPS}] Fake ready." if greeting is None else greeting
    return Script("IMAP", hello, {**IMAP_REPLIES, **replies})


def pop3(greeting: Reply = "+OK Fake ready.", **replies: Reply) -> Script:
    """A Dovecot-like POP3 server (CAPA with PIPELINING and STLS), with some replies changed."""
    return Script("POP3", greeting, {**POP3_REPLIES, **replies})


@cache
def certificate(*names: str) -> tuple[Path, Path]:
    """A self-signed certificate (and key) for ``names``, made once per test run."""
    directory = Path(tempfile.mkdtemp(prefix="mm-fake-tls-"))
    return make_certificate(directory, "fake", list(names))


CA_FILE = str(certificate(HOST)[0])


@dataclass
class Connection:
    """What one connection to the fake server saw."""

    chunks: list[bytes] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    turns: int = 0
    resumed: bool = False


class FakeServer:
    """Serves ``script`` on every connection its ``connector`` makes."""

    def __init__(
        self,
        script: Script,
        *,
        tls: bool = False,
        names: tuple[str, ...] = (HOST,),
        answers: list[str] | None = None,
    ) -> None:
        self.script = script
        self.tls = tls
        self.answers = [ADDRESS] if answers is None else answers
        self.context = _server_context(names)
        self.connections: list[Connection] = []
        self.resolved: list[str] = []
        self.dialed: list[str] = []
        self._threads: list[threading.Thread] = []

    def options(self) -> dict[str, Any]:
        """``run_probe`` keyword arguments that route the probe to this server."""
        return {"connector": self.connector, "resolver": self.resolver, "ca_file": CA_FILE}

    def resolver(self, host: str, port: int) -> list[tuple[Any, ...]]:
        self.resolved.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in self.answers]

    def connector(self, address: tuple[Any, ...], timeout: float) -> socket.socket:
        self.dialed.append(str(address[4][0]))
        client, server = socket.socketpair()
        client.settimeout(timeout)
        connection = Connection()
        self.connections.append(connection)
        thread = threading.Thread(target=self._serve, args=(server, connection), daemon=True)
        self._threads.append(thread)
        thread.start()
        return client

    def wait(self, timeout: float = 2.0) -> None:
        """Until every connection's thread ended (the client closed)."""
        for thread in self._threads:
            thread.join(timeout)

    def commands(self, connection: int = 0) -> list[str]:
        """The command words the server received on one connection, in order."""
        self.wait()
        return [_word(self.script.protocol, line) for line in self.connections[connection].lines]

    def received(self, connection: int = 0) -> str:
        self.wait()
        return "".join(c.decode(errors="replace") for c in self.connections[connection].chunks)

    def _serve(self, sock: socket.socket, seen: Connection) -> None:
        try:
            with _Speaker(sock, seen, self.script, self.context) as speaker:
                if self.tls:
                    speaker.start_tls()
                speaker.run()
        except OSError:
            pass  # the client closed or broke the connection: the test reads what was seen


class _Speaker:
    """One connection's server side."""

    def __init__(
        self, sock: socket.socket, seen: Connection, script: Script, context: ssl.SSLContext
    ) -> None:
        self.sock = sock
        self.seen = seen
        self.script = script
        self.context = context
        self.buffer = b""
        self.heard = False  # the client spoke since the server last did
        self.continuation: str | None = None  # tag waiting for a "+" answer

    def __enter__(self) -> _Speaker:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def start_tls(self) -> None:
        self.sock = self.context.wrap_socket(self.sock, server_side=True)
        self.buffer = b""
        self.seen.resumed = isinstance(self.sock, ssl.SSLSocket) and self.sock.session_reused

    def run(self) -> None:
        if not self.say(self.script.greeting, "*"):
            return
        while (line := self.read_line()) is not None:
            self.seen.lines.append(line)
            tag, word = _tag(self.script.protocol, line), _word(self.script.protocol, line)
            if self.continuation is not None:
                tag, word, self.continuation = self.continuation, "+", None
            reply = self.script.replies.get(word, _unknown(self.script.protocol))
            if not self.say(reply, tag) or word in ("LOGOUT", "QUIT"):
                return

    def say(self, reply: Reply, tag: str) -> bool:
        """Send ``reply``; False when the connection should end."""
        while callable(reply):
            reply = reply(tag)
        if isinstance(reply, list):
            return all(self.say(part, tag) for part in reply)
        if isinstance(reply, Answer):
            if not self._hear():
                return False
            reply = Raw(reply.data)
        if self.heard:
            self.seen.turns += 1
            self.heard = False
        if isinstance(reply, Stall):
            while self.sock.recv(65536):
                pass
            return False
        if isinstance(reply, Close):
            return False
        if isinstance(reply, Raw):
            self.sock.sendall(reply.data)
            return True
        if isinstance(reply, Flood):
            self.sock.sendall(reply.first)
            while True:
                self.sock.sendall(reply.line)
        text = reply.text if isinstance(reply, StartTLS) else reply
        lines = text.format(tag=tag).split("\n")
        self.sock.sendall(b"".join(line.encode() + b"\r\n" for line in lines))
        if self.script.protocol == "IMAP" and lines[-1].startswith("+"):
            self.continuation = tag
        if isinstance(reply, StartTLS):
            self.start_tls()
        return True

    def read_line(self) -> str | None:
        while b"\n" not in self.buffer:
            if not self._hear():
                return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def _hear(self) -> bool:
        chunk = self.sock.recv(65536)
        if chunk:
            self.seen.chunks.append(chunk)
            self.heard = True
            self.buffer += chunk
        return bool(chunk)


@cache
def _server_context(names: tuple[str, ...]) -> ssl.SSLContext:
    # One context per certificate for the whole run, so its session tickets stay valid.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert, key = certificate(*names)
    context.load_cert_chain(str(cert), str(key))
    return context


def _word(protocol: str, line: str) -> str:
    words = line.split(" ")
    index = 1 if protocol == "IMAP" else 0
    return words[index].upper() if len(words) > index else ""


def _tag(protocol: str, line: str) -> str:
    return line.split(" ", 1)[0] if protocol == "IMAP" else ""


def _unknown(protocol: str) -> str:
    return "{tag} BAD Unknown command." if protocol == "IMAP" else "-ERR Unknown command."
