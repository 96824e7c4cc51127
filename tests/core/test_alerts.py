"""Alerts against real local receivers (aiosmtpd and an HTTP server): one alert, one
"recovered", digests, snooze and maintenance windows, re-authorise, delivery retries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mailbox_core.bootstrap import Services
from mailbox_core.monitoring import sweep
from mailbox_core.monitoring.alerts import duration
from tests.conftest import ACTOR
from tests.support.dovecot import USERS, free_port
from tests.support.monitoring import Clock, monitor_env, open_monitored, plain_imap
from tests.support.proxy import CountingProxy
from tests.support.receivers import HttpReceiver, SmtpReceiver

pytestmark = [pytest.mark.dovecot, pytest.mark.network]
ALICE = USERS["alice@example.com"]
PUBLIC = "https://mbx.corp.example/mbx"


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    yield receiver
    receiver.stop()


def alerting(
    tmp_path: Path, smtp: SmtpReceiver, hook: HttpReceiver, clock: Clock, **more: str
) -> Services:
    env = monitor_env(
        tmp_path,
        MAILBOX_ALERT_SMTP_URL=smtp.url,
        MAILBOX_ALERT_EMAIL_TO="oncall@example.com, lead@example.com",
        MAILBOX_ALERT_WEBHOOK_URL=f"{hook.url}/hook",
        MAILBOX_PUBLIC_URL=PUBLIC + "/",
        **more,
    )
    return open_monitored(env, clock)


class Switch:
    """A mail server on a fixed port that can be switched off (refused) and on."""

    def __init__(self, upstream: int) -> None:
        self.upstream, self.port = upstream, free_port()
        self.proxy: CountingProxy | None = None

    def on(self) -> None:
        self.proxy = self.proxy or CountingProxy(self.upstream, port=self.port)

    def off(self) -> None:
        if self.proxy:
            self.proxy.stop()
        self.proxy = None


@pytest.fixture
def switch(dovecot_server: Any) -> Iterator[Switch]:
    server = Switch(dovecot_server.ports["imap"])
    yield server
    server.off()


def next_sweep(services: Services, clock: Clock) -> sweep.Sweep:
    """The next sweep that finds every mailbox due (the clock moves to it)."""
    upcoming = [s.next_check_at for s in services.monitor.statuses() if s.next_check_at]
    if upcoming:
        clock.now = max(clock.now, max(upcoming))
    return sweep.sweep(services)


def test_fail_fail_pass_sends_one_alert_and_one_recovered_with_the_duration(
    tmp_path: Path, smtp: SmtpReceiver, hook: HttpReceiver, switch: Switch
) -> None:
    clock = Clock()
    services = alerting(tmp_path, smtp, hook, clock)
    mailbox = services.mailboxes.create_mailbox(
        plain_imap(switch.port, "Helpdesk", ALICE), actor=ACTOR
    )
    began = clock()
    sweep.sweep(services)
    assert smtp.messages == [] and hook.posts == []  # one failure is not an alert yet
    next_sweep(services, clock)
    assert smtp.subjects == [f"Mailbox “Helpdesk” (ID {mailbox.id}) is failing"]
    body = smtp.body(0)
    assert "TCP failed: Connection refused" in body
    assert "What to do: Nothing accepts connections on that port" in body
    assert f"{PUBLIC}/edit_mailbox?id={mailbox.id}" in body
    assert smtp.recipients == [["oncall@example.com", "lead@example.com"]]
    next_sweep(services, clock)  # still failing: nothing more
    switch.on()
    next_sweep(services, clock)
    took = duration(clock() - began)
    assert took.endswith("min") and smtp.subjects[1:] == [
        f"Mailbox “Helpdesk” (ID {mailbox.id}) recovered after {took}",
    ]
    assert len(hook.posts) == 2
    assert hook.posts[0]["title"] == smtp.subjects[0]  # a Teams MessageCard …
    assert hook.posts[0]["text"].startswith(f"*{smtp.subjects[0]}*")  # … and Slack's text
    assert hook.posts[0]["alerts"][0]["mailbox_id"] == mailbox.id
    recorded = services.monitor.alerts_of(mailbox.id)
    assert [a.kind for a in recorded] == ["recovered", "down"]
    assert {a.status for a in recorded} == {"sent"}
    delivered = "email to oncall@example.com, lead@example.com; webhook 127.0.0.1"
    assert delivered in recorded[0].delivery


def test_a_flapping_mailbox_alerts_nobody(
    tmp_path: Path, smtp: SmtpReceiver, hook: HttpReceiver, switch: Switch
) -> None:
    clock = Clock()
    services = alerting(tmp_path, smtp, hook, clock)
    services.mailboxes.create_mailbox(plain_imap(switch.port, "Flappy", ALICE), actor=ACTOR)
    for up in (False, True) * 3:
        switch.on() if up else switch.off()
        assert next_sweep(services, clock).ok is up
    assert smtp.messages == [] and hook.posts == []


def test_twenty_failures_in_one_sweep_send_one_digest(
    tmp_path: Path, smtp: SmtpReceiver, hook: HttpReceiver
) -> None:
    clock = Clock()
    services = alerting(tmp_path, smtp, hook, clock, MAILBOX_ALERT_AFTER="1")
    port = free_port()
    rows = [plain_imap(port, f"Shared server {n}", ALICE) for n in range(20)]
    services.mailboxes.import_mailboxes(rows, actor=ACTOR)
    assert sweep.sweep(services).failed == 20
    assert smtp.subjects == ["Mailbox Manager: 20 alerts (20 down)"]
    text = smtp.body(0)
    assert text.count("- Mailbox “Shared server") == 20
    assert text.count(f"{PUBLIC}/edit_mailbox?id=") == 20
    assert len(hook.posts) == 1 and len(hook.posts[0]["alerts"]) == 20


def test_snoozed_and_maintenance_window_mailboxes_alert_nobody(
    tmp_path: Path, smtp: SmtpReceiver, hook: HttpReceiver
) -> None:
    clock = Clock()
    services = alerting(tmp_path, smtp, hook, clock)
    port = free_port()
    snoozed = services.mailboxes.create_mailbox(plain_imap(port, "Snoozed", ALICE), actor=ACTOR)
    backup = services.mailboxes.create_mailbox(plain_imap(port, "Backup", ALICE), actor=ACTOR)
    services.monitor.snooze(snoozed.id, clock() + timedelta(hours=1), actor=ACTOR)
    berlin = clock().astimezone(ZoneInfo("Europe/Berlin"))
    start, end = berlin - timedelta(minutes=1), berlin + timedelta(hours=2)
    services.monitor.set_window(
        backup.id, f"{start:%H:%M}–{end:%H:%M}", "Europe/Berlin", actor=ACTOR
    )
    for _ in range(4):
        assert next_sweep(services, clock).failed == 2
    assert smtp.messages == [] and hook.posts == []
    assert services.monitor.alerts_of(snoozed.id) == []
    status = services.monitor.status_of(backup.id)
    assert status.window == f"{start:%H:%M}–{end:%H:%M} Europe/Berlin"
    assert status.consecutive_failures == 4  # failures are recorded, nobody is told

    clock.now = services.monitor.status_of(snoozed.id).snoozed_until  # type: ignore[assignment]
    next_sweep(services, clock)  # the snooze is over, the window is not
    assert smtp.subjects == [f"Mailbox “Snoozed” (ID {snoozed.id}) is failing"]


def test_a_refused_refresh_token_alerts_at_once_to_reauthorise(
    tmp_path: Path, smtp: SmtpReceiver, hook: HttpReceiver, dovecot_server: Any,
    oauth_provider: Any,
) -> None:  # fmt: skip
    clock = Clock()
    services = alerting(
        tmp_path,
        smtp,
        hook,
        clock,
        MAILBOX_CA_FILE=str(dovecot_server.ca_file),
        MAILBOX_GOOGLE_TOKEN_URL=oauth_provider.google_token_url,
    )
    values = {
        "name": "Gmail revoked",
        "mailbox_type": "IMAP",
        "host": "localhost",
        "port": dovecot_server.ports["imaps"],
        "ssl_enabled": "Yes",
        "account": "helpdesk@example.com",
        "oauth_enabled": "Yes",
        "oauth_provider": "Gmail",
        "client_id": "1234.apps.googleusercontent.com",
        "client_secret": "gmail-client-secret",
        "refresh_token": "1//revoked",
    }
    mailbox = services.mailboxes.create_mailbox(values, actor=ACTOR)
    sweep.sweep(services)
    assert smtp.subjects == [f"Mailbox “Gmail revoked” (ID {mailbox.id}) needs to be re-authorised"]
    body = smtp.body(0)
    assert "invalid_grant" in body and "re-authorise the app" in body
    assert "Scheduled sign-ins are paused until" in body
    assert services.monitor.status_of(mailbox.id).paused(clock())


def test_an_alert_no_channel_takes_is_kept_and_sent_later(
    tmp_path: Path, hook: HttpReceiver
) -> None:
    clock = Clock()
    env = monitor_env(
        tmp_path, MAILBOX_ALERT_WEBHOOK_URL=f"{hook.url}/hook", MAILBOX_ALERT_AFTER="1"
    )
    services = open_monitored(env, clock)
    mailbox = services.mailboxes.create_mailbox(plain_imap(free_port(), "X", ALICE), actor=ACTOR)
    hook.status = 500
    sweep.sweep(services)
    [alert] = services.monitor.alerts_of(mailbox.id)
    assert alert.status == "pending" and "webhook failed" in alert.delivery
    hook.status = 200
    assert services.monitor.dispatch() == 1
    [alert] = services.monitor.alerts_of(mailbox.id)
    assert alert.status == "sent" and len(hook.posts) == 2


def test_without_channels_alerts_are_recorded(tmp_path: Path) -> None:
    services = open_monitored(monitor_env(tmp_path, MAILBOX_ALERT_AFTER="1"), Clock())
    mailbox = services.mailboxes.create_mailbox(plain_imap(free_port(), "X", ALICE), actor=ACTOR)
    sweep.sweep(services)
    [alert] = services.monitor.alerts_of(mailbox.id)
    assert (alert.kind, alert.status) == ("down", "recorded")
    assert alert.delivery == "no alert channel configured"
