"""`check-due`: claim due mailboxes for this runner, check them with the concurrent
checker (refilled as checks end), record; with ``--loop``, again every tick.

Each run is one sweep, recorded for the heartbeat; after it, pending alerts are sent,
history past the retention is pruned and MAILBOX_HEARTBEAT_URL is requested.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from mailbox_core.bootstrap import Services
from mailbox_core.probe import ProbeResult


def runner_name(kind: str) -> str:
    """A lease owner no other runner shares: kind, host, process and a random part."""
    return f"{kind} {socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Sweep:
    """What one sweep did."""

    sweep_id: int
    claimed: int
    results: dict[int, ProbeResult]

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results.values() if not r.ok and not r.skipped)

    @property
    def skipped(self) -> int:
        return sum(1 for r in self.results.values() if r.skipped)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results.values())


def sweep(
    services: Services, *, limit: int | None = None, stop: Callable[[], bool] = lambda: False
) -> Sweep:
    """One sweep: claim and check until nothing is due (or ``limit`` mailboxes were claimed)."""
    monitor = services.monitor
    owner = runner_name("check-due")
    sweep_id = monitor.start_sweep(owner)
    monitor.warn_unused_grants()  # sent with this sweep's alerts
    claimed = 0

    def claim(free: int) -> list[int]:
        nonlocal claimed
        wanted = free if limit is None else min(free, limit - claimed)
        if wanted <= 0:
            return []
        ids = monitor.claim(owner, wanted)
        claimed += len(ids)
        return ids

    results = services.checker.check_claimed(claim, owner=owner, stop=stop)
    done = Sweep(sweep_id, claimed, results)
    monitor.finish_sweep(
        sweep_id,
        claimed=claimed,
        checked=len(results) - done.skipped,
        failed=done.failed,
        skipped=done.skipped,
    )
    monitor.ping()
    return done


def loop(
    services: Services,
    *,
    stop: threading.Event,
    limit: int | None = None,
    on_sweep: Callable[[Sweep], None] = lambda _: None,
) -> None:
    """Sweep at every tick (aligned to the clock) until ``stop`` is set."""
    tick = services.monitor.settings.tick
    while not stop.is_set():
        on_sweep(sweep(services, limit=limit, stop=stop.is_set))
        stop.wait(tick - time.time() % tick)
