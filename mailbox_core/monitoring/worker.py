"""The Procrastinate App and its tasks: `python -m mailbox_core worker` (PostgreSQL only).

Across machines, on the database teams already run (no other broker):

- ``tick``, a periodic task every MAILBOX_CHECK_TICK (every minute by default):
  Procrastinate defers one job per tick however many workers run (its periodic defers are
  unique per task and timestamp). It records the sweep, retries jobs of workers that
  stopped sending heartbeats, claims every due mailbox (leases owned by this tick) and
  defers jobs of 100–500 mailboxes each.
- ``check_batch`` renews its leases (those it still owns), checks them with the
  concurrent checker and records them, which clears each lease. A job retried after its
  worker died or stopped finds the mailboxes already recorded without a lease, and checks
  only the rest. On SIGTERM a job stops starting checks, lets those in flight end and be
  recorded, and is retried by another worker (or this one, restarted).

The connector is set when the worker starts (``run_worker``); the rest of the core never
imports this module.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from procrastinate import App, JobContext, PsycopgConnector, RetryStrategy
from procrastinate.exceptions import JobAborted
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from mailbox_core.bootstrap import Services
from mailbox_core.errors import ConfigurationError
from mailbox_core.monitoring.sweep import runner_name

log = logging.getLogger(__name__)

TICK_QUEUE, CHECK_QUEUE = "mailbox-tick", "mailbox-checks"
SMALLEST_JOB, LARGEST_JOB = 100, 500

app = App(connector=PsycopgConnector(), import_paths=[__name__])


@dataclass(frozen=True)
class Runtime:
    """What this worker process's tasks use (set by ``run_worker``)."""

    services: Services
    stalled_after: float


_runtime: Runtime | None = None


def _current() -> Runtime:
    if _runtime is None:
        raise RuntimeError("mailbox worker tasks run only inside `python -m mailbox_core worker`")
    return _runtime


@app.task(name="mailbox.tick", queue=TICK_QUEUE, pass_context=True)
async def tick(context: JobContext, timestamp: int) -> dict[str, int]:
    """One scheduled sweep: claim what is due and hand it out in jobs."""
    runtime = _current()
    retried = await _retry_stalled(runtime.stalled_after)
    sweep_id, jobs = await asyncio.to_thread(_plan, runtime.services, timestamp)
    if jobs:
        await check_batch.batch_defer_async(*jobs)
    return {"sweep": sweep_id, "jobs": len(jobs), "retried": retried}


@app.task(
    name="mailbox.check_batch",
    queue=CHECK_QUEUE,
    pass_context=True,
    retry=RetryStrategy(max_attempts=20, wait=1),
)
def check_batch(
    context: JobContext, owner: str, mailbox_ids: list[int], sweep_id: int
) -> dict[str, int]:
    """Check the mailboxes this job still holds leases for, and record them."""
    services = _current().services
    ids = services.monitor.renew(owner, mailbox_ids)
    left = list(ids)

    def feed(free: int) -> list[int]:
        taken, left[:] = left[:free], left[free:]
        return taken

    results = services.checker.check_claimed(feed, owner=owner, stop=context.should_abort)
    skipped = sum(1 for r in results.values() if r.skipped)
    failed = sum(1 for r in results.values() if not r.ok and not r.skipped)
    services.monitor.finish_sweep(
        sweep_id, checked=len(results) - skipped, failed=failed, skipped=skipped
    )
    if context.should_abort():
        # Stopping (SIGTERM): what ran is recorded; the rest keeps this job's leases and
        # the retried job checks it.
        raise JobAborted("the worker is stopping")
    return {"held": len(ids), "checked": len(results) - skipped}


def _plan(services: Services, timestamp: int) -> tuple[int, list[dict[str, Any]]]:
    monitor = services.monitor
    sweep_id = monitor.start_sweep(f"worker tick {timestamp}")
    owner = runner_name(f"tick {timestamp}")
    # Leases of queued jobs last longer than a check's: jobs may wait for a free worker.
    lease = max(monitor.settings.lease, 10 * monitor.settings.tick)
    ids = monitor.claim(owner, limit=1_000_000, lease=lease)
    monitor.finish_sweep(sweep_id, claimed=len(ids))
    monitor.ping()
    monitor.dispatch()
    return sweep_id, [
        {"owner": owner, "mailbox_ids": chunk, "sweep_id": sweep_id} for chunk in chunks(ids)
    ]


def chunks(ids: Sequence[int]) -> list[list[int]]:
    """Split into jobs of 100–500 mailboxes (about ten jobs while that allows)."""
    if not ids:
        return []
    size = min(LARGEST_JOB, max(SMALLEST_JOB, math.ceil(len(ids) / 10)))
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


async def _retry_stalled(stalled_after: float) -> int:
    """Jobs whose worker stopped sending heartbeats (killed, lost) go back to the queue."""
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after)
    retried = 0
    for job in stalled:
        if job.task_name != check_batch.name or job.id is None:
            continue
        await app.job_manager.retry_job(job)
        log.warning("Retrying job %s of a worker that stopped sending heartbeats", job.id)
        retried += 1
    return retried


def cron(tick: float) -> str:
    """The periodic task's schedule: every ``tick`` seconds (a divisor of 60) or minutes."""
    if tick < 60:
        return f"* * * * * */{int(tick)}"
    minutes = int(tick // 60)
    return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"


def conninfo(database_url: str) -> str:
    """A libpq URL for Procrastinate from either README form (postgresql:// or +psycopg)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ConfigurationError(
            "The worker needs PostgreSQL (MAILBOX_DATABASE_URL=postgresql://…); "
            "SQLite deployments run `python -m mailbox_core check-due` from cron instead."
        )
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def install_schema(engine: Engine) -> bool:
    """Install Procrastinate's schema when absent (``db upgrade``); True if it was installed.

    Concurrent callers take turns on an advisory lock, so two starting workers cannot
    both install it.
    """
    if engine.dialect.name != "postgresql":
        return False
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('procrastinate schema'))"))
        present = connection.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar()
        if present is not None:
            return False
        cursor = connection.connection.cursor()
        cursor.execute(app.schema_manager.get_schema())  # no parameters: % stays literal
    return True


def run_worker(
    services: Services,
    database_url: str,
    *,
    concurrency: int = 2,
    stalled_after: float = 30.0,
) -> None:
    """Run a worker until SIGTERM/SIGINT; jobs in flight end (or are retried) first."""
    global _runtime
    _runtime = Runtime(services, stalled_after)
    every = cron(services.monitor.settings.tick)
    if not app.periodic_registry.periodic_tasks:
        app.periodic(cron=every, periodic_id="sweep")(tick)
    heartbeat = max(0.5, min(10.0, stalled_after / 3))
    with app.replace_connector(PsycopgConnector(conninfo=conninfo(database_url))):
        app.run_worker(
            queues=[TICK_QUEUE, CHECK_QUEUE],
            concurrency=concurrency,
            name=runner_name("worker"),
            # Past this, a stopping worker asks its jobs to stop starting checks.
            shutdown_graceful_timeout=1.0,
            update_heartbeat_interval=heartbeat,
            stalled_worker_timeout=stalled_after,
            delete_jobs="never",
        )
