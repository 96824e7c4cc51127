"""The monitor's rules as pure functions: fault, pause, backoff, alerts, expiry, windows."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from mailbox_core.config import load_settings
from mailbox_core.errors import ConfigurationError, ValidationFailed
from mailbox_core.monitoring.alerts import duration
from mailbox_core.monitoring.rules import (
    AlertKind,
    AlertState,
    Fault,
    Schedule,
    after_check,
    alert_step,
    expiry_warning,
    fault_of,
    needs_reauthorising,
    parse_window,
)
from mailbox_core.monitoring.worker import chunks, cron

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ok", "problem", "detail", "fault"),
    [
        (True, None, "", Fault.NONE),
        (False, "password refused", "The server refused the password", Fault.ACCOUNT),
        (False, "token refused", "", Fault.ACCOUNT),
        (False, "no token", "No access token: … (invalid_grant)", Fault.ACCOUNT),
        (False, "no token", "… refused the token request (AADSTS7000222)", Fault.ACCOUNT),
        (False, "no token", "Could not reach the token endpoint", Fault.OTHER),
        (False, "connection refused", "", Fault.OTHER),
        (False, "mailbox locked", "", Fault.OTHER),
        (False, "certificate untrusted", "", Fault.OTHER),
        (False, None, "keys", Fault.OTHER),
    ],
)
def test_whose_fault_a_failure_is(ok: bool, problem: str | None, detail: str, fault: Fault) -> None:
    assert fault_of(ok, problem, detail) is fault


def test_only_a_refused_grant_asks_to_reauthorise() -> None:
    assert needs_reauthorising("no token", "refused the grant (invalid_grant)")
    assert not needs_reauthorising("password refused", "invalid_grant")


def step(current: Schedule, fault: Fault, interval: int = 5, jitter: float = 0.0) -> Schedule:
    return after_check(
        current, at=T0, interval_minutes=interval, fault=fault, reason="why", jitter=jitter
    )


def test_refused_sign_ins_pause_one_hour_doubling_to_a_day() -> None:
    schedule, waits = Schedule(None), []
    for _ in range(7):
        schedule = step(schedule, Fault.ACCOUNT, jitter=0.99)
        assert schedule.paused_until == schedule.next_check_at
        waits.append((schedule.paused_until - T0) / timedelta(hours=1))  # type: ignore[operator]
    assert waits == [1, 2, 4, 8, 16, 24, 24]
    assert step(schedule, Fault.NONE).pause_level == 0


def test_other_failures_back_off_to_an_hour_and_reset_on_success() -> None:
    schedule, waits = Schedule(None), []
    for _ in range(6):
        schedule = step(schedule, Fault.OTHER)
        assert schedule.pause_level == 0
        waits.append((schedule.next_check_at - T0) / timedelta(minutes=1))  # type: ignore[operator]
    assert waits == [5, 10, 20, 40, 60, 60]
    long = step(Schedule(None), Fault.OTHER, interval=120)
    assert long.next_check_at == T0 + timedelta(hours=2)  # never sooner than the interval
    assert step(schedule, Fault.NONE).backoff_level == 0


@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.999])
def test_the_next_check_is_the_interval_plus_at_most_ten_percent(jitter: float) -> None:
    after = step(Schedule(None), Fault.NONE, interval=10, jitter=jitter)
    assert after.next_check_at is not None
    assert T0 + timedelta(minutes=10) <= after.next_check_at <= T0 + timedelta(minutes=11)


def run(sequence: str, alert_after: int = 2, quiet: str = "") -> list[AlertKind | None]:
    """F = failed check, P = passed, A = refused sign-in; ``quiet`` marks silent checks."""
    state, failures, events = AlertState(), 0, []
    for n, mark in enumerate(sequence):
        ok = mark == "P"
        failures = 0 if ok else failures + 1
        state, event = alert_step(
            state,
            ok=ok,
            failures=failures,
            failing_since=T0 if failures else None,
            fault=Fault.ACCOUNT if mark == "A" else Fault.NONE if ok else Fault.OTHER,
            alert_after=alert_after,
            quiet=n < len(quiet) and quiet[n] == "q",
        )
        events.append(event)
    return events


@pytest.mark.parametrize(
    ("sequence", "quiet", "expected"),
    [
        ("FFP", "", [None, AlertKind.DOWN, AlertKind.RECOVERED]),
        ("FFFFFP", "", [None, AlertKind.DOWN, None, None, None, AlertKind.RECOVERED]),
        ("FPFPFP", "", [None] * 6),
        ("AP", "", [AlertKind.DOWN, AlertKind.RECOVERED]),
        ("FFFP", "qqq", [None] * 4),
        ("FFFFP", "qqq", [None, None, None, AlertKind.DOWN, AlertKind.RECOVERED]),
        ("FFP", "..q", [None, AlertKind.DOWN, AlertKind.RECOVERED]),
    ],
)
def test_an_alert_opens_once_and_recovers_once(
    sequence: str, quiet: str, expected: list[AlertKind | None]
) -> None:
    assert run(sequence, quiet=quiet) == expected


@pytest.mark.parametrize(
    ("days_left", "warned", "due"),
    [
        (40, None, None),
        (20, None, 30),
        (20, 30, None),
        (5, None, 7),
        (5, 30, 7),
        (5, 7, None),
        (-1, 7, None),
    ],
)
def test_each_expiry_threshold_warns_once(days_left: float, warned: int | None, due: int) -> None:
    assert expiry_warning(days_left, (30, 7), warned) == due


def test_maintenance_windows_in_a_time_zone_and_across_midnight() -> None:
    night = parse_window("23:30–01:00", "Europe/Berlin")
    assert (night.start, night.end) == (time(23, 30), time(1, 0))
    assert str(night) == "23:30–01:00 Europe/Berlin"
    berlin_midnight = datetime(2026, 1, 15, 23, 0, tzinfo=UTC)  # 00:00 in Berlin (CET)
    assert night.contains(berlin_midnight)
    assert not night.contains(berlin_midnight + timedelta(hours=1))
    assert parse_window("2:00-3:00").contains(datetime(2026, 1, 1, 2, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    ("window", "zone", "field"),
    [("02:00", "UTC", "window"), ("25:00-03:00", "UTC", "window"), ("02:00-02:00", "UTC",
     "window"), ("02:00-03:00", "Mars/Olympus", "zone")],
)  # fmt: skip
def test_a_bad_window_names_its_field(window: str, zone: str, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_window(window, zone)
    assert caught.value.errors[0].field == field


def test_durations_read_as_people_say_them() -> None:
    assert [duration(timedelta(seconds=s)) for s in (5, 600, 3900, 7200, 93600)] == [
        "5 s", "10 min", "1 h 5 min", "2 h", "1 d 2 h",
    ]  # fmt: skip


def test_worker_jobs_hold_100_to_500_mailboxes_and_ticks_become_cron() -> None:
    assert [len(c) for c in chunks(list(range(150)))] == [100, 50]
    assert [len(c) for c in chunks(list(range(3000)))] == [300] * 10
    assert {len(c) for c in chunks(list(range(20000)))} == {500}
    assert (cron(60), cron(5), cron(300)) == ("* * * * *", "* * * * * */5", "*/5 * * * *")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"MAILBOX_CHECK_TICK": "45"}, "MAILBOX_CHECK_TICK must divide"),
        ({"MAILBOX_CHECK_LEASE": "5"}, "MAILBOX_CHECK_LEASE must be longer"),
        ({"MAILBOX_LOGIN_FAILURE_BUDGET": "2.5"}, "must be a whole number"),
        ({"MAILBOX_ALERT_EMAIL_TO": "a@example.com"}, "MAILBOX_ALERT_SMTP_URL is not"),
    ],
)
def test_monitor_settings_are_checked(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(settings)


def test_monitor_settings_defaults_follow_the_timeout() -> None:
    monitor = load_settings({"MAILBOX_CHECK_TIMEOUT": "20"}).monitor
    assert (monitor.tick, monitor.lease, monitor.login_failure_budget) == (60, 70, 10)
    assert (monitor.alert_after, monitor.digest_after, monitor.retention_days) == (2, 5, 30)
