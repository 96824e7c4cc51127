"""Export and import: no secret leaves, a round trip reproduces settings, all or nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from mailbox_core.access import Actor
from mailbox_core.schemas import SECRET_FIELDS
from mailbox_core.service import MailboxService
from mailbox_core.transfer import (
    ImportFailed,
    ImportFileError,
    export_rows,
    plan_import,
    read_rows,
    to_csv,
    to_json,
)
from tests.conftest import ACTOR, ROOT, SIGN_IN_PATHS, mailbox_data, run_cli
from tests.support import netfence

SECRETS = [v[f] for v in SIGN_IN_PATHS.values() for f in SECRET_FIELDS if f in v]


@pytest.fixture
def filled(service: MailboxService) -> MailboxService:
    for path in SIGN_IN_PATHS:
        service.create_mailbox(
            mailbox_data(path, comments=f"for {path}, with “quotes”"), actor=ACTOR
        )
    return service


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_export_contains_no_secret(filled: MailboxService, kind: str) -> None:
    text = (to_csv if kind == "csv" else to_json)(filled.list_mailboxes())
    for secret in SECRETS:
        assert secret not in text
    columns = (
        set(text.splitlines()[0].split(","))
        if kind == "csv"
        else {k for row in json.loads(text) for k in row}
    )
    assert not columns & {*SECRET_FIELDS, *(f"{f}_encrypted" for f in SECRET_FIELDS)}
    assert "id" not in columns


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_round_trip_into_an_empty_database(
    filled: MailboxService, tmp_path: Path, key: str, kind: str
) -> None:
    from mailbox_core.crypto import SecretBox
    from mailbox_core.db import init_db, make_engine

    text = (to_csv if kind == "csv" else to_json)(filled.list_mailboxes())
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    init_db(empty)
    target = MailboxService(empty, SecretBox([key]))
    rows = read_rows(text.encode(), f"mailboxes.{kind}")
    # Secrets are not exported: supply them as an operator would, in the import file.
    for row, source in zip(rows, SIGN_IN_PATHS.values(), strict=True):
        row.update({f: source[f] for f in SECRET_FIELDS if f in source})
    target.import_mailboxes(rows, actor=Actor.local("importer"))
    assert export_rows(target.list_mailboxes()) == export_rows(filled.list_mailboxes())
    gmail = next(m for m in target.list_mailboxes() if m.name == "Gmail helpdesk")
    assert target.get_credentials(gmail.id).refresh_token == SIGN_IN_PATHS["gmail"]["refresh_token"]
    assert {e.action for e in target.list_audit()} == {"imported"}


def test_one_bad_row_writes_nothing_and_names_row_and_field(service: MailboxService) -> None:
    rows = [
        mailbox_data("password"),
        mailbox_data("gmail", port="99999"),
        mailbox_data("office365_secret", tenant_id="nope"),
    ]
    with pytest.raises(ImportFailed) as caught:
        service.import_mailboxes(rows, actor=ACTOR)
    found = [(p.row, p.error.field) for p in caught.value.problems]
    assert found == [(2, "port"), (3, "tenant_id")]
    assert "Row 2: Port:" in str(caught.value)
    assert service.count_mailboxes() == 0


def test_duplicate_names_in_the_file_and_in_the_database(service: MailboxService) -> None:
    service.create_mailbox(mailbox_data("password", name="Existing"), actor=ACTOR)
    plan = plan_import(
        [
            mailbox_data("password", name="existing"),
            mailbox_data("password", name="New"),
            mailbox_data("password", name="NEW"),
        ],
        {"existing"},
    )
    assert [(p.row, p.error.field) for p in plan.problems] == [(1, "name"), (3, "name")]


def test_preview_and_report_never_echo_secrets(service: MailboxService) -> None:
    plan = plan_import([mailbox_data(p) for p in SIGN_IN_PATHS], set())
    assert plan.ok
    assert plan.preview()[1]["Refresh Token"] == "set"
    shown = json.dumps(plan.preview())
    assert not [s for s in SECRETS if s in shown]
    bad = plan_import([mailbox_data("gmail", port=0)], set())
    assert SIGN_IN_PATHS["gmail"]["client_secret"] not in " ".join(map(str, bad.problems))


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("x.txt", b"a", "import a .csv or .json"),
        ("x.json", b"{not json", "not valid JSON"),
        ("x.json", b'{"name": "a"}', "JSON list of objects"),
        ("x.csv", b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_unreadable_files_are_explained(name: str, content: bytes, words: str) -> None:
    with pytest.raises(ImportFileError) as caught:
        read_rows(content, name)
    assert words in str(caught.value)


def test_unknown_column_is_reported() -> None:
    plan = plan_import([{**mailbox_data("password"), "colour": "red"}], set())
    assert [(p.row, p.error.field) for p in plan.problems] == [(1, "colour")]


def test_killed_import_leaves_the_database_as_it_was(tmp_path: Path, sqlite_engine: Engine) -> None:
    data = tmp_path / "data"
    rows = [mailbox_data("password", name=f"bulk {n}") for n in range(20000)]
    (tmp_path / "big.json").write_text(json.dumps(rows))
    env = netfence.subprocess_env({"PATH": "/usr/bin:/bin", "MAILBOX_DATA_DIR": str(data)})
    subprocess.run(
        [sys.executable, "-m", "mailbox_core", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    database = data / "mailboxes.db"
    assert database.read_bytes()[:16] == b"SQLite format 3\x00"  # migrated, empty
    wal = data / "mailboxes.db-wal"
    start_size = wal.stat().st_size if wal.exists() else 0
    process = subprocess.Popen(
        [sys.executable, "-m", "mailbox_core", "import", str(tmp_path / "big.json")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    # Wait until the import is writing its (uncommitted) transaction, then kill it.
    while time.monotonic() < deadline and process.poll() is None:
        if wal.exists() and wal.stat().st_size > start_size + 64 * 1024:
            break
        time.sleep(0.01)
    assert process.poll() is None, "the import finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    import sqlite3

    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM mailbox").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM audit_event").fetchone()[0] == 0


def test_cli_export_and_import(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "MAILBOX_DATA_DIR": str(tmp_path / "a")}
    source = tmp_path / "in.json"
    source.write_text(json.dumps([mailbox_data("password"), mailbox_data("gmail")]))

    def run(*args: str, where: str = "a") -> subprocess.CompletedProcess[str]:
        return run_cli({**env, "MAILBOX_DATA_DIR": str(tmp_path / where)}, *args)

    assert run("import", str(source), "--dry-run").stdout == "2 mailboxes would be imported.\n"
    assert run("import", str(source)).stdout == "Imported 2 mailboxes.\n"
    again = run("import", str(source))
    assert again.returncode == 1
    assert "Row 1: Name: a mailbox named “Support POP3” already exists" in again.stdout
    exported = run("export", "--format", "csv")
    assert exported.returncode == 0
    assert exported.stdout.splitlines()[0].startswith("name,mailbox_type,host,port")
    assert not [s for s in SECRETS if s in exported.stdout]
    assert run("import", str(tmp_path / "missing.json")).returncode == 2
