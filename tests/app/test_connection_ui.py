"""Test connection and Check all in the pages, against the private Dovecot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from mailbox_core.bootstrap import open_services
from mailbox_core.config import load_settings
from tests.app.conftest import button, fill, open_new_mailbox
from tests.conftest import ACTOR, dovecot_imaps

pytestmark = [pytest.mark.dovecot]


@pytest.fixture
def dovecot_app(data_dir: Path, dovecot_server: Any, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("MAILBOX_CA_FILE", str(dovecot_server.ca_file))
    monkeypatch.setenv("MAILBOX_CHECK_TIMEOUT", "3")
    return AppTest.from_file(
        str(Path(__file__).parents[2] / "streamlit_app.py"), default_timeout=30
    )


def steps_table(at: AppTest) -> list[str]:
    tables = [d.value for d in at.dataframe if "Step" in d.value.columns]
    assert tables, "no step table shown"
    return [str(step) for step in tables[-1]["Step"]]


def test_unsaved_form_test_connection_shows_each_step(
    dovecot_app: AppTest, dovecot_server: Any, data_dir: Path
) -> None:
    dovecot_app.run()
    open_new_mailbox(dovecot_app)
    fill(dovecot_app, dovecot_imaps(dovecot_server, "Draft", "alice-Secret-1"))
    button(dovecot_app, "Test connection").click()
    dovecot_app.run()
    assert not dovecot_app.exception
    assert [t.value for t in dovecot_app.title] == ["New Mailbox"]
    assert any("Signed in and opened INBOX; 3 messages" in s.value for s in dovecot_app.success)
    assert steps_table(dovecot_app) == [
        "✅ DNS",
        "✅ TCP",
        "✅ TLS",
        "✅ Greeting",
        "✅ Sign-in",
        "✅ Mailbox",
    ]
    assert "alice-Secret-1" not in repr(dovecot_app.session_state["new_mailbox.probe"])
    # The page opened the database (the list ran first) and testing saved nothing.
    assert (data_dir / "mailboxes.db").exists()
    assert open_services(load_settings()).mailboxes.count_mailboxes() == 0


def test_unsaved_form_with_wrong_password_shows_the_hint(
    dovecot_app: AppTest, dovecot_server: Any
) -> None:
    dovecot_app.run()
    open_new_mailbox(dovecot_app)
    fill(dovecot_app, dovecot_imaps(dovecot_server, "Draft", "wrong-one"))
    button(dovecot_app, "Test connection").click()
    dovecot_app.run()
    message = dovecot_app.error[0].value
    assert "The server refused the password for alice@example.com" in message
    assert "Check Account and Password." in message
    assert steps_table(dovecot_app)[-2:] == ["❌ Sign-in", "⏭️ Mailbox"]


def test_check_all_shows_progress_then_health(dovecot_app: AppTest, dovecot_server: Any) -> None:
    services = open_services(load_settings())
    services.mailboxes.create_mailbox(
        dovecot_imaps(dovecot_server, "Works", "alice-Secret-1"), actor=ACTOR
    )
    services.mailboxes.create_mailbox(dovecot_imaps(dovecot_server, "Broken", "wrong"), actor=ACTOR)
    dovecot_app.run()
    assert list(dovecot_app.dataframe[0].value["Result"]) == ["Not checked", "Not checked"]

    button(dovecot_app, "Check all active mailboxes").click()
    dovecot_app.run()
    assert not dovecot_app.exception
    assert dovecot_app.status[0].label == "Checked 2 active mailboxes: 1 OK, 1 failing."
    frame = dovecot_app.dataframe[0].value
    assert list(frame["Result"]) == ["OK", "Failed: Sign-in"]
    assert list(frame["Messages"].fillna(-1)) == [3, -1]
    assert frame["Last check"].notna().all()
    assert pd.notna(frame.loc[1, "Failing since"])
    assert pd.isna(frame.loc[0, "Failing since"])
    metrics = {m.label: m.value for m in dovecot_app.metric}
    assert metrics == {"Active": "2", "Healthy": "1", "Failing": "1"}


def test_selected_row_test_connection_shows_its_steps(
    dovecot_app: AppTest, dovecot_server: Any
) -> None:
    services = open_services(load_settings())
    services.mailboxes.create_mailbox(
        dovecot_imaps(dovecot_server, "First", "alice-Secret-1"), actor=ACTOR
    )
    services.mailboxes.create_mailbox(dovecot_imaps(dovecot_server, "Second", "wrong"), actor=ACTOR)
    dovecot_app.run()
    assert button(dovecot_app, "Test connection").disabled
    dovecot_app.session_state["mailboxes.table"] = {
        "selection": {"rows": [1], "columns": [], "cells": []}
    }
    dovecot_app.run()
    assert "Selected: “Second”" in [c.value for c in dovecot_app.caption]
    button(dovecot_app, "Test connection").click()
    dovecot_app.run()
    assert not dovecot_app.exception
    assert dovecot_app.error[0].value.startswith("Second (ID 2): The server refused")
    assert steps_table(dovecot_app)[-2] == "❌ Sign-in"
    assert list(dovecot_app.dataframe[0].value["Result"]) == ["Not checked", "Failed: Sign-in"]


def test_edit_page_tests_unsaved_changes_with_the_stored_password(
    dovecot_app: AppTest, dovecot_server: Any
) -> None:
    from tests.app.conftest import set_field, widget

    services = open_services(load_settings())
    mailbox = services.mailboxes.create_mailbox(
        dovecot_imaps(dovecot_server, "Edited", "alice-Secret-1", comments="old"), actor=ACTOR
    )
    dovecot_app.run()
    dovecot_app.switch_page("pages/edit_mailbox.py")
    dovecot_app.query_params["id"] = str(mailbox.id)
    dovecot_app.run()
    assert widget(dovecot_app, "Password").value == ""
    # Not a destination field: the stored password may be used.
    set_field(dovecot_app, "comments", "unsaved note")
    button(dovecot_app, "Test connection").click()
    dovecot_app.run()
    assert not dovecot_app.exception
    assert any(
        "Connection test (unsaved changes): Signed in and opened INBOX; 3 messages" in s.value
        for s in dovecot_app.success
    )
    saved = services.mailboxes.get_mailbox(mailbox.id)
    assert saved.comments == "old", "testing must not save"
    assert mailbox.id not in services.mailboxes.health(), "an edit test is not recorded"


def test_edit_page_asks_for_the_password_again_when_the_server_changes(
    dovecot_app: AppTest, dovecot_server: Any
) -> None:
    from tests.app.conftest import set_field, widget
    from tests.support.hostile import CaptureServer

    services = open_services(load_settings())
    mailbox = services.mailboxes.create_mailbox(
        dovecot_imaps(dovecot_server, "Moved", "alice-Secret-1"), actor=ACTOR
    )
    capture = CaptureServer()
    try:
        dovecot_app.run()
        dovecot_app.switch_page("pages/edit_mailbox.py")
        dovecot_app.query_params["id"] = str(mailbox.id)
        dovecot_app.run()
        set_field(dovecot_app, "host", "127.0.0.1")
        set_field(dovecot_app, "ssl_enabled", "No")
        set_field(dovecot_app, "port", capture.port)
        widget(dovecot_app, "Allow sign-in without encryption").set_value(True)
        dovecot_app.run()
        button(dovecot_app, "Test connection").click()
        dovecot_app.run()
        assert not dovecot_app.exception
        errors = [e.value for e in dovecot_app.error]
        assert any(
            e.startswith(
                "Password: type it again: the stored Password is only sent to the "
                "server it was saved for, and Host, Port, SSL Enabled changed"
            )
            for e in errors
        ), errors
        assert capture.connections == 0, "nothing may be sent to the new server"
        # Typed again, the test goes ahead with what the user typed.
        set_field(dovecot_app, "password", "typed-for-the-new-server")
        button(dovecot_app, "Test connection").click()
        dovecot_app.run()
        assert capture.received_text().count("typed-for-the-new-server") == 1
        assert "alice-Secret-1" not in capture.received_text()
    finally:
        capture.stop()
