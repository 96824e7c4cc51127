"""Small socket servers that misbehave, to prove the probe never hangs, raises or bloats."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

Behaviour = Callable[[socket.socket], None]


class HostileServer:
    """Accepts on 127.0.0.1 and runs ``behaviour`` on each connection in a thread."""

    def __init__(self, behaviour: Behaviour, *, tls: tuple[Path, Path] | None = None) -> None:
        self.behaviour = behaviour
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self.context: ssl.SSLContext | None = None
        if tls:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(str(tls[0]), str(tls[1]))
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            if self.context:
                conn = self.context.wrap_socket(conn, server_side=True)
            self.behaviour(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


def silent(conn: socket.socket) -> None:
    """Accept and never speak."""
    time.sleep(30)


def late(seconds: float) -> Behaviour:
    def behaviour(conn: socket.socket) -> None:
        time.sleep(seconds)
        conn.sendall(b"* OK late\r\n")
        time.sleep(5)

    return behaviour


def garbage(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    time.sleep(2)


def dribble(conn: socket.socket) -> None:
    """One byte of a never-ending greeting every 0.2 s."""
    for _ in range(200):
        conn.sendall(b"*")
        time.sleep(0.2)


def imap_greeting(conn: socket.socket) -> None:
    conn.sendall(b"* OK [CAPABILITY IMAP4rev1] ready\r\n")
    time.sleep(5)


def imap_mute_after_greeting(conn: socket.socket) -> None:
    """Greets, then never answers (the sign-in waits for nothing)."""
    conn.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
    time.sleep(5)


class Servers:
    """Hostile servers started by one test, all stopped at its end."""

    def __init__(self) -> None:
        self.running: list[HostileServer] = []

    def start(self, behaviour: Behaviour, tls: tuple[Path, Path] | None = None) -> int:
        server = HostileServer(behaviour, tls=tls)
        self.running.append(server)
        return server.port

    def stop(self) -> None:
        for server in self.running:
            server.stop()


# ---------------------------------------------------------------- floods (issue 11, D2)

LINE_2K = b"X" * 2046 + b"\r\n"
GIGABYTE = 1024**3


def _await_line(conn: socket.socket) -> None:
    """Read until the client has sent one whole line (its command)."""
    seen = b""
    while b"\n" not in seen:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionResetError("the client left")
        seen += chunk


def _for_ever(conn: socket.socket, data: bytes) -> None:
    while True:  # until the client closes and sendall raises
        conn.sendall(data)


def pop3_endless_capa(conn: socket.socket) -> None:
    """Greets, then answers CAPA with +OK and 2 kB lines that never end."""
    conn.sendall(b"+OK ready\r\n")
    _await_line(conn)
    conn.sendall(b"+OK\r\n")
    _for_ever(conn, LINE_2K * 32)


def imap_endless_capability(conn: socket.socket) -> None:
    """Greets without capabilities, then answers CAPABILITY with untagged lines for ever."""
    conn.sendall(b"* OK ready\r\n")
    _await_line(conn)
    _for_ever(conn, (b"* CAPABILITY IMAP4rev1 " + b"X" * 2024 + b"\r\n") * 32)


def imap_huge_literal(conn: socket.socket) -> None:
    """Greets, then answers CAPABILITY with a 1 GB literal (and sends all of it)."""
    conn.sendall(b"* OK ready\r\n")
    _await_line(conn)
    conn.sendall(b"* CAPABILITY {%d}\r\n" % GIGABYTE)
    block = b"Y" * (1024 * 1024)
    for _ in range(GIGABYTE // len(block)):
        conn.sendall(block)
    conn.sendall(b"\r\na1 OK done\r\n")


class CaptureServer(HostileServer):
    """A plain IMAP server that accepts any LOGIN and records every byte it receives."""

    def __init__(self) -> None:
        self.connections = 0
        self.received = bytearray()
        super().__init__(self._speak)

    def received_text(self) -> str:
        return self.received.decode(errors="replace")

    def _speak(self, conn: socket.socket) -> None:
        self.connections += 1
        conn.settimeout(5)
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] capture ready\r\n")
        reader = conn.makefile("rb")
        for line in reader:
            self.received += line
            tag = line.split(b" ", 1)[0]
            command = line.split(b" ")[1].upper() if b" " in line else b""
            if command == b"LOGOUT":
                conn.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                return
            if command == b"EXAMINE":
                conn.sendall(b"* 0 EXISTS\r\n" + tag + b" OK [READ-ONLY] done\r\n")
            else:
                conn.sendall(tag + b" OK done\r\n")
