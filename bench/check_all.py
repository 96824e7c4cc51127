"""Check all, measured: the product against stdlib baselines, through a latency proxy.

    .venv/bin/python -m bench.check_all [--mailboxes 1000] [--rtt-ms 100]

Starts a tuned private Dovecot, puts a TCP proxy in front of its IMAPS and POP3S ports that
delays every chunk by RTT/2 in each direction (run in its own process), then:

1. counts the turns of one check — the times the server answers after the client spoke
   last, counted in the proxy — for the product's probe and for stdlib (imaplib.IMAP4_SSL:
   connect, TLS, LOGIN, EXAMINE INBOX, LOGOUT; poplib.POP3_SSL: USER, PASS, STAT, QUIT),
   IMAPS and POP3S. Targets: IMAPS <= 4 (stdlib 6), POP3S <= stdlib; and the product's
   IMAPS with vital signs against without (issue 15): at most one more turn. Dovecot runs
   with the quota plugins and the mailbox has unseen mail, so vital signs ask their second
   write (GETQUOTAROOT, FETCH INTERNALDATE) every time: the worst case;
2. registers N IMAPS mailboxes in a fresh SQLite database and times, in the same run: the
   product's Check all (MailboxChecker.check_many) at its default settings; a sequential
   loop of stdlib logins on a sample, scaled up to N and said so; a bare thread pool of
   the same stdlib logins, swept over worker counts, whose best is the practical limit of
   this machine; and Check all without vital signs, interleaved with the one with them
   (bare, vitals, bare, vitals: --rounds pairs), whose best times compare (target <= 1.1x).

The proxy does not delay the TCP handshake itself (it is local), so every figure is
about one RTT lower per connection than on a real network; all share that.
Needs Dovecot (apt-get install dovecot-imapd dovecot-pop3d). Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import imaplib
import multiprocessing
import poplib
import resource
import ssl
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from multiprocessing.sharedctypes import SynchronizedArray
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailbox_core.access import Actor  # noqa: E402
from mailbox_core.bootstrap import open_services  # noqa: E402
from mailbox_core.config import load_settings  # noqa: E402
from mailbox_core.probe import ProbeTarget, run_probe  # noqa: E402
from mailbox_core.schemas import MailboxType  # noqa: E402
from tests.support import dovecot  # noqa: E402

ACTOR = Actor.operator("bench")

USER, PASSWORD = "alice@example.com", dovecot.USERS["alice@example.com"]
MAX_TURNS = 64  # the proxy's histogram: how many connections took 0, 1, 2, ... turns
OPEN = MAX_TURNS  # and, after it, how many connections are open
Histogram = SynchronizedArray  # of MAX_TURNS + 1 ints, shared with the proxy process


# ---------------------------------------------------------------- latency proxy


class _Side(asyncio.Protocol):
    """One end of a proxied connection; what it receives reaches the peer ``delay`` later.

    Protocols with one ordered flush timer per direction keep the proxy's own CPU low:
    it shares the machine's cores with the client and Dovecot being measured.
    """

    def __init__(self, delay: float, turns: _Turns) -> None:
        self.delay = delay
        self.turns = turns
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
        self.turns.heard(self)
        self._send(data)

    def eof_received(self) -> bool:
        self._send(b"")
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.turns.closed(self)
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


class _Turns:
    """One connection's turns: each time the server answers after the client spoke last.

    Counted when the proxy receives the bytes, before it delays them, so the figure does
    not depend on the RTT. Recorded in the shared histogram once both sides have closed.
    """

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self.client: _Side | None = None
        self.count = 0
        self.client_spoke = False
        self.open = 2
        with histogram.get_lock():
            histogram[OPEN] += 1

    def heard(self, side: _Side) -> None:
        if side is self.client:
            self.client_spoke = True
        elif self.client_spoke:
            self.count += 1
            self.client_spoke = False

    def closed(self, side: _Side) -> None:
        self.open -= 1
        if self.open == 0:
            with self.histogram.get_lock():
                self.histogram[min(self.count, MAX_TURNS - 1)] += 1
                self.histogram[OPEN] -= 1


class _Client(_Side):
    def __init__(self, delay: float, upstream: int, histogram: Histogram) -> None:
        super().__init__(delay, _Turns(histogram))
        self.turns.client = self
        self.upstream = upstream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            _, server = await self.loop.create_connection(
                lambda: _Side(self.delay, self.turns), "127.0.0.1", self.upstream
            )
        except OSError:
            self.turns.closed(self)  # the upstream side never opened
            if self.transport:
                self.transport.close()
            return
        assert isinstance(server, _Side)
        self.peer, server.peer = server, self
        for side in (self, server):
            for data in side.early:
                side.peer_write(data)
            side.early.clear()


async def _proxy(routes: dict[int, int], delay: float, histogram: Histogram) -> None:
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(
            lambda upstream=upstream: _Client(delay, upstream, histogram),
            "127.0.0.1",
            listen_port,
            backlog=4096,
        )
        for listen_port, upstream in routes.items()
    ]
    await asyncio.gather(*(server.serve_forever() for server in servers))


def _run_proxy(routes: dict[int, int], delay: float, histogram: Histogram) -> None:
    _raise_fd_limit()
    asyncio.run(_proxy(routes, delay, histogram))


# ---------------------------------------------------------------- baselines


def _stdlib_login(port: int, context: ssl.SSLContext) -> bool:
    client = imaplib.IMAP4_SSL("localhost", port, ssl_context=context, timeout=60)
    try:
        client.login(USER, PASSWORD)
        status, _ = client.select("INBOX", readonly=True)
        return status == "OK"
    finally:
        client.logout()


def _stdlib_pop3(port: int, context: ssl.SSLContext) -> bool:
    client = poplib.POP3_SSL("localhost", port, context=context, timeout=60)
    try:
        client.user(USER)
        client.pass_(PASSWORD)
        count, _size = client.stat()
        return count >= 0
    finally:
        client.quit()


def _product(kind: MailboxType, port: int, ca_file: str, vitals: bool = True) -> bool:
    target = ProbeTarget(kind, "localhost", port, USER, PASSWORD, ssl_enabled=True, vitals=vitals)
    result = run_probe(target, timeout=60, ca_file=ca_file)
    if vitals and kind is MailboxType.IMAP:
        assert result.vitals is not None and result.vitals.quota is not None, result.vitals
        assert result.vitals.backlog and result.vitals.backlog.oldest_unseen_at, result.vitals
    return result.ok


def _turns(
    histogram: Histogram, check: Callable[[], bool], checks: int = 3
) -> tuple[list[int], float]:
    """The turns each of ``checks`` sequential checks took, counted in the proxy, and the
    seconds per check (the checks alone, not the wait for the proxy to record them)."""
    _quiet(histogram)  # connections of earlier checks are recorded (both sides closed)
    with histogram.get_lock():
        histogram[:MAX_TURNS] = [0] * MAX_TURNS
    started = time.perf_counter()
    assert all(check() for _ in range(checks)), "a check failed"
    wall = (time.perf_counter() - started) / checks
    _quiet(histogram)
    return [turns for turns, seen in enumerate(histogram[:MAX_TURNS]) for _ in range(seen)], wall


def _quiet(histogram: Histogram, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while histogram[OPEN] > 0 and time.monotonic() < deadline:
        time.sleep(0.02)


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
    parser.add_argument("--rounds", type=int, default=2, help="Check all pairs, bare/vitals")
    args = parser.parse_args()
    if not dovecot.available():
        print("Dovecot is not installed: apt-get install dovecot-imapd dovecot-pop3d")
        return 2
    _raise_fd_limit()
    server = dovecot.start(tuned=True, quota=True)
    ports = {"imaps": dovecot.free_port(), "pop3s": dovecot.free_port()}
    routes = {ports[name]: server.ports[name] for name in ports}
    histogram: Histogram = multiprocessing.Array("i", MAX_TURNS + 1)
    proxy = multiprocessing.Process(
        target=_run_proxy, args=(routes, args.rtt_ms / 2000, histogram), daemon=True
    )
    proxy.start()
    context = ssl.create_default_context(cafile=str(server.ca_file))
    try:
        time.sleep(0.5)
        _stdlib_login(ports["imaps"], context)  # warm-up, and proof the path works
        _print_turns(args, histogram, ports, str(server.ca_file), context)
        return _measure(args, server, ports["imaps"], context)
    finally:
        proxy.terminate()
        server.stop()


def _print_turns(
    args: argparse.Namespace,
    histogram: Histogram,
    ports: dict[str, int],
    ca_file: str,
    context: ssl.SSLContext,
) -> None:
    imaps, pop3s = ports["imaps"], ports["pop3s"]
    checks: dict[str, Callable[[], bool]] = {
        "IMAPS product": lambda: _product(MailboxType.IMAP, imaps, ca_file, vitals=False),
        "IMAPS vitals ": lambda: _product(MailboxType.IMAP, imaps, ca_file),
        "IMAPS stdlib ": lambda: _stdlib_login(imaps, context),
        "POP3S product": lambda: _product(MailboxType.POP3, pop3s, ca_file),
        "POP3S stdlib ": lambda: _stdlib_pop3(pop3s, context),
    }
    print(f"Turns per check through the {args.rtt_ms:g} ms RTT proxy (3 checks each)\n")
    for name, check in checks.items():
        turns, wall = _turns(histogram, check)
        print(f"  {name}: {_spread(turns)} turns  ({wall:.3f} s per check)")
    print(
        "  targets: IMAPS product <= 4 (stdlib 6), IMAPS vitals <= IMAPS product + 1, "
        "POP3S product <= POP3S stdlib\n"
    )


def _spread(turns: list[Any]) -> str:
    if not turns:
        return "?"
    low, high = min(turns), max(turns)
    return f"{low}" if low == high else f"{low}-{high}"


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
        bare = copy.copy(services.checker)
        bare.settings = replace(services.checker.settings, vitals=False)
        timings: dict[str, list[float]] = {"bare": [], "vitals": []}
        for _ in range(args.rounds):  # interleaved: both see the same machine and Dovecot
            for name, checker in (("bare", bare), ("vitals", services.checker)):
                started = time.perf_counter()
                results = checker.check_many(actor=ACTOR)
                timings[name].append(time.perf_counter() - started)
                product_ok = sum(r.ok for r in results.values())
                assert product_ok == n, f"{name}: {product_ok}/{n} ok"
        product, with_vitals = min(timings["bare"]), min(timings["vitals"])
        read = sum(r.vitals is not None and r.vitals.quota is not None for r in results.values())
        resumed = sum(
            any(s.name == "TLS" and s.detail.endswith("resumed") for s in r.steps)
            for r in results.values()
        )

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
        f"  product check-all : {product:8.2f} s  (no vital signs, concurrency {default}, "
        f"{n / product:.1f} mailboxes/s, {product_ok}/{n} ok, {resumed} TLS sessions resumed)"
    )
    print(
        f"  with vital signs  : {with_vitals:8.2f} s  ({n / with_vitals:.1f} mailboxes/s, "
        f"{read}/{n} read a quota; best of {args.rounds}, interleaved)"
    )
    rounds = ", ".join(
        f"{b:.2f}/{v:.2f}" for b, v in zip(timings["bare"], timings["vitals"], strict=True)
    )
    print(f"  rounds bare/vitals: {rounds} s")
    print(f"\n  product / best bare pool : {product / best:.2f}x  (target <= 1.0x)")
    print(f"  vitals / without vitals  : {with_vitals / product:.2f}x  (target <= 1.1x)")
    print(f"  sequential / product     : {sequential / product:.0f}x faster (target >= 100x)")
    return 0 if product_ok == n else 1


if __name__ == "__main__":
    sys.exit(main())
