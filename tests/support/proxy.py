"""A counting TCP proxy on 127.0.0.1 for the never-harm tests (and a slow one for leases).

Counts connections and, on plain IMAP, the sign-ins the client sends and the refusals
the server answers with, so a test sees what the mail server saw. ``delay`` holds every
chunk that long in each direction (a round trip costs twice that).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class CountingProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``upstream``; stop() closes everything."""

    def __init__(self, upstream: int, *, delay: float = 0.0, port: int = 0) -> None:
        self.upstream, self.delay = upstream, delay
        self.listener = socket.create_server(("127.0.0.1", port), backlog=512)
        self.port: int = self.listener.getsockname()[1]
        self.connections = self.logins = self.refusals = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(("127.0.0.1", self.upstream), timeout=30)
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets += [client, server]
        threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()
        self._pump(client, server, True)

    def _pump(self, source: socket.socket, target: socket.socket, upward: bool) -> None:
        try:
            while chunk := source.recv(65536):
                self._count(chunk, upward)
                if self.delay:
                    time.sleep(self.delay)
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _count(self, chunk: bytes, upward: bool) -> None:
        with self._lock:
            if upward:
                self.logins += chunk.count(b" LOGIN ")
            else:
                self.refusals += chunk.count(b"AUTHENTICATIONFAILED")

    def stop(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close alone does not
        self.listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()
