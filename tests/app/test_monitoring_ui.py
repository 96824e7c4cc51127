"""ui/monitoring.py through AppTest: banner, pause with Retry now, history, alerts with
snooze and maintenance window, the list's badges."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

from mailbox_core.bootstrap import open_services
from mailbox_core.config import load_settings
from mailbox_core.models import MailboxCheck
from mailbox_core.monitoring import CheckRecord, Monitor
from tests.conftest import ACTOR
from tests.support.dovecot import free_port
from tests.support.monitoring import plain_imap

PAGE = str(Path(__file__).with_name("monitoring_page.py"))
ENTRYPOINT = str(Path(__file__).parents[2] / "streamlit_app.py")


def test_pause_retry_history_alerts_and_badges(data_dir: Path) -> None:
    services = open_services(load_settings(os.environ, {}))
    values = plain_imap(free_port(), "Stale", "wrong", client_secret_expires="")
    mailbox = services.mailboxes.create_mailbox(values, actor=ACTOR)
    now = services.monitor.now()
    refused = MailboxCheck(
        mailbox_id=mailbox.id,
        started_at=now,
        ok=False,
        failed_step="Sign-in",
        message="The server refused the password for alice@example.com",
        latency_ms=12.0,
        problem="password refused",
    )
    services.mailboxes.record_checks([CheckRecord(refused, hint="Check Account and Password.")])
    services.monitor.dispatch()
    earlier = Monitor(services.mailboxes.monitor.engine, clock=lambda: now - timedelta(minutes=10))
    earlier.start_sweep("an old runner")

    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params["id"] = str(mailbox.id)
    at.run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("Scheduled checks have not run since") for w in warnings)
    assert any(w.startswith("**Paused**") and "refused the password" in w for w in warnings)
    assert {m.label: m.value for m in at.metric}["Uptime 24 h"] == "0.0%"
    frames = [d.value for d in at.dataframe]
    assert list(frames[0]["Alert"]) == [f"Mailbox “Stale” (ID {mailbox.id}) is failing"]

    # The Mailboxes list shows the pause beside the state, and the failing chart.
    listing = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    listing.run()
    assert not listing.exception
    table = listing.dataframe[0].value
    [signs] = table["Signs"][table["ID"] == mailbox.id]
    assert list(signs) == ["Paused (The server refused the password for alice@example.com)"]
    assert any(e.label == "Failing over the last 24 hours" for e in listing.expander)

    [retry] = [b for b in at.button if b.label == "Retry now"]
    retry.click()
    at.run()
    assert not any(w.startswith("**Paused**") for w in (w.value for w in at.warning))
    assert any(e.value.startswith("Retry now: Connection refused") for e in at.error)
    assert not services.monitor.status_of(mailbox.id).paused(services.monitor.now())

    [snooze] = [b for b in at.button if b.label == "Snooze 1 h"]
    snooze.click()
    at.run()
    assert any(c.value.startswith("Alerts snoozed until") for c in at.caption)
    at.text_input(key=f"monitoring.window.{mailbox.id}").input("25:00-03:00")
    at.run()
    [save] = [b for b in at.button if b.label == "Save window"]
    save.click()
    at.run()
    assert any("Maintenance window: enter a time range" in e.value for e in at.error)
    at.text_input(key=f"monitoring.window.{mailbox.id}").input("02:00–03:00")
    at.text_input(key=f"monitoring.zone.{mailbox.id}").input("Europe/Berlin")
    [save] = [b for b in at.button if b.label == "Save window"]
    save.click()
    at.run()
    assert not at.exception
    assert services.monitor.status_of(mailbox.id).window == "02:00–03:00 Europe/Berlin"
    audit = [e.action for e in services.mailboxes.list_audit(mailbox.id)]
    assert audit[:2] == ["maintenance", "snoozed"]


def test_the_list_warns_of_an_expiring_client_secret_and_certificate(data_dir: Path) -> None:
    from datetime import UTC, datetime

    from mailbox_core.probe import Certificate
    from tests.conftest import mailbox_data

    services = open_services(load_settings(os.environ, {}))
    now = datetime.now(UTC)
    soon = (now + timedelta(days=5)).date().isoformat()
    later = (now + timedelta(days=90)).date().isoformat()
    services.mailboxes.create_mailbox(
        mailbox_data("office365_secret", name="Expiring", client_secret_expires=soon), actor=ACTOR
    )
    calm = services.mailboxes.create_mailbox(
        mailbox_data("office365_secret", name="Calm", client_secret_expires=later), actor=ACTOR
    )
    passed = MailboxCheck(
        mailbox_id=calm.id, started_at=now, ok=True, message="Signed in", latency_ms=5.0
    )
    certificate = Certificate(now + timedelta(days=10, hours=1), "Test CA", "imap.example.com")
    services.mailboxes.record_checks([CheckRecord(passed, certificate=certificate)])

    listing = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    listing.run()
    assert not listing.exception
    table = listing.dataframe[0].value
    signs = {name: list(s) for name, s in zip(table["Name"], table["Signs"], strict=True)}
    assert signs == {"Expiring": ["Secret expires in 5 d"], "Calm": ["Certificate expires in 10 d"]}
