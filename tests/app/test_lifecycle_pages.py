"""Edit, delete, activate/deactivate, duplicate, bulk actions and Activity, through AppTest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from mailbox_core.access import Actor
from mailbox_core.bootstrap import Services, open_services
from mailbox_core.config import load_settings
from mailbox_core.schemas import Status
from tests.app.conftest import ENTRYPOINT, button, set_field, widget
from tests.conftest import ACTOR, SIGN_IN_PATHS, mailbox_data

EDIT = "pages/edit_mailbox.py"


@pytest.fixture
def services(data_dir: Path) -> Services:
    return open_services(load_settings())


def select(at: AppTest, *rows: int) -> None:
    at.session_state["mailboxes.table"] = {
        "selection": {"rows": list(rows), "columns": [], "cells": []}
    }
    at.run()


def open_edit(mailbox_id: int) -> AppTest:
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30).run()
    at.switch_page(EDIT)
    at.query_params["id"] = str(mailbox_id)
    at.run()
    assert not at.exception
    return at


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def test_edit_from_the_list_keeps_a_blank_password(app: AppTest, services: Services) -> None:
    mailbox = services.mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    app.run()
    select(app, 0)
    button(app, "Edit").click()
    app.run()
    assert titles(app) == ["Edit Mailbox: Support POP3"]
    assert app.query_params["id"] == str(mailbox.id)
    assert widget(app, "Password").value == ""
    assert "Password: set (never shown). Type a new value to replace it." in [
        c.value for c in app.caption
    ]
    assert widget(app, "Host").value == "pop.example.com"
    set_field(app, "port", 1995)
    button(app, "Save").click()
    app.run()
    # A new port is a new destination: the stored password goes there only on purpose.
    assert titles(app) == ["Edit Mailbox: Support POP3"]
    assert any(e.value.startswith("Password: type it again") for e in app.error)
    assert services.mailboxes.get_mailbox(mailbox.id).port == 110
    widget_checkbox = [c for c in app.checkbox if c.label.startswith("Keep the stored Password")]
    assert [c.label for c in widget_checkbox] == ["Keep the stored Password for the new server"]
    widget_checkbox[0].check()
    app.run()
    button(app, "Save").click()
    app.run()
    assert titles(app) == ["Mailboxes"]
    assert app.success[0].value == f"Mailbox “Support POP3” (ID {mailbox.id}) saved."
    assert app.dataframe[0].value.loc[0, "Port"] == 1995
    assert (
        services.mailboxes.get_credentials(mailbox.id).password
        == SIGN_IN_PATHS["password"]["password"]
    )
    assert "pop-password" not in repr(app.session_state.to_dict())


def test_edit_page_shows_every_problem_and_saves_nothing(services: Services) -> None:
    mailbox = services.mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    at = open_edit(mailbox.id)
    set_field(at, "host", "bad host")
    button(at, "Save").click()
    at.run()
    assert any(e.value.startswith("Host:") for e in at.error)
    assert services.mailboxes.get_mailbox(mailbox.id).host == "pop.example.com"


def test_second_editor_is_refused_and_the_first_save_stays(services: Services) -> None:
    mailbox = services.mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    first, second = open_edit(mailbox.id), open_edit(mailbox.id)
    set_field(first, "comments", "first editor")
    button(first, "Save").click()
    first.run()
    set_field(second, "host", "other.example.com")
    button(second, "Save").click()
    second.run()
    message = second.error[0].value
    assert message.startswith("This mailbox was changed by someone else at ")
    assert "reload to see their change" in message
    kept = services.mailboxes.get_mailbox(mailbox.id)
    assert (kept.comments, kept.host) == ("first editor", "pop.example.com")
    button(second, "Reload (discard my changes)").click()
    second.run()
    assert widget(second, "Comments").value == "first editor"


def test_delete_asks_first_naming_the_mailbox(services: Services) -> None:
    mailbox = services.mailboxes.create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    at = open_edit(mailbox.id)
    button(at, "Delete").click()
    at.run()
    assert "Delete mailbox “Gmail helpdesk”" in at.warning[-1].value
    assert services.mailboxes.count_mailboxes() == 1
    button(at, "Yes, delete").click()
    at.run()
    assert titles(at) == ["Mailboxes"]
    assert at.success[0].value == "Mailbox “Gmail helpdesk” deleted."
    assert services.mailboxes.count_mailboxes() == 0


def test_duplicate_opens_new_mailbox_prefilled_without_secrets(services: Services) -> None:
    mailbox = services.mailboxes.create_mailbox(mailbox_data("office365_secret"), actor=ACTOR)
    at = open_edit(mailbox.id)
    button(at, "Duplicate").click()
    at.run()
    assert titles(at) == ["New Mailbox"]
    # AppTest keeps re-running a page picked with at.switch_page() even after the script
    # switched pages itself (a browser follows the switch): follow it by hand.
    at.switch_page("pages/new_mailbox.py")
    assert widget(at, "Name").value == "O365 app-only (copy)"
    assert widget(at, "Tenant ID").value == SIGN_IN_PATHS["office365_secret"]["tenant_id"]
    assert widget(at, "Client Secret").value == ""
    set_field(at, "client_secret", "another-secret")
    button(at, "OK").click()
    at.run()
    assert titles(at) == ["Mailboxes"]
    assert services.mailboxes.count_mailboxes() == 2


def test_deactivate_from_the_list(app: AppTest, services: Services) -> None:
    mailbox = services.mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    app.run()
    select(app, 0)
    button(app, "Deactivate").click()
    app.run()
    assert app.success[0].value == "1 mailbox set to Not Active."
    assert app.dataframe[0].value.loc[0, "Status"] == "Not Active"
    assert services.mailboxes.list_audit(mailbox.id)[0].action == "deactivated"


def test_bulk_deactivate_names_them_first_and_bulk_delete_asks_once(
    app: AppTest, services: Services
) -> None:
    for path in ("password", "gmail", "office365_secret"):
        services.mailboxes.create_mailbox(mailbox_data(path), actor=ACTOR)
    app.run()
    select(app, 0, 1)
    button(app, "Deactivate").click()
    app.run()
    # Several at once are named before anything changes.
    assert "Deactivate 2 mailboxes: “Support POP3”, “Gmail helpdesk”?" in app.warning[-1].value
    assert list(app.dataframe[0].value["Status"]) == ["Active", "Active", "Active"]
    button(app, "Yes, deactivate 2").click()
    app.run()
    assert app.success[0].value == "2 mailboxes set to Not Active."
    assert list(app.dataframe[0].value["Status"]) == ["Not Active", "Not Active", "Active"]
    assert ticked(app) == [], "a bulk action leaves nothing selected"
    select(app, 1, 2)
    button(app, "Delete").click()
    app.run()
    assert "Delete 2 mailboxes: “Gmail helpdesk”, “O365 app-only”?" in app.warning[-1].value
    button(app, "Yes, delete 2").click()
    app.run()
    assert list(app.dataframe[0].value["Name"]) == ["Support POP3"]
    assert [m.status for m in services.mailboxes.list_mailboxes()] == [Status.NOT_ACTIVE]
    assert ticked(app) == []


def ticked(at: AppTest) -> list[int]:
    """The rows the table's selection holds, as the browser is told."""
    return list(at.session_state["mailboxes.table"]["selection"]["rows"])


def test_activity_page_lists_changes_and_filters_by_mailbox(services: Services) -> None:
    one = services.mailboxes.create_mailbox(mailbox_data("password"), actor=Actor.local("ann"))
    services.mailboxes.create_mailbox(mailbox_data("gmail"), actor=Actor.local("ann"))
    services.mailboxes.set_status([one.id], Status.NOT_ACTIVE, actor=Actor.local("bob"))
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30).run()
    at.switch_page("pages/activity.py").run()
    frame = at.dataframe[0].value
    assert list(frame["Action"]) == ["deactivated", "created", "created"]
    assert frame.loc[0, "Changes"] == "Status: Active → Not Active"
    assert frame.loc[0, "Who"] == "bob"
    at.text_input(key="activity.mailbox").input("support pop3").run()
    assert list(at.dataframe[0].value["Action"]) == ["deactivated", "created"]
    at.text_input(key="activity.mailbox").input(str(one.id)).run()
    assert list(at.dataframe[0].value["Mailbox"]) == [f"Support POP3 (ID {one.id})"] * 2
    at.text_input(key="activity.mailbox").input("").run()
    at.selectbox(key="activity.actor").set_value("bob").run()
    assert list(at.dataframe[0].value["Action"]) == ["deactivated"]
    assert "pop-password" not in at.dataframe[0].value.to_csv()


def test_edit_page_without_a_valid_id_explains(data_dir: Path) -> None:
    for value in ("", "abc", "999"):
        at = (
            open_edit(999)
            if value == "999"
            else AppTest.from_file(ENTRYPOINT, default_timeout=30).run()
        )
        if value != "999":
            at.switch_page(EDIT)
            at.query_params["id"] = value
            at.run()
        assert not at.exception
        assert at.error, value


def test_import_shows_a_preview_then_imports_all(app: AppTest, services: Services) -> None:
    import json

    rows = [mailbox_data("password"), mailbox_data("gmail")]
    app.file_uploader(key="mailboxes.import_file").set_value(
        ("boxes.json", json.dumps(rows).encode(), "application/json")
    )
    app.run()
    preview = app.dataframe[-1].value
    assert list(preview["Name"]) == ["Support POP3", "Gmail helpdesk"]
    assert list(preview["Refresh Token"]) == ["", "set"]
    assert SIGN_IN_PATHS["gmail"]["refresh_token"] not in preview.to_csv()
    button(app, "Import 2 mailboxes").click()
    app.run()
    assert app.success[0].value == "Imported 2 mailboxes."
    assert services.mailboxes.count_mailboxes() == 2
    assert [b.label for b in app.get("download_button")] == ["Export CSV", "Export JSON"]


def test_import_with_a_bad_row_lists_problems_and_writes_nothing(
    app: AppTest, services: Services
) -> None:
    import json

    rows = [mailbox_data("password"), mailbox_data("gmail", account="not-an-email")]
    app.file_uploader(key="mailboxes.import_file").set_value(
        ("boxes.json", json.dumps(rows).encode(), "application/json")
    )
    app.run()
    assert app.error[0].value == "Nothing can be imported: 1 problems."
    problems = app.dataframe[-1].value
    assert (problems.loc[0, "Row"], problems.loc[0, "Field"]) == (2, "Account")
    assert not [b for b in app.button if b.label.startswith("Import ")]
    assert services.mailboxes.count_mailboxes() == 0


def test_duplicate_from_the_list(app: AppTest, services: Services) -> None:
    services.mailboxes.create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    app.run()
    select(app, 0)
    button(app, "Duplicate").click()
    app.run()
    assert titles(app) == ["New Mailbox"]
    assert widget(app, "Name").value == "Gmail helpdesk (copy)"
    assert widget(app, "Client ID").value == SIGN_IN_PATHS["gmail"]["client_id"]
    assert widget(app, "Refresh Token").value == ""


def test_edit_page_shows_health_and_recent_checks(services: Services) -> None:
    from datetime import UTC, datetime, timedelta

    from mailbox_core.models import MailboxCheck

    mailbox = services.mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    at = open_edit(mailbox.id)
    assert any(c.value.startswith("Never checked.") for c in at.caption)
    now = datetime.now(UTC)
    services.mailboxes.record_checks(
        [
            MailboxCheck(
                mailbox_id=mailbox.id,
                started_at=now - timedelta(minutes=5),
                ok=True,
                message="Signed in and opened INBOX; 3 messages",
                latency_ms=40,
                message_count=3,
            ),
            MailboxCheck(
                mailbox_id=mailbox.id,
                started_at=now,
                ok=False,
                failed_step="Sign-in",
                message="The server refused the password for support@example.com",
                latency_ms=20,
            ),
        ]
    )
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Last check"] == "Failed"
    assert metrics["Consecutive failures"] == "1"
    assert at.error[0].value == (
        "Last error (Sign-in): The server refused the password for support@example.com"
    )
    history = at.dataframe[-1].value
    assert list(history["Result"]) == ["Failed", "OK"]


def test_a_database_failure_in_a_bulk_action_is_a_message(
    app: AppTest, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailbox_core.errors import StorageError
    from mailbox_core.service import MailboxService

    services.mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    app.run()

    def unreachable(*args: object, **kwargs: object) -> int:
        raise StorageError("The database at postgresql://db/app could not be reached: refused")

    monkeypatch.setattr(MailboxService, "set_status", unreachable)
    select(app, 0)
    button(app, "Deactivate").click()
    app.run()
    assert not app.exception
    assert app.error[0].value.startswith("The database at postgresql://db/app could not")


def test_returning_to_the_edit_page_reloads_the_form(services: Services) -> None:
    mailbox = services.mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    at = open_edit(mailbox.id)
    at.switch_page("pages/mailboxes.py").run()
    at.switch_page(EDIT)
    at.query_params["id"] = str(mailbox.id)
    at.run()
    assert widget(at, "Name").value == "Support POP3"
    assert widget(at, "Host").value == "pop.example.com"
    assert widget(at, "Port").value == 110


def test_the_edit_page_says_no_such_mailbox_for_a_huge_id(data_dir: Path) -> None:
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30).run()
    at.switch_page("pages/edit_mailbox.py")
    at.query_params["id"] = "9223372036854775808"
    at.run()
    assert not at.exception
    assert at.error[0].value.startswith("There is no mailbox with ID 9223372036854775808.")


def test_the_check_interval_and_secret_expiry_are_edited_in_advanced(services: Services) -> None:
    from datetime import date

    mailbox = services.mailboxes.create_mailbox(
        mailbox_data("office365_secret", check_interval=15, client_secret_expires="2027-03-31"),
        actor=ACTOR,
    )
    at = open_edit(mailbox.id)
    assert widget_by_label(at, "number_input", "Check every (minutes)").value == 15
    expiry = widget_by_label(at, "date_input", "Client Secret expires")
    assert expiry.value == date(2027, 3, 31)
    expiry.set_value(date(2027, 6, 30))
    at.run()
    button(at, "Save").click()
    at.run()
    saved = services.mailboxes.get_mailbox(mailbox.id)
    assert (saved.check_interval, saved.client_secret_expires) == (15, date(2027, 6, 30))
    password_box = services.mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    plain = open_edit(password_box.id)
    assert not [d for d in plain.date_input if d.label == "Client Secret expires"]


def widget_by_label(at: AppTest, kind: str, label: str) -> Any:
    [found] = [w for w in getattr(at, kind) if w.label == label]
    return found


def test_the_edit_page_puts_its_actions_first_and_leads_back_to_the_same_list(
    services: Services,
) -> None:
    services.mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    services.mailboxes.create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    at.query_params["q"] = "gmail"
    at.run()
    select(at, 0)
    button(at, "Edit").click()
    at.run()
    assert titles(at) == ["Edit Mailbox: Gmail helpdesk"]
    [back] = [p for p in at.get("page_link") if p.value == "Back to Mailboxes"]
    assert back.proto.query_string == "q=gmail"
    # Save comes before the first field, so it is in view without scrolling.
    order = [type(e).__name__ + ":" + getattr(e, "label", "") for e in at.main]
    assert order.index("Button:Save") < order.index("TextInput:Name")
    button(at, "Cancel").click()
    at.run()
    assert titles(at) == ["Mailboxes"]
    assert at.query_params["q"] == "gmail"
