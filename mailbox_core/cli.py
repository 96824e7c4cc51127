"""Command line: `python -m mailbox_core check --all | --id N [--json]` for cron, and
`keys new`, `keys rotate`, `db upgrade`, `export`, `import FILE` for operators.

Exit codes: 0 every checked mailbox works, 1 at least one failed, 2 usage or
configuration error. Settings come from the environment (see README).
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from mailbox_core.access import Actor
from mailbox_core.bootstrap import open_services
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


def _check(args: argparse.Namespace, out: TextIO) -> int:
    settings = _settings()
    checks = settings.checks
    if args.timeout:
        checks = replace(checks, timeout=args.timeout)
    if args.concurrency:
        checks = replace(checks, concurrency=max(1, args.concurrency))
    services = open_services(replace(settings, checks=checks))
    mailboxes = {m.id: m for m in services.mailboxes.list_mailboxes()}
    ids = None if args.all else list(dict.fromkeys(args.ids))
    for mailbox_id in ids or []:
        if mailbox_id not in mailboxes:
            raise MailboxCoreError(f"There is no mailbox with ID {mailbox_id}.")
    results = services.checker.check_many(ids, actor=_operator())
    rows = [_row(mailboxes[i], results[i]) for i in sorted(results)]
    out.write(json.dumps(rows, indent=2) + "\n" if args.json else _table(rows))
    return EXIT_OK if all(r["ok"] for r in rows) else EXIT_FAILED


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


COMMANDS = {"check": _check, "keys": _keys, "db": _db, "export": _export, "import": _import}


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No active mailboxes to check.\n"
    lines = [f"{'ID':>4}  {'Result':6}  {'ms':>6}  {'Msgs':>5}  {'Name':24}  Message"]
    for r in rows:
        count = "" if r["message_count"] is None else str(r["message_count"])
        lines.append(
            f"{r['id']:>4}  {'OK' if r['ok'] else 'FAILED':6}  "
            f"{r['latency_ms']:>6.0f}  {count:>5}  {r['name'][:24]:24}  {r['message']}"
        )
    failed = sum(not r["ok"] for r in rows)
    lines.append(f"{len(rows)} checked, {len(rows) - failed} OK, {failed} failed.")
    return "\n".join(lines) + "\n"
