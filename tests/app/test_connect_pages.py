"""Connect account through the pages (AppTest): the form's button, the callback page as a new
session, the form picking the connection up, OK; local and hosted mode.

The consent page itself is answered with FakeProvider.consent (Chromium does it for real in
tests/app/test_connect_served.py). Each callback is its own AppTest: a new session, as the
provider's redirect is.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from mailbox_core.bootstrap import Services, open_services
from mailbox_core.config import load_settings
from tests.app.conftest import ENTRYPOINT, button, fill, open_new_mailbox, press_ok, widget
from tests.app.test_roles import ACCESS, AUTH, USERS
from tests.conftest import ACTOR, dovecot_imaps
from tests.support.oauth_provider import GMAIL_CLIENT, FakeProvider, query

pytestmark = [pytest.mark.network, pytest.mark.dovecot]

CALLBACK = "pages/connect_callback.py"
NEW = "pages/new_mailbox.py"


@pytest.fixture
def provider_env(
    data_dir: Path, oauth_provider: FakeProvider, dovecot_server: Any, monkeypatch: Any
) -> FakeProvider:
    """The app's provider URLs point at the local authorization server; Dovecot is trusted."""
    monkeypatch.setenv("MAILBOX_GOOGLE_AUTHORIZE_URL", oauth_provider.google_authorize_url)
    monkeypatch.setenv("MAILBOX_GOOGLE_TOKEN_URL", oauth_provider.google_token_url)
    monkeypatch.setenv("MAILBOX_MICROSOFT_AUTHORITY", oauth_provider.microsoft_authority)
    monkeypatch.setenv("MAILBOX_CA_FILE", str(dovecot_server.ca_file))
    monkeypatch.setenv("MAILBOX_CHECK_TIMEOUT", "5")
    oauth_provider.omit_refresh_token = False
    return oauth_provider


def gmail_form(dovecot_server: Any) -> dict[str, Any]:
    return dovecot_imaps(
        dovecot_server,
        "Helpdesk Gmail",
        "",
        account="helpdesk@example.com",
        comments="unsaved comment",
        oauth_enabled="Yes",
        oauth_provider="Gmail",
        client_id=GMAIL_CLIENT[0],
        client_secret=GMAIL_CLIENT[1],
    )


def new_form(at: AppTest, values: dict[str, Any]) -> None:
    at.run()
    open_new_mailbox(at)
    fill(at, values)


def consent_url(at: AppTest) -> str:
    button(at, "Connect with Google").click()
    at.run()
    assert not at.exception, at.exception
    [link] = at.link_button
    assert link.value == "Open the Google sign-in (new tab)"
    return str(link.proto.url)


def callback(back: str, user: dict[str, Any] | None = None) -> AppTest:
    """The provider's redirect: a new session on the callback page."""
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    if user is not None:
        at.secrets["auth"], at.secrets["access"] = AUTH, ACCESS
        at.user = {"is_logged_in": True, "iat": int(time.time()), **user}
    at.run()
    at.switch_page(CALLBACK)
    for name, value in query(back).items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, at.exception
    return at


def said(at: AppTest) -> str:
    return "\n".join(e.value for kind in ("success", "error", "info", "caption")
                     for e in getattr(at, kind))  # fmt: skip


def everything(at: AppTest) -> str:
    return repr(at.session_state.to_dict()) + "".join(repr(e) for e in at.main)


def test_local_mode_gmail_connect_keeps_the_form_tests_and_saves(
    provider_env: FakeProvider, dovecot_server: Any
) -> None:
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    new_form(at, gmail_form(dovecot_server))
    url = consent_url(at)
    assert query(url)["login_hint"] == "helpdesk@example.com"
    assert "Waiting for the sign-in" in said(at)

    tab = callback(provider_env.consent(url))
    assert tab.success[0].value == "Connected — you can close this tab."
    assert dict(tab.query_params) == {}, "the code left the address bar"
    [token] = [
        t for t, m in provider_env.refresh_tokens.items() if m["user"] == "helpdesk@example.com"
    ][-1:]

    at.run()  # what the polling fragment triggers once the consent is back
    assert not at.exception, at.exception
    connected = [s.value for s in at.success if s.value.startswith("Connected as")]
    assert connected and connected[0].startswith("Connected as helpdesk@example.com at ")
    assert widget(at, "Name").value == "Helpdesk Gmail"
    assert widget(at, "Comments").value == "unsaved comment"
    assert widget(at, "Port").value == dovecot_server.ports["imaps"]
    # Test connection ran by itself, with the connected token.
    assert any("Signed in and opened INBOX; 3 messages" in e.label for e in at.expander)
    assert token not in everything(at) and token not in everything(tab)

    press_ok(at)
    services = open_services(load_settings())
    [saved] = services.mailboxes.list_mailboxes()
    assert services.mailboxes.get_credentials(saved.id).refresh_token == token
    assert [e.action for e in services.mailboxes.list_audit()] == ["account connected", "created"]
    assert token not in everything(at)


def test_the_connect_button_shows_only_where_a_consent_can_sign_in(
    provider_env: FakeProvider, dovecot_server: Any
) -> None:
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    values = {**gmail_form(dovecot_server), "oauth_provider": "Office365"}
    del values["client_secret"]  # API Username/Password shows no Client Secret
    new_form(at, values)
    labels = {b.label for b in at.button}
    assert not {"Connect with Google", "Connect with Microsoft"} & labels
    fill(at, {"auth_method": "Connect account (delegated)"})
    assert "Connect with Microsoft" in {b.label for b in at.button}
    fill(at, {"oauth_provider": "Gmail"})
    assert "Connect with Google" in {b.label for b in at.button}


def test_a_bad_account_is_shown_under_its_field_and_starts_nothing(
    provider_env: FakeProvider, dovecot_server: Any
) -> None:
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    new_form(at, {**gmail_form(dovecot_server), "account": "not-an-address"})
    button(at, "Connect with Google").click()
    at.run()
    assert not at.link_button
    assert any(e.value.startswith("Account: is not valid to connect") for e in at.error)


def test_a_denied_consent_is_a_message_on_the_form(
    provider_env: FakeProvider, dovecot_server: Any
) -> None:
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    new_form(at, gmail_form(dovecot_server))
    tab = callback(provider_env.consent(consent_url(at), allow=False))
    assert "Nothing was connected" in tab.error[0].value
    at.run()
    assert any("access_denied" in e.value for e in at.error)
    press_ok(at)
    assert "Refresh Token" in " ".join(e.value for e in at.error)  # nothing to save with


def test_callback_page_opened_without_a_consent_explains_itself(data_dir: Path) -> None:
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    at.run()
    at.switch_page(CALLBACK).run()
    assert [t.value for t in at.title] == ["Connect account"]
    assert "Start from a mailbox form" in at.info[0].value


# ---------------------------------------------------------------- hosted mode


def hosted_form(user: dict[str, Any], values: dict[str, Any]) -> AppTest:
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    at.secrets["auth"], at.secrets["access"] = AUTH, ACCESS
    at.user = {"is_logged_in": True, "iat": int(time.time()), **user}
    new_form(at, values)
    return at


def test_hosted_only_the_user_who_started_may_finish_and_a_viewer_never(
    provider_env: FakeProvider, dovecot_server: Any
) -> None:
    values = gmail_form(dovecot_server)
    ed = hosted_form(USERS["editor"], values)
    url = consent_url(ed)
    # The redirect URI comes from [auth] redirect_uri: the same origin as the sign-in.
    assert query(url)["redirect_uri"] == "http://127.0.0.1:8501/connect_callback"
    back = provider_env.consent(url)
    services: Services = open_services(load_settings())

    ann = callback(back, USERS["admin"])
    assert "started by another user" in ann.error[0].value
    val = callback(back, USERS["viewer"])
    assert "Nothing was connected" in val.error[0].value
    assert (
        services.connect.status(ed.session_state["new_mailbox.connect.form"], actor=ACTOR) is None
    )  # (the local actor sees no one else's consent either)

    ed_tab = callback(back, USERS["editor"])
    assert ed_tab.success[0].value == "Connected — you can close this tab."
    ed.run()
    assert any(s.value.startswith("Connected as helpdesk@example.com") for s in ed.success)
    press_ok(ed)
    events = services.mailboxes.list_audit()
    assert [(e.action, e.actor, e.actor_subject) for e in events] == [
        ("account connected", "ed@ops.corp.example", "sub-ed"),
        ("created", "ed@ops.corp.example", "sub-ed"),
    ]


def test_edit_page_connects_and_save_replaces_the_stored_token(
    provider_env: FakeProvider, dovecot_server: Any
) -> None:
    services = open_services(load_settings())
    saved = services.mailboxes.create_mailbox(
        {**gmail_form(dovecot_server), "refresh_token": "1//good-refresh"}, actor=ACTOR
    )
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    at.run()
    at.switch_page("pages/edit_mailbox.py")
    at.query_params["id"] = str(saved.id)
    at.run()
    tab = callback(provider_env.consent(consent_url(at)))  # the stored Client Secret is used
    assert tab.success[0].value == "Connected — you can close this tab."
    at.run()
    assert any(s.value.startswith("Connected as helpdesk@example.com") for s in at.success)
    assert any("(unsaved changes): Signed in" in e.label for e in at.expander)
    assert services.mailboxes.get_credentials(saved.id).refresh_token == "1//good-refresh"
    button(at, "Save").click()
    at.run()
    assert not at.exception, at.exception
    token = services.mailboxes.get_credentials(saved.id).refresh_token
    assert token in provider_env.refresh_tokens and token not in everything(at)
    assert services.mailboxes.list_audit()[0].action == "account connected"
