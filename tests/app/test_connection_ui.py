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
    """The last step table (a static table: Detail and Hint show in full)."""
    tables = [t.value for t in at.table if "Step" in t.value.columns]
    assert tables, "no step table shown"
    return [str(step) for step in tables[-1]["Step"]]


def passed(at: AppTest) -> list[str]:
    """The one-line headlines of passing tests (each folds its steps)."""
    return [e.label for e in at.expander if "Signed in" in e.label]


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
    assert passed(dovecot_app) == ["Connection test: Signed in and opened INBOX; 3 messages"]
    assert not dovecot_app.success, "a passing test folds into one line"
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
    assert list(dovecot_app.dataframe[0].value["State"]) == [["Not checked"], ["Not checked"]]

    button(dovecot_app, "Check all active mailboxes").click()
    dovecot_app.run()
    assert not dovecot_app.exception
    assert dovecot_app.status[0].label == "Checked 2 active mailboxes: 1 OK, 1 failing."
    # It ends with the failures and their messages.
    [failures] = [d.value for d in dovecot_app.dataframe if "Step" in d.value.columns]
    assert list(failures["Mailbox"]) == ["Broken"]
    assert failures.loc[0, "Step"] == "Sign-in"
    assert "The server refused the password for alice@example.com" in failures.loc[0, "Message"]
    frame = next(d.value for d in dovecot_app.dataframe if "State" in d.value.columns)
    assert list(frame["State"]) == [["OK"], ["Failing"]]
    assert frame.loc[0, "Last error"] == ""
    assert frame.loc[1, "Last error"].startswith("Sign-in: The server refused the password")
    assert list(frame["Messages"].fillna(-1)) == [3, -1]
    assert frame["Last check"].notna().all()
    assert pd.notna(frame.loc[1, "Failing since"])
    assert pd.isna(frame.loc[0, "Failing since"])
    metrics = {m.label: m.value for m in dovecot_app.metric}
    assert metrics == {
        "Active": "2",
        "Healthy": "1",
        "Failing": "1",
        "Not checked": "0",
        "Inactive": "0",
    }
    # On later runs the report stays, folded, until the next check.
    dovecot_app.run()
    assert dovecot_app.expander[0].label == ("Checked 2 active mailboxes: 1 OK, 1 failing.")


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
    assert list(dovecot_app.dataframe[0].value["State"]) == [["Not checked"], ["Failing"]]


def test_testing_several_selected_rows_runs_them_together_failures_first(
    dovecot_app: AppTest, dovecot_server: Any
) -> None:
    services = open_services(load_settings())
    for name, password in (
        ("Good one", "alice-Secret-1"),
        ("Bad one", "wrong"),
        ("Good two", "alice-Secret-1"),
    ):
        services.mailboxes.create_mailbox(
            dovecot_imaps(dovecot_server, name, password), actor=ACTOR
        )
    dovecot_app.run()
    dovecot_app.session_state["mailboxes.table"] = {
        "selection": {"rows": [0, 1, 2], "columns": [], "cells": []}
    }
    dovecot_app.run()
    button(dovecot_app, "Test connection").click()
    dovecot_app.run()
    assert not dovecot_app.exception
    assert dovecot_app.error[0].value.startswith("Bad one (ID 2): The server refused")
    assert passed(dovecot_app) == [
        "Good one (ID 1): Signed in and opened INBOX; 3 messages",
        "Good two (ID 3): Signed in and opened INBOX; 3 messages",
    ]
    health = services.mailboxes.health()
    assert sorted(health) == [1, 2, 3], "every test is recorded"


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
    assert passed(dovecot_app) == [
        "Connection test (unsaved changes): Signed in and opened INBOX; 3 messages"
    ]
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
