"""The summary's tally (migration 0010's triggers) always equals a count of the tables.

Random sequences of everything that moves a mailbox between status and verdict, through
the service and behind its back, on SQLite and PostgreSQL; the migration over existing
rows and back; a status change and a check of one mailbox in two PostgreSQL transactions
at once, in both orders; compaction, by the page and by the sweep's pruning.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

import pytest
from sqlalchemy import Engine, text

from mailbox_core import tally
from mailbox_core.crypto import SecretBox
from mailbox_core.db import make_engine, upgrade
from mailbox_core.listing import ListSummary, MailboxFilter, MailboxQuery
from mailbox_core.models import MailboxCheck
from mailbox_core.monitoring import heartbeat
from mailbox_core.schemas import Status
from mailbox_core.service import MailboxService
from tests.conftest import ACTOR, POSTGRES_URL, mailbox_data, need, reset_database

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ACTIVE, OFF = Status.ACTIVE, Status.NOT_ACTIVE


def counted(engine: Engine) -> dict[tuple[str, str], int]:
    """What the tally must say: the tables counted the slow way."""
    query = text(
        "SELECT m.status, CASE WHEN h.mailbox_id IS NULL THEN 'none' "
        "WHEN h.last_ok THEN 'ok' ELSE 'failing' END, count(*) "
        "FROM mailbox m LEFT JOIN mailbox_health h ON h.mailbox_id = m.id GROUP BY 1, 2"
    )
    with engine.connect() as connection:
        return {(status, verdict): n for status, verdict, n in connection.execute(query)}


def tallied(engine: Engine) -> dict[tuple[str, str], int]:
    with engine.connect() as connection:
        from sqlmodel import Session

        with Session(bind=connection) as session:
            return tally.read(session).counts


def summary_of(counts: dict[tuple[str, str], int]) -> ListSummary:
    by: Counter[str] = Counter()
    for (status, verdict), n in counts.items():
        by["total"] += n
        by["off" if status == OFF.value else verdict] += n
    active = by["total"] - by["off"]
    return ListSummary(
        total=by["total"],
        active=active,
        healthy=by["ok"],
        failing=by["failing"],
        not_checked=by["none"],
        unreadable=0,
    )


def a_check(mailbox_id: int, minute: float, ok: bool) -> MailboxCheck:
    return MailboxCheck(
        mailbox_id=mailbox_id,
        started_at=T0 + timedelta(minutes=minute),
        ok=ok,
        failed_step=None if ok else "Sign-in",
        message="Signed in" if ok else "The server refused the password",
        latency_ms=5,
    )


class Fleet:
    """Random changes of every kind that moves a count, each by its usual path."""

    def __init__(self, service: MailboxService, engine: Engine, seed: int) -> None:
        self.service, self.engine, self.random = service, engine, Random(seed)
        self.ids: list[int] = []
        self.made = 0
        self.minute = 0.0

    def step(self) -> str:
        moves: list[Callable[[], str]] = [self.create, self.create, self.check, self.check]
        if self.ids:
            moves += [self.late_check, self.status, self.status, self.delete, self.forget]
            moves += [self.import_some, self.compact, self.status_all]
        return self.random.choice(moves)()

    def some(self) -> list[int]:
        return self.random.sample(self.ids, self.random.randint(1, min(3, len(self.ids))))

    def create(self) -> str:
        self.made += 1
        status = self.random.choice([ACTIVE, ACTIVE, OFF])
        data = mailbox_data("password", name=f"Box {self.made}", status=status.value)
        self.ids.append(self.service.create_mailbox(data, actor=ACTOR).id)
        return f"create {status}"

    def import_some(self) -> str:
        rows = []
        for _ in range(self.random.randint(1, 3)):
            self.made += 1
            rows.append(mailbox_data("password", name=f"Box {self.made}"))
        self.ids += [m.id for m in self.service.import_mailboxes(rows, actor=ACTOR)]
        return f"import {len(rows)}"

    def check(self) -> str:
        if not self.ids:
            return self.create()
        self.minute += 1
        picked = self.some()
        checks = [a_check(i, self.minute, self.random.random() < 0.6) for i in picked]
        self.service.record_checks(checks)
        return f"check {picked}"

    def late_check(self) -> str:
        """A check that started before the newest one recorded (it must not flip the verdict)."""
        [picked] = self.random.sample(self.ids, 1)
        self.service.record_checks([a_check(picked, self.minute - 30, self.random.random() < 0.5)])
        return f"late check {picked}"

    def status(self) -> str:
        picked, to = self.some(), self.random.choice([ACTIVE, OFF])
        self.service.set_status(picked, to, actor=ACTOR)
        return f"set {picked} {to}"

    def status_all(self) -> str:
        to = self.random.choice([ACTIVE, OFF])
        matching = self.service.list_view(MailboxQuery()).summary.total
        self.service.set_status_matching(MailboxFilter(), to, expected=matching, actor=ACTOR)
        return f"set all {to}"

    def delete(self) -> str:
        picked = self.some()
        self.service.delete_mailboxes(picked, actor=ACTOR)
        self.ids = [i for i in self.ids if i not in picked]
        return f"delete {picked}"

    def forget(self) -> str:
        """A health row deleted by hand (the mailbox is "not checked" again)."""
        [picked] = self.random.sample(self.ids, 1)
        with self.engine.begin() as connection:
            connection.execute(text(f"DELETE FROM mailbox_health WHERE mailbox_id = {picked}"))
        return f"forget health of {picked}"

    def compact(self) -> str:
        self.service.compact_tally()
        return "compact"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_tally_is_the_count_after_every_change(
    service: MailboxService, engine: Engine, seed: int
) -> None:
    fleet = Fleet(service, engine, seed)
    done: list[str] = []
    for _ in range(70):
        done.append(fleet.step())
        assert tallied(engine) == counted(engine), f"after {done[-8:]}"
    assert service.list_view(MailboxQuery()).summary == summary_of(counted(engine))
    kinds = {d.split()[0] for d in done}
    assert kinds >= {"create", "import", "check", "late", "set", "delete", "forget", "compact"}


def test_a_tally_of_many_rows_folds_on_a_page_view(
    service: MailboxService, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tally, "COMPACT_AT", 20)
    fleet = Fleet(service, engine, 7)
    for _ in range(30):
        fleet.create()
        fleet.check()
    expected = summary_of(counted(engine))
    with engine.connect() as connection:
        before = connection.execute(text("SELECT count(*) FROM mailbox_tally")).scalar_one()
    assert before > 20
    assert service.list_view(MailboxQuery()).summary == expected
    with engine.connect() as connection:
        after = connection.execute(text("SELECT count(*) FROM mailbox_tally")).scalar_one()
    assert after == len(counted(engine)) <= 6
    assert service.list_view(MailboxQuery()).summary == expected


def test_the_sweeps_pruning_folds_the_tally(
    service: MailboxService, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tally, "COMPACT_AT", 5)
    fleet = Fleet(service, engine, 8)
    for _ in range(10):
        fleet.create()
        fleet.check()
    from sqlmodel import Session

    with Session(engine) as session:
        heartbeat.prune(session, now=T0, retention_days=30)
        session.commit()
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT count(*) FROM mailbox_tally")).scalar_one()
    assert rows == len(counted(engine))
    assert tallied(engine) == counted(engine)


def test_migration_0010_counts_the_rows_already_there_and_goes_back(
    engine: Engine, key: str
) -> None:
    reset_database(engine)
    upgrade(engine, "0009")
    service = MailboxService(engine, SecretBox([key]))
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS mailbox_tally"))
    ids = [
        service.create_mailbox(
            mailbox_data("password", name=f"Old {n}", status=(OFF if n % 3 == 0 else ACTIVE)),
            actor=ACTOR,
        ).id
        for n in range(7)
    ]
    service.record_checks([a_check(i, 1, i % 2 == 0) for i in ids[:5]])
    upgrade(engine)
    assert tallied(engine) == counted(engine)
    assert sum(counted(engine).values()) == 7
    service.set_status(ids[:2], OFF, actor=ACTOR)
    assert tallied(engine) == counted(engine)

    from alembic import command

    from mailbox_core.db import _alembic_config

    with engine.begin() as connection:
        command.downgrade(_alembic_config(connection), "0009")
    service.delete_mailboxes(ids[:1], actor=ACTOR)  # no trigger left to write anywhere
    service.create_mailbox(mailbox_data("password", name="After"), actor=ACTOR)
    upgrade(engine)
    assert tallied(engine) == counted(engine)


# ---------------------------------------------------------------- PostgreSQL, concurrently


@pytest.fixture
def pg(key: str) -> Iterator[tuple[Engine, MailboxService]]:
    need(POSTGRES_URL, "MAILBOX_TEST_POSTGRES_URL is not set (no PostgreSQL to test on)")
    engine = make_engine(str(POSTGRES_URL))
    reset_database(engine)
    upgrade(engine)
    yield engine, MailboxService(engine, SecretBox([key]))
    reset_database(engine)
    engine.dispose()


def blocked(engine: Engine, thread: threading.Thread, seconds: float = 60) -> bool:
    """Whether ``thread``'s session comes to wait on a lock (the second transaction is
    held), asked until it does or the thread ends: a loaded machine may take seconds to
    get the thread's statement to the server (a full local run once took over 5)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    deadline = time.monotonic() + seconds
    with engine.connect() as connection:
        while thread.is_alive() and time.monotonic() < deadline:
            if connection.execute(query).scalar_one():
                return True
            time.sleep(0.02)
    return False


def race(engine: Engine, first: str, second: Callable[[], Any]) -> bool:
    """``first`` (SQL) in an open transaction, ``second`` started meanwhile in a thread,
    then ``first`` commits; whether ``second`` had to wait for it."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            second()
        except BaseException as exc:  # reported below
            errors.append(exc)

    with engine.connect() as connection:
        connection.begin()
        connection.execute(text(first))
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        waited = blocked(engine, thread)
        connection.commit()
    thread.join(30)
    assert not errors and not thread.is_alive(), errors
    return waited


#: Which change holds its transaction open, and which comes meanwhile (both orders).
ORDERS = {
    # The check's trigger waits for the status change, then counts under the new status.
    "status change, then a check": (
        "UPDATE mailbox SET status = 'Not Active' WHERE id = {box}",
        lambda service, box: service.record_checks([a_check(box, 2, False)]),
    ),
    # The status change waits for the check's lock, then reads the verdict it committed.
    "check, then a status change": (
        "UPDATE mailbox_health SET last_ok = false WHERE mailbox_id = {box}",
        lambda service, box: service.set_status([box], OFF, actor=ACTOR),
    ),
}


@pytest.mark.parametrize("order", list(ORDERS))
def test_a_status_change_and_a_check_at_once_count_once(
    pg: tuple[Engine, MailboxService], order: str
) -> None:
    engine, service = pg
    box = service.create_mailbox(mailbox_data("password"), actor=ACTOR).id
    service.record_checks([a_check(box, 1, True)])
    first, second = ORDERS[order]
    waited = race(engine, first.format(box=box), lambda: second(service, box))
    assert counted(engine) == {("Not Active", "failing"): 1}
    assert tallied(engine) == counted(engine)
    assert waited, f"{order}: the second never waited for the first"


def test_a_delete_and_a_first_check_at_once_count_once(
    pg: tuple[Engine, MailboxService],
) -> None:
    engine, service = pg
    keep, gone = (
        service.create_mailbox(mailbox_data("password", name=n), actor=ACTOR).id
        for n in ("Keep", "Gone")
    )
    waited = race(
        engine,
        f"DELETE FROM mailbox WHERE id = {gone}",
        lambda: service.record_checks([a_check(gone, 1, True), a_check(keep, 1, False)]),
    )
    assert counted(engine) == {("Active", "failing"): 1}
    assert tallied(engine) == counted(engine)
    assert waited, "the check never waited for the delete"
