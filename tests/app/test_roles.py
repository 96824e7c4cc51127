"""Hosted mode through AppTest: every page × role, what is shown and what each button does.

Sign-in itself (st.login) cannot run in AppTest; tests/app/test_sign_in.py walks it in
Chromium through a real OpenID provider. Here `at.user` plays the signed-in identity and
`at.secrets["auth"]` turns hosted mode on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from mailbox_core.bootstrap import Services, open_services
from mailbox_core.config import load_settings
from tests.app.conftest import ENTRYPOINT, button, set_field
from tests.conftest import ACTOR, mailbox_data

AUTH = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "a-cookie-secret-of-32-characters",
    "client_id": "mailbox-manager",
    "client_secret": "idp-client-secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}
ACCESS = {
    "admins": ["ann@corp.example"],
    "editors": ["@ops.corp.example"],
    "viewers": ["@corp.example"],
    "groups_claim": "groups",
    "group_roles": {"mailbox-admins": "admin"},
}
USERS: dict[str, dict[str, Any]] = {
    "viewer": {"email": "val@corp.example", "sub": "sub-val"},
    "editor": {"email": "ed@ops.corp.example", "sub": "sub-ed"},
    "admin": {"email": "ann@corp.example", "sub": "sub-ann"},
    "no role": {"email": "eve@elsewhere.example", "sub": "sub-eve"},
}
MAILBOXES, NEW, EDIT, ACTIVITY = (
    "pages/mailboxes.py",
    "pages/new_mailbox.py",
    "pages/edit_mailbox.py",
    "pages/activity.py",
)


@pytest.fixture
def services(data_dir: Path) -> Services:
    return open_services(load_settings())


@pytest.fixture
def saved(services: Services) -> int:
    return services.mailboxes.create_mailbox(
        mailbox_data("password", name="Secretive Support"), actor=ACTOR
    ).id


def hosted(user: dict[str, Any] | None, **claims: Any) -> AppTest:
    """The app with sign-in configured; ``user`` None is an anonymous visitor."""
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    at.secrets["auth"] = AUTH
    at.secrets["access"] = ACCESS
    if user is None:
        at.user = {"is_logged_in": False}
    else:
        at.user = {"is_logged_in": True, "iat": int(time.time()), **user, **claims}
    return at


def on_page(at: AppTest, page: str, **query: str) -> AppTest:
    at.run()
    if page != MAILBOXES:
        at.switch_page(page)
        for name, value in query.items():
            at.query_params[name] = value
        at.run()
    assert not at.exception, at.exception
    return at


def everything_shown(at: AppTest) -> str:
    """Every text the page rendered, values of tables included."""
    parts = [repr(element) for element in at.main] + [repr(element) for element in at.sidebar]
    parts += [d.value.to_csv() for d in at.dataframe]
    return "\n".join(parts)


def signed_in_as(at: AppTest) -> str:
    """Who the sidebar says is signed in, as "email (role)"."""
    [caption] = [c.value for c in at.sidebar.caption if "Signed in as" in c.value]
    return caption.split("Signed in as ", 1)[1].replace("**", "")


def buttons(at: AppTest) -> set[str]:
    return {b.label for b in at.button}


def test_an_anonymous_visitor_sees_only_a_sign_in_button(saved: int) -> None:
    at = hosted(None)
    at.query_params["id"] = str(saved)
    at.run()
    assert not at.exception
    assert buttons(at) == {"Sign in"}
    assert [t.value for t in at.title] == ["Mailbox Manager"]
    shown = everything_shown(at)
    assert "Secretive Support" not in shown
    assert "pop.example.com" not in shown
    assert not at.dataframe and not at.metric


def test_several_providers_get_one_button_each() -> None:
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    at.secrets["auth"] = {
        "redirect_uri": AUTH["redirect_uri"],
        "cookie_secret": AUTH["cookie_secret"],
        "google": {"client_id": "g", "client_secret": "s", "server_metadata_url": "x"},
        "entra": {"client_id": "m", "client_secret": "s", "server_metadata_url": "y"},
    }
    at.user = {"is_logged_in": False}
    at.run()
    assert buttons(at) == {"Sign in with google", "Sign in with entra"}


def test_a_user_without_a_role_sees_who_they_are_and_no_data(saved: int) -> None:
    at = on_page(hosted(USERS["no role"]), MAILBOXES)
    assert at.warning[0].value == (
        "Signed in as eve@elsewhere.example, but you have no access to Mailbox Manager "
        "— ask an admin."
    )
    assert buttons(at) == {"Sign out"}
    assert "Secretive Support" not in everything_shown(at)


def test_an_unverified_email_earns_no_role(saved: int) -> None:
    at = on_page(hosted({**USERS["admin"], "email_verified": False}), MAILBOXES)
    assert "but you have no access" in at.warning[0].value
    assert "Secretive Support" not in everything_shown(at)


def test_a_group_claim_grants_its_role() -> None:
    at = on_page(hosted(USERS["no role"], groups=["mailbox-admins"]), MAILBOXES)
    assert signed_in_as(at) == "eve@elsewhere.example (admin)"


# What each role finds on the Mailboxes page with one mailbox selected.
LIST_BUTTONS = {
    "viewer": {"View", "Export CSV", "Export JSON", "Sign out"},
    "editor": {
        "New Mailbox",
        "Check all active mailboxes",
        "Edit",
        "Duplicate",
        "Test connection",
        "Activate",
        "Deactivate",
        "Export CSV",
        "Export JSON",
        "Sign out",
    },
}
LIST_BUTTONS["admin"] = LIST_BUTTONS["editor"] | {"Delete"}


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_the_list_offers_what_the_role_may_do(saved: int, role: str) -> None:
    at = on_page(hosted(USERS[role]), MAILBOXES)
    at.session_state["mailboxes.table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    labels = buttons(at) | {d.label for d in at.get("download_button")}
    assert labels == LIST_BUTTONS[role]
    assert list(at.dataframe[0].value["Name"]) == ["Secretive Support"]
    expanders = [e.label for e in at.expander]
    assert ("Import mailboxes from CSV or JSON" in expanders) is (role == "admin")
    assert signed_in_as(at) == f"{USERS[role]['email']} ({role})"


@pytest.mark.parametrize("role, allowed", [("viewer", False), ("editor", True), ("admin", True)])
def test_new_mailbox_is_a_page_only_for_editors(role: str, allowed: bool) -> None:
    at = hosted(USERS[role])
    at.run()
    if not allowed:
        with pytest.raises(ValueError, match="Could not find"):
            at.switch_page(NEW)
        return
    on_page(at, NEW)
    assert [t.value for t in at.title] == ["New Mailbox"]


def test_a_viewer_gets_the_mailbox_read_only_by_deep_link(saved: int) -> None:
    at = on_page(hosted(USERS["viewer"]), EDIT, id=str(saved))
    assert [t.value for t in at.title] == ["Mailbox: Secretive Support"]
    assert not at.text_input and not at.number_input and not at.radio
    table = at.dataframe[0].value
    assert dict(zip(table["Setting"], table["Value"], strict=True))["Password"] == "set"
    assert "pop-password" not in everything_shown(at)
    assert buttons(at) == {"Sign out"}


def test_a_viewer_sees_an_oauth_mailboxs_grant_line(services: Services) -> None:
    gmail = services.mailboxes.create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    at = on_page(hosted(USERS["viewer"]), EDIT, id=str(gmail.id))
    grant = [m.value for m in at.markdown if m.value.startswith("**Grant:**")]
    assert grant == ["**Grant:** last used not known · rotated never seen · subject not known "
                     "(the provider sent no ID token)"]  # fmt: skip
    assert buttons(at) == {"Sign out"}


@pytest.mark.parametrize("role, can_delete", [("editor", False), ("admin", True)])
def test_the_edit_page_offers_delete_only_to_admins(
    saved: int, role: str, can_delete: bool
) -> None:
    at = on_page(hosted(USERS[role]), EDIT, id=str(saved))
    assert [t.value for t in at.title] == ["Edit Mailbox: Secretive Support"]
    assert {"Save", "Test connection", "Deactivate", "Duplicate"} <= buttons(at)
    assert ("Delete" in buttons(at)) is can_delete


def test_an_editor_creates_and_the_activity_names_them(services: Services) -> None:
    at = on_page(hosted(USERS["editor"]), NEW)
    for field, value in mailbox_data("password", name="Made by Ed").items():
        set_field(at, field, value)
    button(at, "OK").click()
    at.run()
    assert not at.exception
    [event] = services.mailboxes.list_audit()
    assert (event.action, event.actor, event.actor_subject) == (
        "created",
        "ed@ops.corp.example",
        "sub-ed",
    )
    activity = on_page(hosted(USERS["viewer"]), ACTIVITY)
    assert list(activity.dataframe[0].value["Who"]) == ["ed@ops.corp.example"]


def test_an_admin_deletes(services: Services, saved: int) -> None:
    at = on_page(hosted(USERS["admin"]), EDIT, id=str(saved))
    button(at, "Delete").click()
    at.run()
    button(at, "Yes, delete").click()
    at.run()
    assert not at.exception
    assert services.mailboxes.count_mailboxes() == 0
    assert services.mailboxes.list_audit()[0].actor == "ann@corp.example"


def test_an_old_sign_in_is_ended(saved: int) -> None:
    at = hosted(USERS["admin"], iat=int(time.time()) - 13 * 3600)
    at.run()
    assert not at.exception
    assert at.user == {"is_logged_in": False}, "st.logout() was called"
    assert "Secretive Support" not in everything_shown(at)


def test_the_session_age_is_a_setting(saved: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILBOX_SESSION_MAX_AGE", "60")
    at = hosted(USERS["admin"], iat=int(time.time()) - 120)
    at.run()
    assert at.user == {"is_logged_in": False}
    fresh = on_page(hosted(USERS["admin"], iat=int(time.time()) - 30), MAILBOXES)
    assert list(fresh.dataframe[0].value["Name"]) == ["Secretive Support"]


def test_local_mode_says_so_and_records_the_os_user(services: Services, saved: int) -> None:
    import getpass

    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    on_page(at, EDIT, id=str(saved))
    assert any("Local mode — no sign-in" in c.value for c in at.sidebar.caption)
    button(at, "Deactivate").click()
    at.run()
    assert services.mailboxes.list_audit(saved)[0].actor == getpass.getuser()


def test_a_broken_access_table_is_a_message_not_a_traceback() -> None:
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    at.secrets["auth"] = AUTH
    at.secrets["access"] = {"admins": ["not an email"]}
    at.user = {"is_logged_in": True, "iat": int(time.time()), **USERS["admin"]}
    at.run()
    assert not at.exception
    assert "[access] admins has 'not an email'" in at.error[0].value
