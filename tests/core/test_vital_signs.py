"""Vital signs downstream of the probe (issue 15): stored per check and as the latest
values, one alert per quota threshold crossed upward and one back to normal, the backlog
threshold, sign-in rule changes, "password not offered", unknown never OK, arrivals after
an outage. The real checker and monitor on SQLite; only the probe is scripted."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailbox_core import cli
from mailbox_core.access import AccessDenied, Actor, Role
from mailbox_core.bootstrap import Services
from mailbox_core.errors import ValidationFailed
from mailbox_core.monitoring import rules
from mailbox_core.monitoring.metrics import Metrics
from mailbox_core.monitoring.rules import AlertKind, Fault
from mailbox_core.monitoring.status import VitalSigns
from mailbox_core.probe import Backlog, Quota
from tests.conftest import ACTOR, mailbox_data
from tests.support.monitoring import Clock, monitor_env
from tests.support.vitals import (
    OAUTH_ONLY_OFFER,
    PASSWORD_OFFER,
    failed,
    imap_values,
    kinds,
    passed,
    scripted,
    subjects,
    used,
)

QUOTA, NORMAL = AlertKind.QUOTA.value, AlertKind.QUOTA_NORMAL.value


# ---------------------------------------------------------------- the rules, pure


@pytest.mark.parametrize(
    ("alerted", "ratio", "expected"),
    [
        (None, 0.50, (None, None)),
        (None, 0.85, (80, AlertKind.QUOTA)),
        (80, 0.87, (80, None)),
        (80, 0.96, (95, AlertKind.QUOTA)),  # 90 and 95 crossed at once: one, for 95
        (None, 0.96, (95, AlertKind.QUOTA)),
        (95, 0.92, (90, None)),  # falling to a lower threshold alerts nothing
        (90, 0.70, (None, AlertKind.QUOTA_NORMAL)),
        (None, 0.70, (None, None)),  # never alerted: nothing to call normal
    ],
)
def test_quota_step_alerts_the_highest_threshold_crossed_upward_once(
    alerted: int | None, ratio: float, expected: tuple[int | None, AlertKind | None]
) -> None:
    level = rules.quota_level(ratio, rules.QUOTA_THRESHOLDS)
    assert rules.quota_step(alerted, level, quiet=False) == expected


def test_a_quiet_mailbox_raises_no_new_quota_or_backlog_alert() -> None:
    assert rules.quota_step(None, 80, quiet=True) == (None, None)
    assert rules.quota_step(80, 95, quiet=True) == (80, None)
    assert rules.backlog_step(False, True, quiet=True) == (False, None)
    # Back to normal follows a sent alert even while quiet, as "recovered" does.
    assert rules.backlog_step(True, False, quiet=True) == (False, AlertKind.BACKLOG_NORMAL)


def test_password_not_offered_is_the_accounts_fault_like_a_refused_sign_in() -> None:
    assert rules.fault_of(False, "password not offered", "") is Fault.ACCOUNT
    assert rules.fault_of(False, "password refused", "") is Fault.ACCOUNT
    assert rules.fault_of(False, "tcp timeout", "") is Fault.OTHER


# ---------------------------------------------------------------- quota


def test_quota_alerts_once_per_threshold_crossed_and_once_back_to_normal(tmp_path: Path) -> None:
    clock = Clock()
    services, checker = scripted(tmp_path, clock)
    mailbox = services.mailboxes.create_mailbox(imap_values(), actor=ACTOR)
    alerted = []
    for percent in (50, 85, 87, 96, 96, 92, 70):
        checker.answer = lambda _t, p=percent: passed(quota=used(p))
        checker.check_mailbox(mailbox.id, actor=ACTOR)
        alerted.append(kinds(services, mailbox.id))
        clock.advance(minutes=5)
    assert alerted == [
        [],
        [QUOTA],  # 85 %: the 80 % warning
        [QUOTA],
        [QUOTA, QUOTA],  # 96 %: one for 95 %, none for 90 %
        [QUOTA, QUOTA],
        [QUOTA, QUOTA],  # down to 92 %: nothing
        [QUOTA, QUOTA, NORMAL],
    ]
    first, second, normal = subjects(services, mailbox.id)
    assert first == f"Mailbox “Helpdesk” (ID {mailbox.id}) is near full: 85 %"
    assert second.endswith("is near full: 96 %")
    assert normal == f"Mailbox “Helpdesk” (ID {mailbox.id}) quota back to normal"
    ninety_five = services.monitor.alerts_of(mailbox.id)[1]  # newest first
    assert "past its 95 % warning" in ninety_five.text
    assert "storage 96,000 of 100,000 KiB" in ninety_five.text
    vitals = services.monitor.status_of(mailbox.id).vitals
    assert vitals is not None
    assert (vitals.quota_ratio, vitals.quota_level, vitals.quota_state) == (0.7, None, "ok")


def test_each_check_keeps_its_vital_signs_for_the_charts(tmp_path: Path) -> None:
    clock = Clock()
    services, checker = scripted(tmp_path, clock)
    mailbox = services.mailboxes.create_mailbox(imap_values(), actor=ACTOR)
    for percent, unseen in ((40, 0), (55, 3)):
        oldest = clock() - timedelta(minutes=90) if unseen else None
        backlog = Backlog(messages=20 + unseen, unseen=unseen, oldest_unseen_at=oldest)
        quota = used(percent)
        checker.answer = lambda _t, q=quota, b=backlog: passed(quota=q, backlog=b)
        checker.check_mailbox(mailbox.id, actor=ACTOR)
        clock.advance(minutes=5)
    checker.answer = lambda _t: failed("tcp timeout", "No answer")
    checker.check_mailbox(mailbox.id, actor=ACTOR)  # a failed check reads nothing
    points = services.monitor.vital_points(mailbox.id)
    assert [(p.quota_ratio, p.messages, p.unseen, p.oldest_unseen_minutes) for p in points] == [
        (0.4, 20, 0, None),
        (0.55, 23, 3, 90.0),
    ]
    vitals = services.monitor.status_of(mailbox.id).vitals
    assert vitals is not None and (vitals.quota_ratio, vitals.unseen) == (0.55, 3)  # kept


def test_custom_thresholds_and_none_at_all(tmp_path: Path) -> None:
    clock = Clock()
    services, checker = scripted(tmp_path, clock)
    custom = services.mailboxes.create_mailbox(
        imap_values("Custom", quota_warnings="70, 99"), actor=ACTOR
    )
    silent = services.mailboxes.create_mailbox(
        imap_values("Silent", quota_warnings=""), actor=ACTOR
    )
    checker.answer = lambda _t: passed(quota=used(75))
    checker.check_many([custom.id, silent.id], actor=ACTOR)
    assert subjects(services, custom.id) == [
        f"Mailbox “Custom” (ID {custom.id}) is near full: 75 %"
    ]
    assert kinds(services, silent.id) == []
    assert services.monitor.status_of(custom.id).vitals.quota_level == 70  # type: ignore[union-attr]


def test_unknown_quota_is_never_ok_nor_back_to_normal(tmp_path: Path) -> None:
    clock = Clock()
    services, checker = scripted(tmp_path, clock)
    pop3 = services.mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    imap = services.mailboxes.create_mailbox(imap_values(), actor=ACTOR)
    checker.answer = lambda _t: passed(quota=None, backlog=Backlog(messages=4))
    checker.check_mailbox(pop3.id, actor=ACTOR)
    vitals = services.monitor.status_of(pop3.id).vitals
    assert vitals is not None
    assert (vitals.quota_state, vitals.quota_ratio, vitals.unseen) == ("unknown", None, None)
    assert vitals.backlog_age(clock()) is None
    checker.answer = lambda _t: passed(quota=used(91))
    checker.check_mailbox(imap.id, actor=ACTOR)
    clock.advance(minutes=5)
    checker.answer = lambda _t: passed(quota=Quota(storage_used=10))  # no limit: no ratio
    checker.check_mailbox(imap.id, actor=ACTOR)
    assert kinds(services, imap.id) == [QUOTA]  # unknown is not "back to normal"
    assert services.monitor.status_of(imap.id).vitals.quota_state == "unknown"  # type: ignore[union-attr]


def test_a_snoozed_quota_warning_is_sent_by_the_first_check_after_the_snooze(
    tmp_path: Path,
) -> None:
    clock = Clock()
    services, checker = scripted(tmp_path, clock)
    mailbox = services.mailboxes.create_mailbox(imap_values(), actor=ACTOR)
    services.monitor.snooze(mailbox.id, clock() + timedelta(hours=1), actor=ACTOR)
    checker.answer = lambda _t: passed(quota=used(85))
    checker.check_mailbox(mailbox.id, actor=ACTOR)
    assert kinds(services, mailbox.id) == []
    assert services.monitor.status_of(mailbox.id).vitals.quota_level == 80  # type: ignore[union-attr]
    clock.advance(hours=2)
    checker.check_mailbox(mailbox.id, actor=ACTOR)
    assert kinds(services, mailbox.id) == [QUOTA]


# ---------------------------------------------------------------- backlog


def test_backlog_alerts_once_past_the_threshold_and_once_when_read_again(tmp_path: Path) -> None:
    clock = Clock()
    services, checker = scripted(tmp_path, clock)
    watched = services.mailboxes.create_mailbox(
        imap_values("Watched", backlog_minutes=30), actor=ACTOR
    )
    unwatched = services.mailboxes.create_mailbox(imap_values("Off"), actor=ACTOR)  # default: off
    found = []
    for waited, unseen in ((10, 2), (180, 5), (185, 6), (0, 0)):
        oldest = clock() - timedelta(minutes=waited) if unseen else None
        backlog = Backlog(messages=10, unseen=unseen, oldest_unseen_at=oldest)
        checker.answer = lambda _t, b=backlog: passed(backlog=b)
        checker.check_many([watched.id, unwatched.id], actor=ACTOR)
        found.append(kinds(services, watched.id))
        clock.advance(minutes=5)
    backlog, normal = AlertKind.BACKLOG.value, AlertKind.BACKLOG_NORMAL.value
    assert found == [[], [backlog], [backlog], [backlog, normal]]
    first = services.monitor.alerts_of(watched.id)[1]
    assert first.subject == f"Mailbox “Watched” (ID {watched.id}) backlog: 3 h"
    assert "oldest of 5 unseen messages" in first.text and "30 min threshold" in first.text
    assert kinds(services, unwatched.id) == []
    assert services.monitor.status_of(unwatched.id).vitals.backlog_over is False  # type: ignore[union-attr]


# ---------------------------------------------------------------- sign-in rules


def test_a_changed_offer_is_an_event_and_a_badge_until_a_later_check_signs_in(
    tmp_path: Path,
) -> None:
    clock = Clock()
    services, checker = scripted(tmp_path, clock)
    mailbox = services.mailboxes.create_mailbox(imap_values(), actor=ACTOR)
    checker.check_mailbox(mailbox.id, actor=ACTOR)  # the first offer seen: nothing to compare
    assert kinds(services, mailbox.id) == []
    clock.advance(minutes=5)
    wider = PASSWORD_OFFER.__class__(mechanisms=frozenset({"PLAIN", "LOGIN", "XOAUTH2"}))
    checker.answer = lambda _t: passed(offer=wider)
    checker.check_mailbox(mailbox.id, actor=ACTOR)
    [event] = services.monitor.alerts_of(mailbox.id)
    assert event.kind == AlertKind.SIGNIN_RULES.value
    assert "LOGIN PLAIN → LOGIN PLAIN XOAUTH2" in event.text
    vitals = services.monitor.status_of(mailbox.id).vitals
    assert vitals is not None and vitals.offer_changed_at == clock()
    assert (vitals.offer_before, vitals.offer) == ("LOGIN PLAIN", "LOGIN PLAIN XOAUTH2")
    clock.advance(minutes=5)
    checker.check_mailbox(mailbox.id, actor=ACTOR)  # signed in under the new rules
    assert services.monitor.status_of(mailbox.id).vitals.offer_changed_at is None  # type: ignore[union-attr]
    assert len(services.monitor.alerts_of(mailbox.id)) == 1


def test_password_not_offered_pauses_has_its_own_verdict_and_is_acknowledged_by_an_editor(
    tmp_path: Path,
) -> None:
    clock = Clock()
    services, checker = scripted(tmp_path, clock)
    mailbox = services.mailboxes.create_mailbox(imap_values(), actor=ACTOR)
    checker.check_mailbox(mailbox.id, actor=ACTOR)
    clock.advance(minutes=5)
    hint = "This server no longer accepts password sign-in: switch the mailbox to OAuth"
    checker.answer = lambda _t: failed(
        "password not offered", "The server no longer offers password sign-in", hint,
        offer=OAUTH_ONLY_OFFER,
    )  # fmt: skip
    checker.check_mailbox(mailbox.id, actor=ACTOR)
    status = services.monitor.status_of(mailbox.id)
    assert status.paused(clock()) and status.pause_level == 1  # like a refused sign-in
    assert status.vitals is not None and status.vitals.password_gone
    assert status.vitals.offer_changed_at is not None  # a failed check does not clear it
    assert sorted(kinds(services, mailbox.id)) == ["down", "sign-in rules"]
    [rules_event] = [a for a in services.monitor.alerts_of(mailbox.id) if a.kind == "sign-in rules"]
    assert "no longer accepts password sign-in" in rules_event.text

    viewer = Actor("val@corp.example", Role.VIEWER)
    with pytest.raises(AccessDenied):
        services.monitor.acknowledge_offer(mailbox.id, actor=viewer)
    services.monitor.acknowledge_offer(mailbox.id, actor=ACTOR)
    assert services.monitor.status_of(mailbox.id).vitals.offer_changed_at is None  # type: ignore[union-attr]
    [audit] = [e for e in services.mailboxes.list_audit(mailbox.id) if e.action == "acknowledged"]
    assert audit.actor == ACTOR.name


# ---------------------------------------------------------------- after an outage


def test_after_an_outage_the_check_counts_what_arrived_meanwhile(tmp_path: Path) -> None:
    clock = Clock()
    services, checker = scripted(tmp_path, clock)
    mailbox = services.mailboxes.create_mailbox(imap_values(), actor=ACTOR)
    checker.check_mailbox(mailbox.id, actor=ACTOR)
    assert checker.asked[-1].since is None  # not failing: nothing to count
    clock.advance(minutes=5)
    down_at = clock()
    checker.answer = lambda _t: failed("tcp timeout", "No answer")
    checker.check_many([mailbox.id, mailbox.id], actor=ACTOR)
    clock.advance(minutes=30)
    checker.answer = lambda t: passed(backlog=Backlog(messages=9, unseen=7, arrived_since=7))
    checker.check_many(None, actor=ACTOR)  # Check all asks for it too
    assert checker.asked[-1].since == down_at
    vitals = services.monitor.status_of(mailbox.id).vitals
    assert vitals is not None
    assert (vitals.outage_arrived, vitals.outage_from, vitals.outage_until) == (
        7,
        down_at,
        clock(),
    )
    clock.advance(minutes=5)
    checker.check_mailbox(mailbox.id, actor=ACTOR)
    assert checker.asked[-1].since is None  # working again


# ---------------------------------------------------------------- the settings


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("quota_warnings", "80, ninety", "Quota warnings (%): must be whole percentages"),
        ("quota_warnings", "0, 50", "Quota warnings (%): must be whole percentages"),
        ("quota_warnings", "10,20,30,40,50,60", "Quota warnings (%): must name at most 5"),
        ("backlog_minutes", 0, "Backlog alert after (minutes): enter a whole number of minutes"),
        ("backlog_minutes", True, "Backlog alert after (minutes): must be a whole number"),
        ("backlog_minutes", "soon", "Backlog alert after (minutes): enter a whole number"),
    ],
)
def test_bad_thresholds_name_the_field_and_write_nothing(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    services, _ = scripted(tmp_path, Clock())
    with pytest.raises(ValidationFailed) as caught:
        services.mailboxes.create_mailbox(imap_values(**{field: value}), actor=ACTOR)
    assert str(caught.value).startswith(message)
    assert [e.field for e in caught.value.errors] == [field]
    assert services.mailboxes.list_mailboxes() == []


def test_thresholds_default_to_80_90_95_and_off_and_need_the_edit_permission(
    tmp_path: Path,
) -> None:
    services, _ = scripted(tmp_path, Clock())
    mailbox = services.mailboxes.create_mailbox(imap_values(), actor=ACTOR)
    assert (mailbox.quota_warnings, mailbox.backlog_minutes) == ("80,90,95", None)
    edit = {**imap_values(), "quota_warnings": "95 90", "backlog_minutes": "45"}
    viewer = Actor("val@corp.example", Role.VIEWER)
    with pytest.raises(AccessDenied):
        services.mailboxes.update_mailbox(
            mailbox.id, edit, expected_version=mailbox.version, actor=viewer
        )
    saved = services.mailboxes.update_mailbox(
        mailbox.id, edit, expected_version=mailbox.version, actor=ACTOR
    )
    assert (saved.quota_warnings, saved.backlog_minutes) == ("90,95", 45)


# ---------------------------------------------------------------- health --json and metrics


def test_health_json_and_the_prometheus_gauges_carry_vital_signs(tmp_path: Path) -> None:
    clock = Clock()
    services, checker = scripted(tmp_path, clock)
    full = services.mailboxes.create_mailbox(imap_values("Full"), actor=ACTOR)
    pop3 = services.mailboxes.create_mailbox(mailbox_data("password", name="Pop"), actor=ACTOR)
    never = services.mailboxes.create_mailbox(imap_values("Never"), actor=ACTOR)
    waited = clock() - timedelta(minutes=40)
    backlog = Backlog(messages=30, unseen=2, oldest_unseen_at=waited)
    checker.answer = lambda _t: passed(quota=used(92), backlog=backlog)
    checker.check_mailbox(full.id, actor=ACTOR)
    checker.answer = lambda _t: passed(backlog=Backlog(messages=4))
    checker.check_mailbox(pop3.id, actor=ACTOR)

    out = io.StringIO()
    env = monitor_env(tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        assert cli.main(["health", "--json"], out=out) == 0
    rows = {r["id"]: r for r in json.loads(out.getvalue())["mailboxes"]}
    vitals = rows[full.id]["vitals"]
    assert vitals["quota"] == {
        "state": "near full",
        "ratio": 0.92,
        "level": 90,
        "warnings": [80, 90, 95],
    }
    assert vitals["backlog"]["unseen"] == 2 and vitals["backlog"]["over"] is False
    assert vitals["backlog"]["oldest_unseen_age_seconds"] > 0
    assert vitals["sign_in"]["offer"] == "LOGIN PLAIN"
    assert rows[pop3.id]["vitals"]["quota"]["state"] == "unknown"  # never "ok"
    assert rows[pop3.id]["vitals"]["backlog"]["oldest_unseen_age_seconds"] is None
    assert rows[never.id]["vitals"] is None

    found = scrape(services)
    assert found[("mailbox_quota_ratio", (("mailbox_id", str(full.id)),))] == 0.92
    age = found[("mailbox_oldest_unseen_age_seconds", (("mailbox_id", str(full.id)),))]
    assert age == pytest.approx(40 * 60, abs=1)
    vital_series = [k for k in found if k[0].startswith(("mailbox_quota", "mailbox_oldest"))]
    assert sorted(vital_series) == sorted(
        [
            ("mailbox_quota_ratio", (("mailbox_id", str(full.id)),)),
            ("mailbox_oldest_unseen_age_seconds", (("mailbox_id", str(full.id)),)),
        ]
    )  # unknown (POP3, never read) is absent, not 0
    signs = {k[1][0][1]: v for k, v in found.items() if k[0] == "mailbox_vital_signs"}
    assert signs == {"near_full": 1, "backlog": 0, "rules_changed": 0, "no_password": 0}


def scrape(services: Services) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of one Prometheus scrape, by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(Metrics(services.monitor).text())
        for s in family.samples
    }


def test_a_big_fleet_can_export_the_sign_counts_without_a_series_per_mailbox(
    tmp_path: Path,
) -> None:
    clock = Clock()
    services, checker = scripted(tmp_path, clock, MAILBOX_METRICS_PER_MAILBOX="off")
    backlog = Backlog(messages=30, unseen=2, oldest_unseen_at=clock() - timedelta(minutes=40))
    checker.answer = lambda _t: passed(quota=used(96), backlog=backlog)
    for name in ("One", "Two"):
        mailbox = services.mailboxes.create_mailbox(imap_values(name), actor=ACTOR)
        checker.check_mailbox(mailbox.id, actor=ACTOR)
    found = scrape(services)
    assert not [k for k in found if k[0].startswith(("mailbox_quota", "mailbox_oldest"))]
    assert found[("mailbox_vital_signs", (("sign", "near_full"),))] == 2
    assert found[("mailbox_mailboxes", (("provider", "password"), ("state", "healthy")))] == 2


def test_health_prints_the_signs_past_a_threshold_beside_the_state(tmp_path: Path) -> None:
    clock = Clock()
    services, checker = scripted(tmp_path, clock)
    full = services.mailboxes.create_mailbox(
        {**imap_values("Full"), "backlog_minutes": "30"}, actor=ACTOR
    )
    calm = services.mailboxes.create_mailbox(imap_values("Calm"), actor=ACTOR)
    waited = clock() - timedelta(minutes=40)
    backlog = Backlog(messages=30, unseen=2, oldest_unseen_at=waited)
    checker.answer = lambda _t: passed(quota=used(92), backlog=backlog)
    checker.check_mailbox(full.id, actor=ACTOR)
    checker.answer = lambda _t: passed(quota=used(10), backlog=backlog)
    checker.check_mailbox(calm.id, actor=ACTOR)

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in monitor_env(tmp_path).items():
            patch.setenv(name, value)
        assert cli.main(["health"], out=out) == 0
    lines = {line.split()[0]: line for line in out.getvalue().splitlines()[1:]}
    assert lines[str(full.id)].endswith("Full  (near full 92 %; backlog 40 min (over 30 min))")
    assert lines[str(calm.id)].endswith("Calm")  # under every threshold: nothing to say

    changed = VitalSigns(
        "IMAP", True, (80, 90, 95), None, read_at=clock(), offer="XOAUTH2",
        offer_changed_at=datetime(2026, 11, 30, 9, 5, tzinfo=UTC), password_offered=False,
    )  # fmt: skip
    assert changed.notes(clock()) == [
        "sign-in rules changed 2026-11-30 09:05 UTC",
        "the server no longer offers the password sign-in",
    ]
    assert replace(changed, read_at=None).notes(clock()) == []  # never read: nothing known
