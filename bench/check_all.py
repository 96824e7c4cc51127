"""Check all, measured: the product against stdlib baselines, through a latency proxy.

    .venv/bin/python -m bench.check_all [--mailboxes 1000] [--rtt-ms 100]

Starts a tuned private Dovecot (IMAPS), puts a TCP proxy in front of it that delays every
chunk by RTT/2 in each direction (run in its own process), registers N mailboxes in a
fresh SQLite database, then times, in the same run:

1. the product's Check all (MailboxChecker.check_many) at its default settings;
2. a sequential loop of stdlib logins (imaplib.IMAP4_SSL: connect, TLS, LOGIN, EXAMINE
   INBOX, LOGOUT) on a sample, scaled up to N and said so;
3. a bare thread pool of the same stdlib logins, swept over worker counts; the best of
   the sweep is the practical limit of this machine.

The proxy does not delay the TCP handshake itself (it is local), so every figure is
about one RTT lower per connection than on a real network; all three share that.
Needs Dovecot (apt-get install dovecot-imapd). Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import multiprocessing
import resource
import ssl
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailbox_core.access import Actor  # noqa: E402
from mailbox_core.bootstrap import open_services  # noqa: E402
from mailbox_core.config import load_settings  # noqa: E402
from tests.support import dovecot  # noqa: E402

ACTOR = Actor.operator("bench")

USER, PASSWORD = "alice@example.com", dovecot.USERS["alice@example.com"]


# ---------------------------------------------------------------- latency proxy


class _Side(asyncio.Protocol):
    """One end of a proxied connection; what it receives reaches the peer ``delay`` later.

    Protocols with one ordered flush timer per direction keep the proxy's own CPU low:
    it shares the machine's cores with the client and Dovecot being measured.
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.pending: deque[tuple[float, bytes]] = deque()
        self.flush_at: asyncio.TimerHandle | None = None
        self.early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._send(data)

    def eof_received(self) -> bool:
        self._send(b"")
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._send(b"")

    def _send(self, data: bytes) -> None:
        self.pending.append((self.loop.time() + self.delay, data))
        if self.flush_at is None:
            self.flush_at = self.loop.call_at(self.pending[0][0], self._flush)

    def _flush(self) -> None:
        self.flush_at = None
        now = self.loop.time()
        while self.pending and self.pending[0][0] <= now:
            _, data = self.pending.popleft()
            self.peer_write(data)
        if self.pending:
            self.flush_at = self.loop.call_at(self.pending[0][0], self._flush)

    def peer_write(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self.early.append(data)
        elif not data:
            peer.transport.close()
        elif not peer.transport.is_closing():
            peer.transport.write(data)


class _Client(_Side):
    def __init__(self, delay: float, upstream: int) -> None:
        super().__init__(delay)
        self.upstream = upstream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            _, server = await self.loop.create_connection(
                lambda: _Side(self.delay), "127.0.0.1", self.upstream
            )
        except OSError:
            if self.transport:
                self.transport.close()
            return
        assert isinstance(server, _Side)
        self.peer, server.peer = server, self
        for side in (self, server):
            for data in side.early:
                side.peer_write(data)
            side.early.clear()


async def _proxy(listen_port: int, upstream: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Client(delay, upstream), "127.0.0.1", listen_port, backlog=4096
    )
    async with server:
        await server.serve_forever()


def _run_proxy(listen_port: int, upstream: int, delay: float) -> None:
    _raise_fd_limit()
    asyncio.run(_proxy(listen_port, upstream, delay))


# ---------------------------------------------------------------- baselines


def _stdlib_login(port: int, context: ssl.SSLContext) -> bool:
    client = imaplib.IMAP4_SSL("localhost", port, ssl_context=context, timeout=60)
    try:
        client.login(USER, PASSWORD)
        status, _ = client.select("INBOX", readonly=True)
        return status == "OK"
    finally:
        client.logout()


def _pool(port: int, context: ssl.SSLContext, count: int, workers: int) -> tuple[float, int]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        ok = sum(pool.map(lambda _: _stdlib_login(port, context), range(count)))
    return time.perf_counter() - started, ok


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=1000)
    parser.add_argument("--rtt-ms", type=float, default=100.0)
    parser.add_argument("--sample", type=int, default=50, help="sequential logins timed")
    parser.add_argument("--sweep", default="16,32,64,128,256,512", help="bare pool worker counts")
    parser.add_argument(
        "--concurrency", type=int, help="product concurrency (default: the product's default)"
    )
    args = parser.parse_args()
    if not dovecot.available():
        print("Dovecot is not installed: apt-get install dovecot-imapd dovecot-pop3d")
        return 2
    _raise_fd_limit()
    server = dovecot.start(tuned=True)
    proxy_port = dovecot.free_port()
    proxy = multiprocessing.Process(
        target=_run_proxy, args=(proxy_port, server.ports["imaps"], args.rtt_ms / 2000), daemon=True
    )
    proxy.start()
    context = ssl.create_default_context(cafile=str(server.ca_file))
    try:
        time.sleep(0.5)
        _stdlib_login(proxy_port, context)  # warm-up, and proof the path works
        return _measure(args, server, proxy_port, context)
    finally:
        proxy.terminate()
        server.stop()


def _measure(
    args: argparse.Namespace, server: dovecot.Dovecot, port: int, context: ssl.SSLContext
) -> int:
    n = args.mailboxes
    print(
        f"Check all of {n} IMAPS mailboxes on Dovecot through a {args.rtt_ms:g} ms RTT "
        f"proxy ({multiprocessing.cpu_count()} cores)\n"
    )
    with tempfile.TemporaryDirectory() as data:
        settings = load_settings({"MAILBOX_DATA_DIR": data, "MAILBOX_CA_FILE": str(server.ca_file)})
        checks = replace(settings.checks, timeout=60)
        if args.concurrency:
            checks = replace(checks, concurrency=args.concurrency)
        settings = replace(settings, checks=checks)
        services = open_services(settings)
        for number in range(n):
            services.mailboxes.create_mailbox(
                {
                    "name": f"bench {number}",
                    "mailbox_type": "IMAP",
                    "host": "localhost",
                    "port": port,
                    "ssl_enabled": True,
                    "account": USER,
                    "password": PASSWORD,
                },
                actor=ACTOR,
            )
        started = time.perf_counter()
        results = services.checker.check_many(actor=ACTOR)
        product = time.perf_counter() - started
        product_ok = sum(r.ok for r in results.values())

    sample = min(args.sample, n)
    started = time.perf_counter()
    for _ in range(sample):
        _stdlib_login(port, context)
    per_login = (time.perf_counter() - started) / sample
    sequential = per_login * n

    sweep: dict[int, float] = {}
    for workers in (int(w) for w in args.sweep.split(",")):
        seconds, ok = _pool(port, context, n, workers)
        sweep[workers] = seconds
        print(
            f"  bare pool {workers:>4} workers: {seconds:7.2f} s  "
            f"{n / seconds:7.1f} mailboxes/s  ({ok}/{n} ok)"
        )
    best_workers = min(sweep, key=lambda w: sweep[w])
    best = sweep[best_workers]

    default = settings.checks.concurrency
    print(
        f"\n  sequential stdlib : {sequential:8.2f} s  ({per_login:.3f} s per mailbox, "
        f"timed on {sample} and scaled to {n})"
    )
    print(
        f"  best bare pool    : {best:8.2f} s  ({best_workers} workers, {n / best:.1f} mailboxes/s)"
    )
    print(
        f"  product check-all : {product:8.2f} s  (concurrency {default}, "
        f"{n / product:.1f} mailboxes/s, {product_ok}/{n} ok)"
    )
    print(f"\n  product / best bare pool : {product / best:.2f}x  (target <= 1.3x)")
    print(f"  sequential / product     : {sequential / product:.0f}x faster (target >= 100x)")
    return 0 if product_ok == n else 1


if __name__ == "__main__":
    sys.exit(main())
