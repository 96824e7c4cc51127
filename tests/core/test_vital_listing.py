"""The list's vital-sign badges and filters in SQL, on SQLite and PostgreSQL: the latest
values the monitor keeps, joined in the page's one query; the filters use the indexes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, inspect

from mailbox_core.listing import MailboxFilter, MailboxQuery, VitalFilter
from mailbox_core.models import MailboxCheck
from mailbox_core.monitoring import CheckRecord
from mailbox_core.probe import Offer
from mailbox_core.service import MailboxService
from tests.conftest import ACTOR, mailbox_data
from tests.support.vitals import OAUTH_ONLY_OFFER, PASSWORD_OFFER, imap_values

NOW = datetime.now(UTC).replace(microsecond=0)


def check(
    mailbox_id: int, ago: int, offer: Offer, ok: bool = True, **vitals: object
) -> CheckRecord:
    row = MailboxCheck(
        mailbox_id=mailbox_id,
        started_at=NOW - timedelta(minutes=ago),
        ok=ok,
        failed_step=None if ok else "Sign-in",
        message="Signed in" if ok else "The server no longer offers password sign-in",
        problem=None if ok else "password not offered",
        latency_ms=10,
        offer=offer.summary(),
        **vitals,
    )
    return CheckRecord(row, offer=offer)


@pytest.fixture
def fleet(service: MailboxService) -> dict[str, int]:
    """Full (92 %), Piling (3 h backlog, threshold 30 min), Changed (no password any more),
    Calm (all fine), Never (not checked)."""
    create = service.create_mailbox
    ids = {
        "Full": create(imap_values("Full"), actor=ACTOR).id,
        "Piling": create(imap_values("Piling", backlog_minutes=30), actor=ACTOR).id,
        "Changed": create(imap_values("Changed"), actor=ACTOR).id,
        "Calm": create(imap_values("Calm", backlog_minutes=30), actor=ACTOR).id,
        "Never": create(mailbox_data("password", name="Never"), actor=ACTOR).id,
    }
    three_hours = NOW - timedelta(hours=3, minutes=10)
    service.record_checks(
        [
            check(ids["Full"], 20, PASSWORD_OFFER, quota_ratio=0.92),
            check(ids["Piling"], 20, PASSWORD_OFFER, unseen=4, oldest_unseen_at=three_hours),
            check(ids["Changed"], 20, PASSWORD_OFFER),
            check(ids["Calm"], 20, PASSWORD_OFFER, quota_ratio=0.4, unseen=1, oldest_unseen_at=NOW),
        ]
    )
    service.record_checks([check(ids["Changed"], 10, OAUTH_ONLY_OFFER, ok=False)])
    return ids


def test_each_vital_filter_finds_exactly_its_mailboxes(
    service: MailboxService, fleet: dict[str, int]
) -> None:
    found = {}
    for vital in VitalFilter:
        view = service.list_view(MailboxQuery(filter=MailboxFilter(vital=vital)))
        found[vital] = sorted(row.name for row in view.page.rows)
        assert view.page.matching == len(found[vital])
    assert found == {
        VitalFilter.NEAR_FULL: ["Full"],
        VitalFilter.BACKLOG: ["Piling"],
        VitalFilter.RULES_CHANGED: ["Changed"],
        VitalFilter.NO_PASSWORD: ["Changed"],
    }
    assert service.matching_ids(MailboxFilter(vital=VitalFilter.NEAR_FULL)) == [fleet["Full"]]


def test_rows_carry_the_badges_values_and_unknown_stays_unknown(
    service: MailboxService, fleet: dict[str, int]
) -> None:
    rows = {r.name: r for r in service.list_view(MailboxQuery()).page.rows}
    assert (rows["Full"].quota_ratio, rows["Full"].quota_level) == (0.92, 90)
    assert rows["Piling"].backlog_over and rows["Piling"].unseen == 4
    assert rows["Piling"].quota_ratio is None  # no QUOTA: unknown, not OK
    assert rows["Changed"].offer_changed_at is not None and rows["Changed"].signin_lost
    assert not rows["Calm"].backlog_over and rows["Calm"].quota_level is None
    never = rows["Never"]
    assert (never.quota_ratio, never.quota_level, never.backlog_over) == (None, None, None)
    assert not never.signin_lost


def test_the_vital_filters_have_indexes(engine: Engine) -> None:
    indexed = {tuple(i["column_names"]) for i in inspect(engine).get_indexes("mailbox_monitor")}
    assert {("quota_level",), ("backlog_over",), ("offer_changed_at",)} <= indexed
