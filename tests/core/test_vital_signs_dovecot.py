"""Vital signs end to end: a real Dovecot (quota plugins, back-dated mail, changed sign-in
rules), the real checker and monitor, the list's badges and exactly one alert per threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mailbox_core.bootstrap import Services
from mailbox_core.listing import MailboxFilter, MailboxQuery, VitalFilter
from mailbox_core.monitoring.rules import AlertKind
from tests.conftest import ACTOR
from tests.core.test_probe_vitals_dovecot import (
    USER,
    append,
    flags_and_unseen,
    message,
    read_then_append,
)
from tests.core.test_probe_vitals_dovecot import stored_bytes as stored
from tests.support.monitoring import Clock, monitor_env, open_monitored
from tests.support.vitals import kinds

pytestmark = [pytest.mark.dovecot, pytest.mark.network]


def services_for(tmp_path: Path, server: Any, clock: Clock) -> Services:
    env = monitor_env(tmp_path, MAILBOX_CA_FILE=str(server.ca_file))
    return open_monitored(env, clock)


def imaps(server: Any, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Helpdesk",
        "mailbox_type": "IMAP",
        "host": "localhost",
        "port": server.ports["imaps"],
        "ssl_enabled": "Yes",
        "account": USER,
        "password": server.users[USER],
        **extra,
    }


def near_full(services: Services) -> list[str]:
    view = services.mailboxes.list_view(
        MailboxQuery(filter=MailboxFilter(vital=VitalFilter.NEAR_FULL))
    )
    return [f"{r.name} {round((r.quota_ratio or 0) * 100)} %" for r in view.page.rows]


def test_a_filling_mailbox_raises_one_alert_per_threshold_and_shows_in_the_list(
    tmp_path: Path, start_dovecot: Any
) -> None:
    server = start_dovecot(quota=True)  # 100 KiB and 10 messages
    clock = Clock()
    services = services_for(tmp_path, server, clock)
    mailbox = services.mailboxes.create_mailbox(imaps(server), actor=ACTOR)
    client = server.client()
    quota = AlertKind.QUOTA.value
    seen: list[list[str]] = []
    try:
        for size in (85 * 1024 - 100 - stored(server), 11 * 1024, 0):
            if size:
                append(client, message(size))
            result = services.checker.check_mailbox(mailbox.id, actor=ACTOR)
            assert result.ok, result.summary
            seen.append(kinds(services, mailbox.id))
            clock.advance(minutes=5)
    finally:
        client.logout()
    assert seen == [[quota], [quota, quota], [quota, quota]], "80 %, then 95 %, then nothing"
    assert near_full(services) == ["Helpdesk 96 %"]
    status = services.monitor.status_of(mailbox.id)
    assert status.vitals is not None and status.vitals.quota_level == 95


def test_an_unread_backlog_alerts_once_and_the_checks_change_no_flag(
    tmp_path: Path, start_dovecot: Any
) -> None:
    server = start_dovecot()
    clock = Clock()
    services = services_for(tmp_path, server, clock)
    mailbox = services.mailboxes.create_mailbox(imaps(server, backlog_minutes=30), actor=ACTOR)
    read_then_append(server, ("waiting 3 h", 3 * 3600, ""))
    before = flags_and_unseen(server)
    for _ in range(2):
        assert services.checker.check_mailbox(mailbox.id, actor=ACTOR).ok
        clock.advance(minutes=5)
    assert flags_and_unseen(server) == before, "EXAMINE and STATUS only: nothing marked read"
    assert kinds(services, mailbox.id) == [AlertKind.BACKLOG.value]
    view = services.mailboxes.list_view(
        MailboxQuery(filter=MailboxFilter(vital=VitalFilter.BACKLOG))
    )
    [row] = view.page.rows
    assert row.unseen == 1 and row.backlog_over
    assert row.oldest_unseen_at is not None


def test_a_server_that_drops_password_sign_in_gets_its_verdict_and_the_badge(
    tmp_path: Path, start_dovecot: Any
) -> None:
    server = start_dovecot()
    clock = Clock()
    services = services_for(tmp_path, server, clock)
    mailbox = services.mailboxes.create_mailbox(imaps(server), actor=ACTOR)
    assert services.checker.check_mailbox(mailbox.id, actor=ACTOR).ok
    clock.advance(minutes=5)
    server.reload("auth_mechanisms = xoauth2 oauthbearer\n")
    result = services.checker.check_mailbox(mailbox.id, actor=ACTOR)
    assert not result.ok and result.failed_step is not None
    assert result.failed_step.problem == "password not offered"
    assert result.failed_step.hint.startswith(
        "This server no longer accepts password sign-in: switch the mailbox to OAuth or an "
        "app password"
    )
    for vital in (VitalFilter.RULES_CHANGED, VitalFilter.NO_PASSWORD):
        view = services.mailboxes.list_view(MailboxQuery(filter=MailboxFilter(vital=vital)))
        assert [r.name for r in view.page.rows] == ["Helpdesk"], vital
