"""Scheduled checks, measured: one sweep of N due mailboxes with 1, 2, 4 `check-due`
processes and with 1, 2 Procrastinate workers, through the check-all latency proxy.

    .venv/bin/python -m bench.check_due [--mailboxes 10000] [--rtt-ms 100]
        [--processes 1,2,4] [--workers 1,2] [--database-url postgresql://…]

Starts a tuned private Dovecot and bench/check_all.py's proxy (RTT/2 each way) in front of
its IMAPS port, registers N IMAPS mailboxes on PostgreSQL (default: MAILBOX_TEST_POSTGRES_URL;
its tables are dropped and made anew), marks them as signing in fine (the steady state:
a first sweep of never-checked mailboxes on one server is held to the failed-sign-in
budget's concurrency), then for each setup makes every mailbox due and times one sweep:
from the start of the runs until every mailbox has exactly one recorded check.
Not a test: it prints figures (and fails if a mailbox was checked twice or not at all).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, text  # noqa: E402

from bench.check_all import PASSWORD, USER, _raise_fd_limit, _run_proxy  # noqa: E402
from mailbox_core.access import Actor  # noqa: E402
from mailbox_core.bootstrap import open_services  # noqa: E402
from mailbox_core.config import load_settings  # noqa: E402
from mailbox_core.crypto import generate_key  # noqa: E402
from mailbox_core.db import make_engine  # noqa: E402
from tests.support import dovecot, netfence  # noqa: E402

ACTOR = Actor.operator("bench")
PROCRASTINATE = "procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs, " \
    "procrastinate_workers"  # fmt: skip


def _reset(engine: Engine) -> None:
    from sqlmodel import SQLModel

    SQLModel.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        if connection.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar():
            connection.execute(text(f"TRUNCATE {PROCRASTINATE} CASCADE"))


def _due_again(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM mailbox_check"))
        connection.execute(text("DELETE FROM mailbox_health"))
        connection.execute(text("DELETE FROM monitor_sweep"))
        connection.execute(
            text("UPDATE mailbox_monitor SET next_check_at = NULL, lease_until = NULL, "
                 "lease_owner = NULL, signin_ok = true")
        )  # fmt: skip
        if connection.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar():
            connection.execute(text(f"TRUNCATE {PROCRASTINATE} CASCADE"))


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql)).scalar_one())


def _register(env: dict[str, str], n: int, port: int) -> None:
    services = open_services(load_settings(env, {}))
    rows = [
        {
            "name": f"bench {number}",
            "mailbox_type": "IMAP",
            "host": "localhost",
            "port": port,
            "ssl_enabled": True,
            "account": USER,
            "password": PASSWORD,
        }
        for number in range(n)
    ]
    for start in range(0, n, 1000):
        services.mailboxes.import_mailboxes(rows[start : start + 1000], actor=ACTOR)
    services.monitor.claim("bench", n)  # gives every mailbox its schedule row
    services.mailboxes.monitor.engine.dispose()


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mailbox_core", *args]


def _sweep_with_processes(env: dict[str, str], engine: Engine, n: int, processes: int) -> float:
    _due_again(engine)
    started = time.perf_counter()
    runs = [
        subprocess.Popen(_command("check-due"), cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        for _ in range(processes)
    ]
    for run in runs:
        run.wait()
    took = time.perf_counter() - started
    _verify(engine, n)
    return took


def _sweep_with_workers(env: dict[str, str], engine: Engine, n: int, workers: int) -> float:
    _due_again(engine)
    tick_env = {**env, "MAILBOX_CHECK_TICK": "5"}
    runs = [
        subprocess.Popen(_command("worker"), cwd=ROOT, env=tick_env, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    try:
        while not _count(engine, "SELECT count(*) FROM monitor_sweep"):
            time.sleep(0.05)
        started = time.perf_counter()  # the tick: a sweep starts
        while _count(engine, "SELECT count(*) FROM mailbox_check") < n:
            time.sleep(0.1)
        took = time.perf_counter() - started
    finally:
        for run in runs:
            run.send_signal(signal.SIGTERM)
        for run in runs:
            run.wait(timeout=60)
    _verify(engine, n)
    return took


def _verify(engine: Engine, n: int) -> None:
    checks = _count(engine, "SELECT count(*) FROM mailbox_check")
    mailboxes = _count(engine, "SELECT count(DISTINCT mailbox_id) FROM mailbox_check")
    if checks != n or mailboxes != n:
        raise SystemExit(f"expected {n} mailboxes checked once each, got {checks} checks")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=10_000)
    parser.add_argument("--rtt-ms", type=float, default=100.0)
    parser.add_argument("--processes", default="1,2,4", help="check-due processes per setup")
    parser.add_argument("--workers", default="1,2", help="Procrastinate workers per setup")
    parser.add_argument("--database-url", default=os.environ.get("MAILBOX_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    if not dovecot.available() or not args.database_url:
        print("Needs Dovecot and PostgreSQL (--database-url or MAILBOX_TEST_POSTGRES_URL).")
        return 2
    _raise_fd_limit()
    server = dovecot.start(tuned=True)
    port = dovecot.free_port()
    histogram = multiprocessing.Array("i", 65)
    proxy = multiprocessing.Process(
        target=_run_proxy,
        args=({port: server.ports["imaps"]}, args.rtt_ms / 2000, histogram),
        daemon=True,
    )
    proxy.start()
    engine = make_engine(args.database_url)
    try:
        with tempfile.TemporaryDirectory() as data:
            secrets = Path(data) / "secrets.toml"
            secrets.write_text("")
            env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOX_")}
            env.update(
                MAILBOX_DATABASE_URL=args.database_url,
                MAILBOX_ENCRYPTION_KEYS=generate_key(),
                MAILBOX_SECRETS_FILE=str(secrets),
                MAILBOX_CA_FILE=str(server.ca_file),
                MAILBOX_CHECK_TIMEOUT="60",
                MAILBOX_EGRESS="off",
            )
            env = netfence.subprocess_env(env)
            _reset(engine)
            began = time.perf_counter()
            _register(env, args.mailboxes, port)
            print(
                f"{args.mailboxes} IMAPS mailboxes due, {args.rtt_ms:g} ms RTT, "
                f"{multiprocessing.cpu_count()} cores (registered in "
                f"{time.perf_counter() - began:.0f} s)\n"
            )
            for count in (int(p) for p in args.processes.split(",") if p):
                took = _sweep_with_processes(env, engine, args.mailboxes, count)
                _report(f"check-due × {count}", took, args.mailboxes)
            for count in (int(w) for w in args.workers.split(",") if w):
                took = _sweep_with_workers(env, engine, args.mailboxes, count)
                _report(f"worker × {count}", took, args.mailboxes)
    finally:
        proxy.terminate()
        server.stop()
        engine.dispose()
    return 0


def _report(name: str, took: float, n: int) -> None:
    print(f"  {name:14}: one sweep {took:7.2f} s  {n / took:7.1f} checks/s  ({n}/{n} once)")


if __name__ == "__main__":
    sys.exit(main())
