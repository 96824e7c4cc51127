"""Vital signs on the pages through AppTest: the Edit page's "Vital signs" panel (values,
unknown, events, arrivals after an outage, charts, Acknowledge), the thresholds in the
form's Advanced section, and the list's badges and filter in the query string."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from mailbox_core.bootstrap import Services, open_services
from mailbox_core.config import load_settings
from mailbox_core.models import MailboxCheck
from mailbox_core.monitoring import CheckRecord
from mailbox_core.probe import Offer
from tests.app.conftest import ENTRYPOINT, button, widget
from tests.conftest import ACTOR, mailbox_data
from tests.support.vitals import OAUTH_ONLY_OFFER, PASSWORD_OFFER, imap_values

EDIT = "pages/edit_mailbox.py"
WIDER = Offer(mechanisms=frozenset({"PLAIN", "LOGIN", "XOAUTH2"}))


@pytest.fixture
def services(data_dir: Path) -> Services:
    return open_services(load_settings())


def record(services: Services, mailbox_id: int, ago: float, offer: Offer, **values: Any) -> None:
    since = values.pop("since", None)
    ok = values.pop("ok", True)
    check = MailboxCheck(
        mailbox_id=mailbox_id,
        started_at=datetime.now(UTC) - timedelta(minutes=ago),
        ok=ok,
        failed_step=None if ok else "Sign-in",
        message="Signed in" if ok else "No answer",
        problem=None if ok else "tcp timeout",
        latency_ms=10,
        offer=offer.summary(),
        **values,
    )
    services.mailboxes.record_checks([CheckRecord(check, offer=offer, since=since)])


def open_edit(mailbox_id: int) -> AppTest:
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30).run()
    at.switch_page(EDIT)
    at.query_params["id"] = str(mailbox_id)
    at.run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_edit_page_shows_vital_signs_events_arrivals_and_charts(services: Services) -> None:
    mailbox = services.mailboxes.create_mailbox(imap_values(backlog_minutes=30), actor=ACTOR)
    oldest = datetime.now(UTC) - timedelta(hours=3, minutes=20)
    record(
        services, mailbox.id, 60, PASSWORD_OFFER, quota_ratio=0.5, unseen=1, oldest_unseen_at=oldest
    )
    record(services, mailbox.id, 50, PASSWORD_OFFER, ok=False)
    down_since = services.mailboxes.health_of(mailbox.id).failing_since  # type: ignore[union-attr]
    record(
        services, mailbox.id, 1, WIDER, quota_ratio=0.92, unseen=12, oldest_unseen_at=oldest,
        arrived_since=7, since=down_since,
    )  # fmt: skip
    at = open_edit(mailbox.id)
    shown = metrics(at)
    assert (shown["Quota"], shown["Unseen"], shown["Oldest unseen waits"]) == ("92 %", "12", "3 h")
    warnings = [w.value for w in at.warning]
    assert "Near full: past the 90 % warning." in warnings
    assert any(w.startswith("Backlog: the oldest unseen message") for w in warnings)
    [changed] = [w for w in warnings if w.startswith("**Sign-in rules changed**")]
    assert "LOGIN PLAIN → LOGIN PLAIN XOAUTH2" in changed
    assert any(
        i.value.startswith("7 messages arrived while the mailbox was failing") for i in at.info
    )
    assert any(c.value == "Quota used (%) over time" for c in at.caption)
    assert any(c.value.startswith("Backlog over time") for c in at.caption)
    assert len(at.get("vega_lite_chart")) == 3  # latency (history), then quota and backlog

    button(at, "Acknowledge").click()
    at.run()
    assert not at.exception
    assert not any(w.value.startswith("**Sign-in rules changed**") for w in at.warning)
    assert services.monitor.status_of(mailbox.id).vitals.offer_changed_at is None  # type: ignore[union-attr]
    assert services.mailboxes.list_audit(mailbox.id)[0].action == "acknowledged"


def test_unknown_is_shown_as_unknown_and_a_lost_password_sign_in_has_its_verdict(
    services: Services,
) -> None:
    pop3 = services.mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    record(services, pop3.id, 1, Offer(mechanisms=frozenset({"PLAIN"})))
    at = open_edit(pop3.id)
    assert metrics(at)["Quota"] == "unknown" and metrics(at)["Unseen"] == "unknown"
    assert any(c.value.startswith("No quota or backlog recorded yet") for c in at.caption)

    imap = services.mailboxes.create_mailbox(imap_values(), actor=ACTOR)
    record(services, imap.id, 2, PASSWORD_OFFER)
    record(services, imap.id, 1, OAUTH_ONLY_OFFER)
    at = open_edit(imap.id)
    assert any(
        e.value.startswith("This server no longer accepts password sign-in") for e in at.error
    )


def test_thresholds_are_set_in_advanced_with_a_suggestion_and_field_named_errors(
    services: Services,
) -> None:
    mailbox = services.mailboxes.create_mailbox(imap_values(check_interval=10), actor=ACTOR)
    at = open_edit(mailbox.id)
    assert widget(at, "Quota warnings (%)").value == "80, 90, 95"
    assert widget(at, "Backlog alert after (minutes)").value is None  # off by default
    assert any(c.value.startswith("Suggested backlog alert: 30 minutes") for c in at.caption)
    widget(at, "Quota warnings (%)").input("80, lots")
    at.run()
    button(at, "Save").click()
    at.run()
    assert any(
        e.value.startswith("Quota warnings (%): must be whole percentages") for e in at.error
    )
    assert services.mailboxes.get_mailbox(mailbox.id).quota_warnings == "80,90,95"  # unchanged
    widget(at, "Quota warnings (%)").input("95, 70")
    widget(at, "Backlog alert after (minutes)").set_value(30)
    at.run()
    button(at, "Save").click()
    at.run()
    assert not at.exception
    saved = services.mailboxes.get_mailbox(mailbox.id)
    assert (saved.quota_warnings, saved.backlog_minutes) == ("70,95", 30)


def test_the_list_shows_badges_beside_the_state_and_filters_by_them(services: Services) -> None:
    full = services.mailboxes.create_mailbox(imap_values("Full"), actor=ACTOR)
    piling = services.mailboxes.create_mailbox(
        imap_values("Piling", backlog_minutes=30), actor=ACTOR
    )
    calm = services.mailboxes.create_mailbox(imap_values("Calm"), actor=ACTOR)
    record(services, full.id, 5, PASSWORD_OFFER, quota_ratio=0.92)
    waited = datetime.now(UTC) - timedelta(hours=3, minutes=5)
    record(services, piling.id, 2, PASSWORD_OFFER, unseen=3, oldest_unseen_at=waited)
    record(services, piling.id, 1, WIDER, unseen=3, oldest_unseen_at=waited)
    record(services, calm.id, 1, PASSWORD_OFFER, quota_ratio=0.3)

    at = AppTest.from_file(ENTRYPOINT, default_timeout=30).run()
    assert not at.exception
    frame = at.dataframe[0].value
    signs = dict(zip(frame["Name"], frame["Signs"], strict=True))
    assert list(signs["Full"]) == ["Near full 92 %"]
    assert list(signs["Piling"]) == ["Backlog 3 h", "Sign-in rules changed"]
    assert list(signs["Calm"]) == []
    assert list(frame.columns[:4]) == ["ID", "Name", "State", "Signs"]
    shown = metrics(at)  # the summary counts the signs some mailbox shows, each a link
    assert (shown["Near full"], shown["Backlog"], shown["Sign-in rules changed"]) == ("1", "1", "1")
    assert "No password sign-in" not in shown
    links = {p.value: p.proto.query_string for p in at.get("page_link")}
    assert links["Show sign-in rules changed"] == "signs=rules-changed"

    at.selectbox(key="mailboxes.vital").select("Backlog")
    at.run()
    assert list(at.dataframe[0].value["Name"]) == ["Piling"]
    assert at.query_params["signs"] == "backlog"

    linked = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    linked.query_params["signs"] = "near-full"
    linked.run()
    assert list(linked.dataframe[0].value["Name"]) == ["Full"]
