"""The New Mailbox page through AppTest: every state, every sign-in path, every refusal."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from mailbox_core.schemas import ADVANCED_FIELDS, LABELS, SECRET_FIELDS
from tests.app.conftest import (
    button,
    count_rows,
    fill,
    labels,
    open_new_mailbox,
    press_ok,
    raw_database_bytes,
    set_field,
    widget,
)
from tests.conftest import SIGN_IN_PATHS

BASE = ["Name", "Mailbox Type", "Host", "Port", "Account", "Password", "SSL Enabled"]
TAIL = ["Status", "Comments"]


def form_labels(at: AppTest) -> list[str]:
    """The main fields (the Advanced section's toggles left out)."""
    return [label for label in labels(at) if label not in {LABELS[f] for f in ADVANCED_FIELDS}]


def test_defaults_match_the_spec(app: AppTest) -> None:
    open_new_mailbox(app)
    assert form_labels(app) == [*BASE, "STARTTLS", *TAIL]
    assert widget(app, "Mailbox Type").value == "POP3"
    assert widget(app, "Mailbox Type").options == ["POP3", "IMAP"]
    assert widget(app, "Port").value == 110
    assert widget(app, "SSL Enabled").value == "No"
    assert widget(app, "SSL Enabled").options == ["Yes", "No"]
    assert widget(app, "STARTTLS").value == "No"
    assert widget(app, "Status").value == "Active"
    assert widget(app, "Status").options == ["Active", "Not Active"]
    assert widget(app, "Allow self-signed certificate").value is False
    assert widget(app, "Allow sign-in without encryption").value is False
    assert any("will not send the password" in c.value for c in app.caption)


@pytest.mark.parametrize("answer", [{"ssl_enabled": "Yes"}, {"starttls": "Yes"}])
def test_an_encrypted_connection_hides_the_plaintext_choice(
    app: AppTest, answer: dict[str, str]
) -> None:
    open_new_mailbox(app)
    widget(app, "Allow sign-in without encryption").set_value(True)
    app.run()
    fill(app, answer)
    assert LABELS["allow_plaintext_password"] not in labels(app)
    assert not any("will not send the password" in c.value for c in app.caption)


def test_form_walks_every_state_and_back_to_pop3(app: AppTest) -> None:
    open_new_mailbox(app)
    set_field(app, "mailbox_type", "IMAP")
    assert form_labels(app) == [*BASE, "STARTTLS", *TAIL, "Oauth Enabled"]
    assert widget(app, "Oauth Enabled").value == "No"

    set_field(app, "oauth_enabled", "Yes")
    assert form_labels(app)[-2:] == ["Oauth Enabled", "Oauth Provider"]
    assert widget(app, "Oauth Provider").value == "Unknown"
    assert widget(app, "Oauth Provider").options == ["Unknown", "Gmail", "Office365"]
    assert any("no OAuth token can be obtained" in w.value for w in app.warning)

    set_field(app, "oauth_provider", "Gmail")
    assert form_labels(app)[-4:] == [
        "Oauth Provider",
        "Client ID",
        "Client Secret",
        "Refresh Token",
    ]
    assert widget(app, "Client Secret").type == "text_input"
    assert "Password" not in form_labels(app), "Gmail signs in with its token, not a password"

    set_field(app, "oauth_provider", "Office365")
    assert form_labels(app)[-4:] == [
        "Oauth Provider",
        "Authentication Method",
        "Client ID",
        "Tenant ID",
    ]
    assert widget(app, "Authentication Method").value == "API Username/Password"
    assert "MFA" in (widget(app, "Authentication Method").help or "")

    assert "Password" in form_labels(app), "the password grant signs in with it"

    set_field(app, "auth_method", "Client Secret")
    assert form_labels(app)[-5:] == [
        "Oauth Provider",
        "Authentication Method",
        "Client ID",
        "Tenant ID",
        "Client Secret",
    ]
    assert "Password" not in form_labels(app)

    set_field(app, "ssl_enabled", "Yes")
    assert "STARTTLS" not in form_labels(app)

    set_field(app, "mailbox_type", "POP3")
    assert form_labels(app) == [*BASE, *TAIL]


def test_secret_fields_are_password_inputs(app: AppTest) -> None:
    open_new_mailbox(app)
    assert widget(app, "Password").proto.type == widget(app, "Password").proto.PASSWORD
    fill(app, {"mailbox_type": "IMAP", "oauth_enabled": "Yes", "oauth_provider": "Gmail"})
    for label in ("Client Secret", "Refresh Token"):
        assert widget(app, label).proto.type == widget(app, label).proto.PASSWORD


def test_port_follows_type_and_ssl(app: AppTest) -> None:
    open_new_mailbox(app)
    steps = [
        ("mailbox_type", "IMAP", 143),
        ("ssl_enabled", "Yes", 993),
        ("mailbox_type", "POP3", 995),
        ("ssl_enabled", "No", 110),
    ]
    for field, value, port in steps:
        set_field(app, field, value)
        assert widget(app, "Port").value == port, (field, value)


def test_typed_port_stays(app: AppTest) -> None:
    open_new_mailbox(app)
    set_field(app, "port", 2110)
    set_field(app, "mailbox_type", "IMAP")
    set_field(app, "ssl_enabled", "Yes")
    assert widget(app, "Port").value == 2110


def test_pasted_url_fills_type_ssl_and_port(app: AppTest) -> None:
    open_new_mailbox(app)
    set_field(app, "host", "imaps://imap.gmail.com:993")
    assert widget(app, "Host").value == "imap.gmail.com"
    assert widget(app, "Mailbox Type").value == "IMAP"
    assert widget(app, "SSL Enabled").value == "Yes"
    assert widget(app, "Port").value == 993


@pytest.mark.parametrize("path", SIGN_IN_PATHS)
def test_each_sign_in_path_saves_and_lands_on_the_list(
    app: AppTest, data_dir: Path, path: str
) -> None:
    values = SIGN_IN_PATHS[path]
    open_new_mailbox(app)
    fill(app, values)
    press_ok(app)

    assert [t.value for t in app.title] == ["Mailboxes"], [e.value for e in app.error]
    assert [s.value for s in app.success] == [f"Mailbox “{values['name']}” saved with ID 1."]
    frame = app.dataframe[0].value
    assert frame.loc[0, "ID"] == 1
    assert frame.loc[0, "Name"] == values["name"]

    secrets = [values[f] for f in SECRET_FIELDS if f in values]
    assert secrets
    shown = frame.to_csv()
    state = repr(app.session_state.to_dict())
    stored = raw_database_bytes(data_dir)
    for secret in secrets:
        assert secret not in shown
        assert secret not in state
        assert secret.encode() not in stored


def test_dataframe_has_the_spec_columns_and_nothing_secret(app: AppTest) -> None:
    open_new_mailbox(app)
    fill(app, SIGN_IN_PATHS["office365_secret"])
    press_ok(app)
    frame = app.dataframe[0].value
    # The row's identity and health first (vital-sign badges beside the state, issue 15),
    # then its settings (issue 8), then the same-mailbox flag (15).
    assert list(frame.columns) == [
        "ID", "Name", "State", "Signs", "Last check", "Last error", "Messages", "Mailbox Type",
        "Host", "Port", "Account", "Status", "OAuth", "Failing since", "SSL Enabled", "STARTTLS",
        "Certificate", "Comments", "Same mailbox",
    ]  # fmt: skip
    assert frame.loc[0, "State"] == ["Not checked"]
    assert list(frame.loc[0, "Signs"]) == []  # never checked: nothing known, no badge
    assert frame.loc[0, "OAuth"] == "Office365"
    assert not [c for c in frame.columns if "secret" in c.lower() or "password" in c.lower()]
    # Nor any value of a secret or its ciphertext, in any cell.
    secret = SIGN_IN_PATHS["office365_secret"]["client_secret"]
    cells = frame.astype(str).to_csv()
    assert secret not in cells
    assert "gAAAA" not in cells, "a Fernet token (ciphertext) reached the table"


BAD_FORMS: list[tuple[str, dict[str, Any], str]] = [
    ("account not email", {"account": "jdoe"}, "Account"),
    ("host with scheme", {"host": "http://pop.example.com"}, "Host"),
    ("host with spaces", {"host": "pop example.com"}, "Host"),
    ("missing password", {"password": ""}, "Password"),
    ("missing name", {"name": ""}, "Name"),
]


@pytest.mark.parametrize(("case", "change", "label"), BAD_FORMS, ids=[c[0] for c in BAD_FORMS])
def test_bad_value_is_shown_under_its_field_and_nothing_saved(
    app: AppTest, data_dir: Path, case: str, change: dict[str, Any], label: str
) -> None:
    open_new_mailbox(app)
    values = {**SIGN_IN_PATHS["password"], **change}
    fill(app, values)
    press_ok(app)
    assert [t.value for t in app.title] == ["New Mailbox"]
    messages = [e.value for e in app.error]
    assert any(m.startswith(f"{label}:") for m in messages), messages
    assert any("Nothing was saved" in m for m in messages)
    assert count_rows(data_dir) == 0


def test_tenant_id_error_names_the_field(app: AppTest, data_dir: Path) -> None:
    open_new_mailbox(app)
    fill(app, {**SIGN_IN_PATHS["office365_secret"], "tenant_id": "contoso"})
    press_ok(app)
    assert any(e.value.startswith("Tenant ID:") for e in app.error)
    assert count_rows(data_dir) == 0


def test_duplicate_name_is_refused_on_the_name_field(app: AppTest, data_dir: Path) -> None:
    for _ in range(2):
        open_new_mailbox(app)
        fill(app, SIGN_IN_PATHS["password"])
        press_ok(app)
    assert any(e.value.startswith("Name:") and "already exists" in e.value for e in app.error)
    assert count_rows(data_dir) == 1


def test_hidden_gmail_client_id_is_never_saved(app: AppTest, data_dir: Path) -> None:
    open_new_mailbox(app)
    fill(app, {**SIGN_IN_PATHS["gmail"], "password": "pop-password"})
    set_field(app, "mailbox_type", "POP3")
    set_field(app, "port", 995)
    press_ok(app)
    assert [t.value for t in app.title] == ["Mailboxes"]
    with sqlite3.connect(data_dir / "mailboxes.db") as conn:
        row = conn.execute(
            "SELECT client_id, client_secret_encrypted, refresh_token_encrypted,"
            " oauth_provider, oauth_enabled FROM mailbox"
        ).fetchone()
    assert row == (None, None, None, None, 0)
    assert b"apps.googleusercontent.com" not in raw_database_bytes(data_dir)


def test_oauth_fields_keep_their_values_while_hidden_on_the_page(app: AppTest) -> None:
    open_new_mailbox(app)
    fill(
        app,
        {
            "mailbox_type": "IMAP",
            "oauth_enabled": "Yes",
            "oauth_provider": "Gmail",
            "client_id": "kept.apps.googleusercontent.com",
        },
    )
    set_field(app, "oauth_enabled", "No")
    set_field(app, "oauth_enabled", "Yes")
    assert widget(app, "Client ID").value == "kept.apps.googleusercontent.com"


def test_cancel_returns_to_the_list_and_forgets_the_form(app: AppTest, data_dir: Path) -> None:
    open_new_mailbox(app)
    fill(app, {"name": "Draft", "password": "typed-then-cancelled"})
    button(app, "Cancel").click()
    app.run()
    assert [t.value for t in app.title] == ["Mailboxes"]
    assert "typed-then-cancelled" not in repr(app.session_state.to_dict())
    assert count_rows(data_dir) == 0
    open_new_mailbox(app)
    assert widget(app, "Name").value == ""


def test_port_follows_again_after_leaving_the_form(app: AppTest) -> None:
    open_new_mailbox(app)
    set_field(app, "port", 2110)
    # Leave through the sidebar (no Cancel), then come back.
    app.switch_page("pages/mailboxes.py").run()
    app.switch_page("pages/new_mailbox.py").run()
    assert widget(app, "Port").value == 110
    set_field(app, "mailbox_type", "IMAP")
    assert widget(app, "Port").value == 143


def test_suggested_settings_from_the_account_domain(app: AppTest) -> None:
    open_new_mailbox(app)
    set_field(app, "account", "jdoe@gmail.com")
    assert not any("imap.gmail.com" in i.value for i in app.info)  # POP3 is chosen
    assert any("Gmail: POP3 pop.gmail.com port 995 with SSL" in i.value for i in app.info)
    set_field(app, "mailbox_type", "IMAP")
    assert any("Gmail: IMAP imap.gmail.com port 993 with SSL" in i.value for i in app.info)
    button(app, "Use suggested settings").click()
    app.run()
    assert widget(app, "Host").value == "imap.gmail.com"
    assert widget(app, "Port").value == 993
    assert widget(app, "SSL Enabled").value == "Yes"
    assert not [i for i in app.info if "Suggested" in i.value], "offered only while Host is empty"
    set_field(app, "ssl_enabled", "No")
    assert widget(app, "Port").value == 143, "the port still follows SSL afterwards"


def test_no_suggestion_for_an_unknown_domain(app: AppTest) -> None:
    open_new_mailbox(app)
    set_field(app, "account", "support@contoso.com")
    assert not [i for i in app.info if "Suggested" in i.value]


# ---------------------------------------------------------------- provider servers, errors


@pytest.mark.parametrize(
    ("provider", "host"), [("Gmail", "imap.gmail.com"), ("Office365", "outlook.office365.com")]
)
def test_choosing_a_provider_fills_its_server(app: AppTest, provider: str, host: str) -> None:
    open_new_mailbox(app)
    fill(app, {"mailbox_type": "IMAP", "oauth_enabled": "Yes", "oauth_provider": provider})
    assert widget(app, "Host").value == host
    assert widget(app, "SSL Enabled").value == "Yes"
    assert widget(app, "Port").value == 993


def test_a_provider_filled_server_follows_the_next_provider(app: AppTest) -> None:
    open_new_mailbox(app)
    fill(app, {"mailbox_type": "IMAP", "oauth_enabled": "Yes", "oauth_provider": "Gmail"})
    set_field(app, "oauth_provider", "Office365")
    assert widget(app, "Host").value == "outlook.office365.com"


def test_a_typed_host_stays_when_a_provider_is_chosen(app: AppTest) -> None:
    open_new_mailbox(app)
    fill(app, {"mailbox_type": "IMAP", "host": "mail.corp.example", "oauth_enabled": "Yes"})
    set_field(app, "oauth_provider", "Gmail")
    assert widget(app, "Host").value == "mail.corp.example"
    assert widget(app, "SSL Enabled").value == "No"
    assert widget(app, "Port").value == 143


def test_a_typed_port_stays_when_a_provider_fills_the_server(app: AppTest) -> None:
    open_new_mailbox(app)
    fill(app, {"mailbox_type": "IMAP", "port": 1993, "oauth_enabled": "Yes"})
    set_field(app, "oauth_provider", "Gmail")
    assert (widget(app, "Host").value, widget(app, "Port").value) == ("imap.gmail.com", 1993)


def test_the_host_placeholder_follows_the_mailbox_type(app: AppTest) -> None:
    open_new_mailbox(app)
    assert widget(app, "Host").placeholder == "pop.example.com"
    set_field(app, "mailbox_type", "IMAP")
    assert widget(app, "Host").placeholder == "imap.example.com"


def test_an_error_clears_as_soon_as_its_field_changes(app: AppTest) -> None:
    open_new_mailbox(app)
    fill(app, {**SIGN_IN_PATHS["password"], "name": "", "account": "jdoe"})
    press_ok(app)
    messages = [e.value for e in app.error]
    assert any(m.startswith("Name:") for m in messages)
    assert any(m.startswith("Account:") for m in messages)
    assert "Nothing was saved. Please correct: Name, Account." in messages
    set_field(app, "account", "jdoe@example.com")
    messages = [e.value for e in app.error]
    assert not any(m.startswith("Account:") for m in messages), "changed: its error is gone"
    assert any(m.startswith("Name:") for m in messages), "untouched: its error stays"
    assert "Nothing was saved. Please correct: Name." in messages


def test_testing_an_incomplete_form_says_what_is_missing(app: AppTest, data_dir: Path) -> None:
    open_new_mailbox(app)
    fill(app, {"account": "jdoe@example.com", "password": "pw-1"})
    button(app, "Test connection").click()
    app.run()
    messages = [e.value for e in app.error]
    assert "Cannot test yet: Host is required." in messages, messages
    assert not any("Nothing was saved" in m for m in messages)
    assert not any(m.startswith("Name:") for m in messages), "a test needs no name"
    assert count_rows(data_dir) == 0
