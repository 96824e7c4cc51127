"""Command line: `python -m mailbox_core check --all | --id N [--json]` and `check-due
[--limit N] [--loop] [--json]` for cron, `health [--json]` and `worker` for scheduled
checks, and `keys new`, `keys rotate`, `db upgrade`, `export`, `import FILE` for operators.

Exit codes: 0 every checked mailbox works, 1 at least one failed, 2 usage or
configuration error. Settings come from the environment (see README).
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from mailbox_core.access import Actor
from mailbox_core.bootstrap import Services, open_services
from mailbox_core.config import Settings, load_settings, read_secrets_file
from mailbox_core.crypto import generate_key
from mailbox_core.db import current_revision, describe, make_engine, upgrade
from mailbox_core.errors import MailboxCoreError
from mailbox_core.probe import ProbeResult
from mailbox_core.schemas import MailboxPublic
from mailbox_core.transfer import (
    ImportFailed,
    ImportFileError,
    read_rows,
    to_csv,
    to_json,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mailbox_core", description="Mailbox Manager command line."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="test mailbox connections and record health")
    which = check.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every active mailbox")
    which.add_argument(
        "--id", type=int, action="append", dest="ids", metavar="N", help="this mailbox (repeatable)"
    )
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--timeout", type=float, help="seconds per mailbox")
    check.add_argument("--concurrency", type=int, help="mailboxes checked at once")
    due = commands.add_parser(
        "check-due", help="test the mailboxes that are due (for cron, every minute)"
    )
    due.add_argument("--limit", type=int, metavar="N", help="claim at most N mailboxes")
    due.add_argument("--loop", action="store_true", help="sweep every tick until stopped")
    due.add_argument("--json", action="store_true", help="machine-readable output")
    due.add_argument("--timeout", type=float, help="seconds per mailbox")
    due.add_argument("--concurrency", type=int, help="mailboxes checked at once")
    _metrics_options(due)
    health = commands.add_parser(
        "health", help="every mailbox's health, schedule and pause (tests nothing)"
    )
    health.add_argument("--json", action="store_true", help="machine-readable output")
    worker = commands.add_parser("worker", help="run a Procrastinate worker (PostgreSQL only)")
    worker.add_argument("--jobs", type=int, default=2, help="jobs this worker runs at once")
    worker.add_argument(
        "--stalled-after",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="retry the jobs of a worker silent this long",
    )
    _metrics_options(worker)
    keys = commands.add_parser("keys", help="encryption keys").add_subparsers(
        dest="action", required=True
    )
    keys.add_parser("new", help="print a fresh Fernet key")
    keys.add_parser("rotate", help="re-encrypt every secret with the first configured key")
    export = commands.add_parser("export", help="write mailbox settings (never secrets)")
    export.add_argument("--format", choices=["csv", "json"], default="json")
    export.add_argument("--output", metavar="FILE", help="default: standard output")
    load = commands.add_parser("import", help="create mailboxes from a .csv or .json file")
    load.add_argument("file", metavar="FILE")
    load.add_argument("--dry-run", action="store_true", help="validate only, write nothing")
    database = commands.add_parser("db", help="database schema").add_subparsers(
        dest="action", required=True
    )
    database.add_parser("upgrade", help="bring the database to the newest schema")
    return parser


def main(
    argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run the command line; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return EXIT_USAGE if exc.code else EXIT_OK
    logging.basicConfig(level=os.environ.get("MAILBOX_LOG_LEVEL", "WARNING"), stream=err)
    try:
        return COMMANDS[args.command](args, out)
    except MailboxCoreError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE


def _metrics_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on PORT"
    )
    parser.add_argument(
        "--metrics-address",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address the metrics listen on (default 127.0.0.1; 0.0.0.0 for a scraper elsewhere)",
    )


def _tuned(args: argparse.Namespace) -> Settings:
    settings = _settings()
    checks = settings.checks
    if getattr(args, "timeout", None):
        checks = replace(checks, timeout=args.timeout)
    if getattr(args, "concurrency", None):
        checks = replace(checks, concurrency=max(1, args.concurrency))
    return replace(settings, checks=checks)


def _check(args: argparse.Namespace, out: TextIO) -> int:
    services = open_services(_tuned(args))
    mailboxes = {m.id: m for m in services.mailboxes.list_mailboxes()}
    ids = None if args.all else list(dict.fromkeys(args.ids))
    for mailbox_id in ids or []:
        if mailbox_id not in mailboxes:
            raise MailboxCoreError(f"There is no mailbox with ID {mailbox_id}.")
    results = services.checker.check_many(ids, actor=_operator())
    rows = [_row(mailboxes[i], results[i]) for i in sorted(results)]
    out.write(json.dumps(rows, indent=2) + "\n" if args.json else _table(rows))
    return EXIT_OK if all(r["ok"] for r in rows) else EXIT_FAILED


def _check_due(args: argparse.Namespace, out: TextIO) -> int:
    from mailbox_core.monitoring import sweep

    if args.limit is not None and args.limit < 1:
        raise MailboxCoreError("--limit must be at least 1.")
    if args.metrics_port and not args.loop:
        raise MailboxCoreError("--metrics-port needs --loop (a single sweep is over at once).")
    services = open_services(_tuned(args))
    names = {m.id: m for m in services.mailboxes.list_mailboxes()}
    if not args.loop:
        done = sweep.sweep(services, limit=args.limit)
        rows = [_row(names[i], done.results[i]) for i in sorted(done.results) if i in names]
        text = json.dumps(rows, indent=2) + "\n" if args.json else _table(rows, "Nothing was due.")
        out.write(text)
        return EXIT_OK if done.ok else EXIT_FAILED
    _serve_metrics(args, services)
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())

    def report(done: sweep.Sweep) -> None:
        line = {
            "sweep": done.sweep_id,
            "claimed": done.claimed,
            "failed": done.failed,
            "skipped": done.skipped,
        }
        out.write(
            json.dumps(line) + "\n"
            if args.json
            else f"Sweep {done.sweep_id}: {done.claimed} due, {done.failed} failed, "
            f"{done.skipped} skipped.\n"
        )
        out.flush()

    sweep.loop(services, stop=stop, limit=args.limit, on_sweep=report)
    return EXIT_OK


def _serve_metrics(args: argparse.Namespace, services: Services) -> None:
    if not args.metrics_port:
        return
    from mailbox_core.monitoring.metrics import Metrics

    metrics = Metrics(services.monitor)
    services.checker.observer = metrics.observe
    metrics.serve(args.metrics_port, args.metrics_address)


def _health(args: argparse.Namespace, out: TextIO) -> int:
    services = open_services(_settings())
    monitor = services.monitor
    now, beat = monitor.now(), monitor.heartbeat()
    rows = [_health_row(s, now) for s in monitor.statuses()]
    if args.json:
        _add_grants(rows, monitor.grants())
        last = beat.last_sweep_at.isoformat() if beat.last_sweep_at else None
        heartbeat = {"last_sweep_at": last, "expected": beat.expected, "stale": beat.stale}
        out.write(json.dumps({"heartbeat": heartbeat, "mailboxes": rows}, indent=2) + "\n")
        return EXIT_OK
    if beat.stale:
        out.write(f"WARNING: {beat.message}\n")
    elif beat.last_sweep_at:
        out.write(f"Last scheduled sweep {beat.last_sweep_at:%Y-%m-%d %H:%M:%S} UTC ")
        out.write(f"(expected {beat.expected}).\n")
    out.write(_health_table(rows))
    return EXIT_OK


def _health_row(status: Any, now: Any) -> dict[str, Any]:
    def iso(moment: Any) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {
        "id": status.mailbox_id,
        "name": status.name,
        "state": status.state(now),
        "last_check_at": iso(status.last_check_at),
        "ok": status.last_ok,
        "message": status.last_message,
        "consecutive_failures": status.consecutive_failures,
        "next_check_at": iso(status.next_check_at) if status.active else None,
        "paused_until": iso(status.paused_until) if status.paused(now) else None,
        "pause_reason": status.pause_reason if status.paused(now) else None,
        "alert_open": status.alert_open,
        "notes": status.notes(now),
        "vitals": _vitals_row(status.vitals, now),
    }


def _vitals_row(vitals: Any, now: Any) -> dict[str, Any] | None:
    """Vital signs for `health --json`: every null means "not known", never OK."""
    if vitals is None or vitals.read_at is None:
        return None

    def iso(moment: Any) -> str | None:
        return moment.isoformat() if moment is not None else None

    age = vitals.backlog_age(now)
    known = vitals.unseen is not None
    return {
        "read_at": iso(vitals.read_at),
        "quota": {
            "state": vitals.quota_state,
            "ratio": vitals.quota_ratio,
            "level": vitals.quota_level,
            "warnings": list(vitals.quota_warnings),
        },
        "backlog": {
            "unseen": vitals.unseen,
            "oldest_unseen_at": iso(vitals.oldest_unseen_at),
            "oldest_unseen_age_seconds": age.total_seconds() if age else (0.0 if known else None),
            "over": vitals.backlog_over,
            "threshold_minutes": vitals.backlog_minutes,
        },
        "sign_in": {
            "offer": vitals.offer,
            "changed_at": iso(vitals.offer_changed_at),
            "before": vitals.offer_before if vitals.offer_changed_at else None,
            "password_offered": vitals.password_offered,
            "password_lost": vitals.password_gone,
        },
        "arrived_while_failing": None
        if vitals.outage_arrived is None
        else {
            "messages": vitals.outage_arrived,
            "from": iso(vitals.outage_from),
            "until": iso(vitals.outage_until),
        },
    }


def _add_grants(rows: list[dict[str, Any]], found: dict[int, Any]) -> None:
    """`health --json`: an OAuth mailbox's grant health (issue 15); null for the others."""
    for row in rows:
        grant = found.get(row["id"])
        row["grant"] = grant.as_json() if grant is not None else None


def _health_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No mailboxes.\n"
    lines = [f"{'ID':>4}  {'State':13}  {'Fails':>5}  {'Last check':16}  {'Next check':16}  Name"]
    for r in rows:
        last = (r["last_check_at"] or "never")[:16].replace("T", " ")
        upcoming = (r["next_check_at"] or "—")[:16].replace("T", " ")
        notes = f"  ({'; '.join(r['notes'])})" if r["notes"] else ""
        lines.append(
            f"{r['id']:>4}  {r['state']:13}  {r['consecutive_failures']:>5}  {last:16}  "
            f"{upcoming:16}  {r['name']}{notes}"
        )
    return "\n".join(lines) + "\n"


def _worker(args: argparse.Namespace, out: TextIO) -> int:
    settings = _settings()
    from mailbox_core.monitoring import worker

    worker.conninfo(settings.database_url)  # PostgreSQL, or a configuration error (exit 2)
    services = open_services(settings)
    worker.install_schema(make_engine(settings.database_url))
    _serve_metrics(args, services)
    worker.run_worker(
        services,
        settings.database_url,
        concurrency=max(1, args.jobs),
        stalled_after=max(1.0, args.stalled_after),
    )
    return EXIT_OK


def _keys(args: argparse.Namespace, out: TextIO) -> int:
    if args.action == "new":
        out.write(generate_key() + "\n")
        return EXIT_OK
    mailboxes, secrets = open_services(_settings()).mailboxes.rotate_keys(actor=_operator())
    out.write(f"Re-encrypted {secrets} secrets of {mailboxes} mailboxes with the first key.\n")
    return EXIT_OK


def _db(args: argparse.Namespace, out: TextIO) -> int:
    engine = make_engine(_settings().database_url)
    upgrade(engine)
    out.write(f"Database {describe(engine)} is at revision {current_revision(engine)}.\n")
    if engine.dialect.name == "postgresql":
        from mailbox_core.monitoring import worker

        installed = worker.install_schema(engine)
        out.write(
            "Installed Procrastinate's schema (for `worker`).\n"
            if installed
            else "Procrastinate's schema is present.\n"
        )
    return EXIT_OK


def _export(args: argparse.Namespace, out: TextIO) -> int:
    mailboxes = open_services(_settings()).mailboxes.list_mailboxes()
    text = to_csv(mailboxes) if args.format == "csv" else to_json(mailboxes)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        out.write(f"Exported {len(mailboxes)} mailboxes to {args.output}.\n")
    else:
        out.write(text)
    return EXIT_OK


def _import(args: argparse.Namespace, out: TextIO) -> int:
    path = Path(args.file)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"Cannot read {path}: {exc.strerror}.") from exc
    rows = read_rows(content, path.name)
    mailboxes = open_services(_settings()).mailboxes
    try:
        if args.dry_run:
            plan = mailboxes.plan_import(rows)
            if not plan.ok:
                raise ImportFailed(plan.problems)
            out.write(f"{len(plan.rows)} mailboxes would be imported.\n")
            return EXIT_OK
        created = mailboxes.import_mailboxes(rows, actor=_operator())
    except ImportFailed as exc:
        out.write("Nothing was imported:\n" + "".join(f"  {p}\n" for p in exc.problems))
        return EXIT_FAILED
    out.write(f"Imported {len(created)} mailboxes.\n")
    return EXIT_OK


def _operator() -> Actor:
    """The command line acts as the host's operator: recorded by OS user, not gated by roles."""
    return Actor.operator(getpass.getuser())


def _settings() -> Settings:
    """The app's settings: the environment, then the secrets.toml Streamlit would read."""
    return load_settings(os.environ, read_secrets_file())


def _row(mailbox: MailboxPublic, result: ProbeResult) -> dict[str, Any]:
    failed = result.failed_step
    return {
        "id": mailbox.id,
        "name": mailbox.name,
        "ok": result.ok,
        "failed_step": failed.name if failed else None,
        "skipped": result.skipped or None,
        "message": result.summary,
        "hint": failed.hint if failed else "",
        "latency_ms": round(result.elapsed_ms, 1),
        "message_count": result.message_count,
        "steps": [
            {
                "name": s.name,
                "status": s.status.value,
                "elapsed_ms": s.elapsed_ms,
                "detail": s.detail,
                "hint": s.hint,
            }
            for s in result.steps
        ],
    }


COMMANDS = {
    "check": _check,
    "check-due": _check_due,
    "health": _health,
    "worker": _worker,
    "keys": _keys,
    "db": _db,
    "export": _export,
    "import": _import,
}


def _table(rows: list[dict[str, Any]], empty: str = "No active mailboxes to check.") -> str:
    if not rows:
        return empty + "\n"
    lines = [f"{'ID':>4}  {'Result':7}  {'ms':>6}  {'Msgs':>5}  {'Name':24}  Message"]
    for r in rows:
        count = "" if r["message_count"] is None else str(r["message_count"])
        result = "OK" if r["ok"] else "SKIPPED" if r["skipped"] else "FAILED"
        lines.append(
            f"{r['id']:>4}  {result:7}  "
            f"{r['latency_ms']:>6.0f}  {count:>5}  {r['name'][:24]:24}  {r['message']}"
        )
    skipped = sum(bool(r["skipped"]) for r in rows)
    failed = sum(not r["ok"] for r in rows) - skipped
    ok = len(rows) - failed - skipped
    tail = f", {skipped} skipped" if skipped else ""
    lines.append(f"{len(rows) - skipped} checked, {ok} OK, {failed} failed{tail}.")
    return "\n".join(lines) + "\n"
