"""The Mailboxes list through AppTest: the view in the query string, summary links, paging,
a selection that follows mailboxes and empties after an action, "select all N matching"."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from streamlit.testing.v1 import AppTest

from mailbox_core.bootstrap import Services, open_services
from mailbox_core.config import load_settings
from mailbox_core.crypto import generate_key
from mailbox_core.models import MailboxCheck
from mailbox_core.schemas import Status
from tests.app.conftest import ENTRYPOINT, button
from tests.conftest import ACTOR, SIGN_IN_PATHS, mailbox_data

TABLE = "mailboxes.table"


@pytest.fixture
def services(data_dir: Path) -> Services:
    return open_services(load_settings())


def add(services: Services, *names: str, **values: Any) -> list[int]:
    rows = [mailbox_data("password", name=name, **values) for name in names]
    return [m.id for m in services.mailboxes.import_mailboxes(rows, actor=ACTOR)]


def fail(services: Services, *ids: int) -> None:
    services.mailboxes.record_checks(
        [
            MailboxCheck(
                mailbox_id=i,
                started_at=datetime.now(UTC),
                ok=False,
                failed_step="Sign-in",
                message="The server refused the password",
                latency_ms=5,
            )
            for i in ids
        ]
    )


def start(**params: str) -> AppTest:
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, at.exception
    return at


def shown(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["Name"])


def tick(at: AppTest, *rows: int) -> None:
    at.session_state[TABLE] = {"selection": {"rows": list(rows), "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception


def ticked(at: AppTest) -> list[int]:
    return list(at.session_state[TABLE]["selection"]["rows"])


def selected(at: AppTest) -> str:
    [caption] = [c.value for c in at.caption if c.value.startswith(("Selected", "Select rows"))]
    return caption


def url(at: AppTest) -> dict[str, str]:
    return {k: at.query_params[k] for k in at.query_params}


# ---------------------------------------------------------------- the view in the URL


def test_a_shared_link_opens_its_view_and_the_widgets_show_it(services: Services) -> None:
    ids = add(services, "Acme one", "Acme two", "Other", "Acme three")
    fail(services, ids[0], ids[3])
    at = start(q="acme", health="failing", sort="name", order="desc", size="100")
    assert shown(at) == ["Acme three", "Acme one"]
    assert at.text_input(key="mailboxes.search").value == "acme"
    assert at.selectbox(key="mailboxes.health").value == "Failing"
    assert at.selectbox(key="mailboxes.sort").value == "Name"
    assert at.selectbox(key="mailboxes.order").value == "Descending"
    assert at.selectbox(key="mailboxes.size").value == 100
    assert url(at) == {"q": "acme", "health": "failing", "sort": "name", "order": "desc",
                       "size": "100"}  # fmt: skip


def test_changing_the_view_writes_it_to_the_url(services: Services) -> None:
    add(services, "Acme one", "Other")
    at = start()
    assert url(at) == {}, "the default view needs no query string"
    at.text_input(key="mailboxes.search").input("ACME").run()
    at.selectbox(key="mailboxes.status").set_value("Active").run()
    assert shown(at) == ["Acme one"]
    assert url(at) == {"q": "ACME", "status": "active"}
    # ... and the link opens that view in a new session.
    again = start(**url(at))
    assert shown(again) == ["Acme one"]
    assert again.selectbox(key="mailboxes.status").value == "Active"


def test_nonsense_in_the_url_is_the_default_view(services: Services) -> None:
    add(services, "One", "Two")
    at = start(status="sideways", sort="; DROP TABLE mailbox", page="-3", size="7", q="")
    assert shown(at) == ["One", "Two"]
    assert url(at) == {}


def test_the_summary_counts_link_to_their_own_lists(services: Services) -> None:
    ids = add(services, "Works", "Broken", "Off", "New")
    services.mailboxes.record_checks(
        [MailboxCheck(mailbox_id=ids[0], started_at=datetime.now(UTC), ok=True,
                      message="Signed in", latency_ms=3)]
    )  # fmt: skip
    fail(services, ids[1])
    services.mailboxes.set_status([ids[2]], Status.NOT_ACTIVE, actor=ACTOR)
    at = start()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Active": "3", "Healthy": "1", "Failing": "1", "Not checked": "1",
                       "Inactive": "1"}  # fmt: skip
    links = {p.value: p.proto.query_string for p in at.get("page_link")}
    expected = {"Show failing": ["Broken"], "Show not checked": ["New"], "Show inactive": ["Off"],
                "Show healthy": ["Works"], "Show active": ["Works", "Broken", "New"]}  # fmt: skip
    for label, names in expected.items():
        params = {k: v[0] for k, v in parse_qs(links[label]).items()}
        assert shown(start(**params)) == names, label


def test_pages_of_the_list_and_a_page_past_the_end(services: Services) -> None:
    add(services, *(f"Box {n:03d}" for n in range(1, 121)))
    at = start(page="3")
    assert shown(at)[0] == "Box 101" and len(shown(at)) == 20
    assert any("Showing 101–120 of 120 matching." in c.value for c in at.caption)
    assert any("Page 3 of 3" in c.value for c in at.caption)
    assert at.get("pagination")[0].value == 3
    late = start(page="9")
    assert shown(late)[0] == "Box 101", "a page past the end shows the last one"
    assert url(late) == {"page": "3"}
    late.get("pagination")[0].set_value(1).run()
    assert shown(late)[0] == "Box 001"
    assert url(late) == {}
    late.selectbox(key="mailboxes.size").set_value(500).run()
    assert len(shown(late)) == 120


# ---------------------------------------------------------------- selection


def test_ticks_follow_the_mailbox_when_the_order_changes(services: Services) -> None:
    add(services, "Bravo", "Alpha", "Charlie")
    at = start()
    tick(at, 0)  # Bravo
    assert selected(at) == "Selected: “Bravo”"
    at.selectbox(key="mailboxes.sort").set_value("Name").run()
    assert shown(at) == ["Alpha", "Bravo", "Charlie"]
    assert ticked(at) == [1], "the tick moved with Bravo, not stayed on row 0"
    assert selected(at) == "Selected: “Bravo”"
    at.text_input(key="mailboxes.search").input("charlie").run()
    assert ticked(at) == [] and selected(at) == "Select rows to act on them."


def test_a_bulk_action_leaves_nothing_ticked_and_the_next_tick_is_alone(
    services: Services,
) -> None:
    add(services, "Alpha", "Bravo", "Charlie")
    at = start()
    tick(at, 1)
    button(at, "Delete").click()
    at.run()
    button(at, "Yes, delete 1").click()
    at.run()
    assert shown(at) == ["Alpha", "Charlie"]
    assert ticked(at) == []
    assert selected(at) == "Select rows to act on them."
    tick(at, 0)
    assert selected(at) == "Selected: “Alpha”"


def test_one_tick_deactivates_at_once_several_are_named_first(services: Services) -> None:
    add(services, "Alpha", "Bravo", "Charlie")
    at = start()
    tick(at, 2)
    button(at, "Deactivate").click()
    at.run()
    assert at.success[0].value == "1 mailbox set to Not Active."
    tick(at, 0, 1)
    button(at, "Activate").click()
    at.run()
    assert "Activate 2 mailboxes: “Alpha”, “Bravo”?" in at.warning[-1].value
    button(at, "Keep them").click()
    at.run()
    assert not at.warning
    assert [m.status for m in services.mailboxes.list_mailboxes()] == [
        Status.ACTIVE,
        Status.ACTIVE,
        Status.NOT_ACTIVE,
    ]


def test_select_all_matching_acts_on_exactly_the_filtered_set(services: Services) -> None:
    add(services, *(f"Acme {n:02d}" for n in range(1, 61)), "Other A", "Other B")
    at = start(q="acme")
    assert len(shown(at)) == 50, "one page of the 60 matching"
    [all_matching] = [c for c in at.checkbox if c.label.startswith("Select all")]
    assert all_matching.label == "Select all 60 mailboxes matching"
    all_matching.check().run()
    assert selected(at) == "Selected: all 60 mailboxes this view matches"
    assert button(at, "Edit").disabled
    button(at, "Deactivate").click()
    at.run()
    assert at.warning[-1].value == "Deactivate all 60 mailboxes this view matches?"
    assert all(m.status is Status.ACTIVE for m in services.mailboxes.list_mailboxes())
    button(at, "Yes, deactivate 60").click()
    at.run()
    assert at.success[0].value == "60 mailboxes set to Not Active."
    statuses = {m.name: m.status for m in services.mailboxes.list_mailboxes()}
    assert {n for n, s in statuses.items() if s is Status.NOT_ACTIVE} == {
        f"Acme {n:02d}" for n in range(1, 61)
    }
    assert not [c for c in at.checkbox if c.label.startswith("Select all") and c.value]


def test_select_all_confirmed_for_another_count_changes_nothing(services: Services) -> None:
    add(services, "Acme 1", "Acme 2")
    at = start(q="acme")
    [all_matching] = [c for c in at.checkbox if c.label.startswith("Select all")]
    all_matching.check().run()
    button(at, "Delete").click()
    at.run()
    add(services, "Acme 3")  # someone else, meanwhile
    button(at, "Yes, delete 2").click()
    at.run()
    assert at.error[0].value.startswith("The filter now matches 3 mailboxes, not the 2")
    assert services.mailboxes.count_mailboxes() == 3


# ---------------------------------------------------------------- honesty


def test_unreadable_secrets_are_counted_named_and_linked(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(services, *(f"Box {n}" for n in range(1, 8)))
    monkeypatch.setenv("MAILBOX_ENCRYPTION_KEYS", generate_key())
    at = start()
    message = at.error[0].value
    assert (
        "“Box 1” (ID 1), “Box 2” (ID 2), “Box 3” (ID 3), “Box 4” (ID 4), “Box 5” (ID 5)" in message
    )
    assert "and 2 more" in message
    [link] = [p for p in at.get("page_link") if p.value == "Show them"]
    assert link.proto.query_string == "unreadable=1"
    assert len(shown(start(unreadable="1"))) == 7


def test_no_secret_or_ciphertext_reaches_the_table(services: Services) -> None:
    for values in SIGN_IN_PATHS.values():
        services.mailboxes.create_mailbox(values, actor=ACTOR)
    at = start()
    frame = at.dataframe[0].value
    text = frame.astype(str).to_csv()
    for values in SIGN_IN_PATHS.values():
        for field in ("password", "client_secret", "refresh_token"):
            if field in values:
                assert values[field] not in text
    assert "gAAAA" not in text
    assert not [c for c in frame.columns if "secret" in c.lower() or "password" in c.lower()]
