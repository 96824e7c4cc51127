"""Connect account in the core: consent, callback, held token, save — on SQLite and PostgreSQL.

The local authorization server is tests/support/oauth_provider.py (consent answered with
``FakeProvider.consent``, as the browser would); nothing here dials anything but loopback.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from mailbox_core.access import AccessDenied, Actor, Role
from mailbox_core.checks import MailboxChecker
from mailbox_core.config import CheckSettings, ConnectSettings, OAuthApp
from mailbox_core.connect import (
    CONSENT_TTL,
    HOLD,
    ConnectRefused,
    ConnectService,
    ConnectState,
    digest,
)
from mailbox_core.crypto import SecretBox
from mailbox_core.errors import ValidationFailed
from mailbox_core.models import utcnow
from mailbox_core.monitoring import Monitor
from mailbox_core.oauth import TokenClient, operator_apps
from mailbox_core.service import MailboxService
from tests.conftest import ACTOR
from tests.support.oauth_provider import GMAIL_CLIENT, MS_APP, TENANT, FakeProvider, query

pytestmark = pytest.mark.network

REDIRECT = "http://127.0.0.1:8501/connect_callback"  # only ever compared, never dialed
EDITOR = Actor("ed@ops.corp.example", Role.EDITOR, subject="sub-ed")
ADMIN = Actor("ann@corp.example", Role.ADMIN, subject="sub-ann")
VIEWER = Actor("val@corp.example", Role.VIEWER, subject="sub-val")
# The same email with another IdP subject is another user.
IMPOSTOR = Actor("ed@ops.corp.example", Role.EDITOR, subject="sub-someone-else")

GMAIL = {
    "name": "Helpdesk Gmail",
    "mailbox_type": "IMAP",
    "host": "localhost",
    "port": 993,
    "ssl_enabled": "Yes",
    "account": "helpdesk@example.com",
    "oauth_enabled": "Yes",
    "oauth_provider": "Gmail",
    "client_id": GMAIL_CLIENT[0],
    "client_secret": GMAIL_CLIENT[1],
    "refresh_token": "",
}
OFFICE365 = {
    **GMAIL,
    "name": "IT Office365",
    "account": "it@example.com",
    "oauth_provider": "Office365",
    "auth_method": "Connect account (delegated)",
    "client_id": MS_APP[0],
    "tenant_id": TENANT,
    "client_secret": "",
}


class Clock:
    """A settable clock for the consent's age."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Parts:
    mailboxes: MailboxService
    connect: ConnectService
    checker: MailboxChecker
    clock: Clock
    engine: Engine
    box: SecretBox


def build(engine: Engine, key: str, provider: FakeProvider, **checks: Any) -> Parts:
    settings = CheckSettings(
        **{
            "timeout": 5,
            "google_token_url": provider.google_token_url,
            "microsoft_authority": provider.microsoft_authority,
            **checks,
        }
    )
    box = SecretBox([key])
    clock = Clock()
    tokens = TokenClient.from_settings(settings)
    mailboxes = MailboxService(engine, box, operator_apps=operator_apps(settings))
    connect = ConnectService(
        engine,
        box,
        ConnectSettings(google_authorize_url=provider.google_authorize_url),
        tokens,
        now=clock,
    )
    checker = MailboxChecker(mailboxes, settings, tokens=tokens, connect=connect)
    return Parts(mailboxes, connect, checker, clock, engine, box)


@pytest.fixture
def parts(engine: Engine, key: str, oauth_provider: FakeProvider) -> Parts:
    oauth_provider.omit_refresh_token = False
    return build(engine, key, oauth_provider)


def consents(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM connect_consent ORDER BY id"))
        return [dict(row._mapping) for row in rows]


def start(parts: Parts, values: dict[str, Any], actor: Actor = EDITOR, form: str = "form-1") -> str:
    return parts.connect.start(values, form=form, redirect_uri=REDIRECT, actor=actor)


def connect(
    parts: Parts,
    provider: FakeProvider,
    values: dict[str, Any],
    actor: Actor = EDITOR,
    form: str = "form-1",
    **consent: Any,
) -> dict[str, str]:
    """Start, answer the consent page; returns the callback's query parameters."""
    back = provider.consent(start(parts, values, actor, form), **consent)
    assert back.startswith(REDIRECT + "?")
    return query(back)


# ---------------------------------------------------------------- step 1: the consent URL


def test_gmail_consent_url_asks_offline_mail_access_with_pkce_state_and_login_hint(
    parts: Parts, oauth_provider: FakeProvider
) -> None:
    url = start(parts, GMAIL)
    asked = query(url)
    assert url.startswith(oauth_provider.google_authorize_url + "?")
    assert asked["response_type"] == "code"
    assert asked["client_id"] == GMAIL_CLIENT[0]
    assert asked["redirect_uri"] == REDIRECT
    assert set(asked["scope"].split()) == {"openid", "email", "https://mail.google.com/"}
    assert (asked["access_type"], asked["prompt"]) == ("offline", "consent")
    assert asked["login_hint"] == "helpdesk@example.com"
    assert asked["code_challenge_method"] == "S256"
    [row] = consents(parts.engine)
    # The state is kept only as its hash; the verifier only encrypted, and it is the one
    # the challenge was made from.
    assert row["state_hash"] == hashlib.sha256(asked["state"].encode()).hexdigest()
    assert asked["state"] not in str(row)
    verifier = parts.box.decrypt(row["verifier_encrypted"])
    assert verifier not in str(row)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert challenge.rstrip(b"=").decode() == asked["code_challenge"]
    assert len(asked["state"]) >= 43 and 43 <= len(verifier) <= 128
    assert (row["actor"], row["actor_subject"], row["form"]) == (EDITOR.name, "sub-ed", "form-1")
    assert (row["used"], row["refresh_token_encrypted"]) == (False, None)
    assert GMAIL_CLIENT[1] not in str(row)  # the typed client secret waits encrypted


def test_each_start_has_its_own_state_and_verifier_and_replaces_the_forms_last(
    parts: Parts,
) -> None:
    first, second = query(start(parts, GMAIL)), query(start(parts, GMAIL))
    assert first["state"] != second["state"]
    assert first["code_challenge"] != second["code_challenge"]
    assert [r["state_hash"] for r in consents(parts.engine)] == [digest(second["state"])]


def test_microsoft_consent_url_is_the_tenants_with_the_imap_permission(
    parts: Parts, oauth_provider: FakeProvider
) -> None:
    asked = query(url := start(parts, OFFICE365))
    assert url.startswith(oauth_provider.microsoft_authorize_url(TENANT) + "?")
    assert asked["scope"].split() == [
        "openid",
        "email",
        "profile",
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "offline_access",
    ]
    assert (asked["client_id"], asked["login_hint"]) == (MS_APP[0], "it@example.com")
    assert "prompt" not in asked


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"account": "not an address"}, "account"),
        ({"account": ""}, "account"),
        ({"tenant_id": "evil.example/../common"}, "tenant_id"),  # only ever one path segment
        ({"oauth_provider": "Unknown"}, "oauth_provider"),
        ({"auth_method": "Client Secret"}, "oauth_provider"),
        ({"client_id": ""}, "client_id"),  # and no operator app
    ],
)
def test_start_refuses_values_it_cannot_connect_and_stores_nothing(
    parts: Parts, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        start(parts, {**OFFICE365, **change})
    assert field in refused.value.by_field()
    assert consents(parts.engine) == []


def test_a_viewer_may_not_start_a_consent(parts: Parts) -> None:
    with pytest.raises(AccessDenied):
        start(parts, GMAIL, VIEWER)
    assert consents(parts.engine) == []


# ---------------------------------------------------------------- steps 2 and 3: back, save


@pytest.mark.parametrize("values", [GMAIL, OFFICE365], ids=["gmail", "office365"])
def test_connect_then_ok_stores_the_refresh_token_encrypted_and_audits_without_it(
    parts: Parts, oauth_provider: FakeProvider, values: dict[str, Any], caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    outcome = parts.connect.complete(connect(parts, oauth_provider, values), actor=EDITOR)
    assert (outcome.ok, outcome.account) == (True, values["account"])
    assert outcome.message == "Connected — you can close this tab."
    [row] = consents(parts.engine)
    token = parts.box.decrypt(row["refresh_token_encrypted"])
    assert oauth_provider.refresh_tokens[token]["user"] == values["account"]
    assert (row["verifier_encrypted"], row["client_secret_encrypted"]) == (None, None)
    status = parts.connect.status("form-1", actor=EDITOR)
    assert status is not None and status.state is ConnectState.CONNECTED
    assert status.account == values["account"]

    saved = parts.mailboxes.create_mailbox(values, actor=EDITOR, connected="form-1")
    assert saved.has_refresh_token
    assert parts.mailboxes.get_credentials(saved.id).refresh_token == token
    assert consents(parts.engine) == []  # the consent went with the save
    events = parts.mailboxes.list_audit()
    assert [(e.action, e.actor) for e in events] == [
        ("account connected", EDITOR.name),
        ("created", EDITOR.name),
    ]
    assert events[0].changes == {
        "refresh_token": f"connected as {values['account']} ({values['oauth_provider']})"
    }
    with parts.engine.connect() as conn:
        stored = str(conn.execute(text("SELECT * FROM mailbox")).all())
        audit = str(conn.execute(text("SELECT * FROM audit_event")).all())
    assert token not in stored and token not in audit
    assert token not in caplog.text
    assert "connected" in caplog.text  # the log says what happened, without the token


def test_edit_connects_and_save_replaces_the_stored_token(
    parts: Parts, oauth_provider: FakeProvider
) -> None:
    saved = parts.mailboxes.create_mailbox(
        {**GMAIL, "refresh_token": "1//pasted-before"}, actor=ACTOR
    )
    url = parts.connect.start(
        {**GMAIL, "client_secret": ""},  # blank: the stored one is used for the exchange
        form="edit-form",
        redirect_uri=REDIRECT,
        actor=EDITOR,
        mailbox_id=saved.id,
    )
    outcome = parts.connect.complete(query(oauth_provider.consent(url)), actor=EDITOR)
    assert outcome.ok, outcome
    parts.mailboxes.update_mailbox(
        saved.id,
        {**GMAIL, "client_secret": ""},
        expected_version=saved.version,
        actor=EDITOR,
        connected="edit-form",
    )
    token = parts.mailboxes.get_credentials(saved.id).refresh_token
    assert token in oauth_provider.refresh_tokens
    assert parts.mailboxes.get_credentials(saved.id).client_secret == GMAIL_CLIENT[1]
    assert parts.mailboxes.list_audit()[0].action == "account connected"


def test_a_saved_connection_starts_a_fresh_grant_used_when_it_was_issued(
    parts: Parts, oauth_provider: FakeProvider
) -> None:
    saved = parts.mailboxes.create_mailbox({**GMAIL, "refresh_token": "1//revoked"}, actor=ACTOR)
    with parts.engine.begin() as conn:  # what checks of the old token had found
        conn.execute(
            text(
                "INSERT INTO mailbox_grant (mailbox_id, subject, failure, failure_message)"
                " VALUES (:id, 'someone@else.example', 'revoked', 'Token has been revoked')"
            ),
            {"id": saved.id},
        )
    url = parts.connect.start(
        {**GMAIL, "client_secret": ""}, form="edit-form", redirect_uri=REDIRECT,
        actor=EDITOR, mailbox_id=saved.id,
    )  # fmt: skip
    parts.clock.now += timedelta(seconds=30)  # the consent took a while
    assert parts.connect.complete(query(oauth_provider.consent(url)), actor=EDITOR).ok
    issued = parts.clock.now
    parts.mailboxes.update_mailbox(
        saved.id, {**GMAIL, "client_secret": ""}, expected_version=saved.version,
        actor=EDITOR, connected="edit-form",
    )  # fmt: skip
    monitor = parts.mailboxes.monitor
    grant = monitor.grant_of(saved.id)
    assert grant is not None  # the Edit page shows the new grant before any check
    assert (grant.failure, grant.failure_message) == (None, None)
    assert (grant.subject, grant.subject_match) == (GMAIL["account"], "matches")
    assert grant.last_used_at == issued
    # Never checked (say, saved inactive), it still gets Google's five-month warning.
    later = Monitor(parts.engine, clock=lambda: issued + timedelta(days=151))
    assert later.warn_unused_grants() == 1

    # A typed token is another grant: nothing is known of it until a check.
    parts.mailboxes.update_mailbox(
        saved.id, {**GMAIL, "client_secret": "", "refresh_token": "1//typed"},
        expected_version=parts.mailboxes.get_mailbox(saved.id).version, actor=EDITOR,
    )  # fmt: skip
    grant = monitor.grant_of(saved.id)
    assert grant is not None and (grant.last_used_at, grant.subject) == (None, None)


def test_an_edit_consent_needs_the_edit_right_at_the_callback_too(
    parts: Parts, oauth_provider: FakeProvider
) -> None:
    saved = parts.mailboxes.create_mailbox({**GMAIL, "refresh_token": "1//x"}, actor=ACTOR)
    url = parts.connect.start(
        GMAIL, form="f", redirect_uri=REDIRECT, actor=EDITOR, mailbox_id=saved.id
    )
    demoted = replace(EDITOR, role=Role.VIEWER)
    with pytest.raises(AccessDenied):
        parts.connect.complete(query(oauth_provider.consent(url)), actor=demoted)
    assert bool(consents(parts.engine)[0]["used"]) is False


# ---------------------------------------------------------------- refusals: nothing stored


def _expire(parts: Parts) -> None:
    parts.clock.now += CONSENT_TTL + timedelta(seconds=1)


def _reuse(parts: Parts, params: dict[str, str]) -> None:
    parts.connect.complete(params, actor=EDITOR)


REFUSALS: dict[str, tuple[Callable[..., Any], Actor, str]] = {
    "unknown state": (lambda parts, params: params.update(state="made-up"), EDITOR, "not one"),
    "expired state": (lambda parts, params: _expire(parts), EDITOR, "has expired"),
    "reused state": (_reuse, EDITOR, "already used"),
    "another user's state": (lambda parts, params: None, ADMIN, "another user"),
    "same email, other subject": (lambda parts, params: None, IMPOSTOR, "another user"),
    "no state": (lambda parts, params: params.pop("state"), EDITOR, "opened without"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_callbacks_that_are_not_this_users_live_consent_are_refused(
    parts: Parts, oauth_provider: FakeProvider, case: str
) -> None:
    prepare, actor, message = REFUSALS[case]
    params = connect(parts, oauth_provider, GMAIL)
    prepare(parts, params)
    before = consents(parts.engine)
    minted = len(oauth_provider.refresh_tokens)
    with pytest.raises(ConnectRefused) as refused:
        parts.connect.complete(params, actor=actor)
    assert message in str(refused.value)
    assert refused.value.hint
    assert consents(parts.engine) == before, "a refusal changes nothing"
    assert len(oauth_provider.refresh_tokens) == minted, "the code was not exchanged"
    if case == "another user's state":  # the rightful user can still finish
        assert parts.connect.complete(params, actor=EDITOR).ok


FAILURES: dict[str, tuple[dict[str, Any], str, str]] = {
    "access_denied": ({"allow": False}, "cancelled or refused (access_denied)", "allow access"),
    "another account": (
        {"user": "someone@example.com"},
        "You signed in as someone@example.com, but this mailbox is helpdesk@example.com.",
        "sign in at Google as helpdesk@example.com",
    ),
}


@pytest.mark.parametrize("case", [*FAILURES, "no refresh token", "token endpoint down"])
def test_a_consent_that_connects_nothing_says_why_and_keeps_no_token(
    engine: Engine, key: str, oauth_provider: FakeProvider, case: str
) -> None:
    # Nothing listens on loopback's discard port: the connection is refused at once.
    down = {"google_token_url": "http://127.0.0.1:9/token"} if case == "token endpoint down" else {}
    parts = build(engine, key, oauth_provider, **down)
    oauth_provider.omit_refresh_token = case == "no refresh token"
    try:
        consent, message, hint = FAILURES.get(case, ({}, "", ""))
        outcome = parts.connect.complete(
            connect(parts, oauth_provider, GMAIL, **consent), actor=EDITOR
        )
    finally:
        oauth_provider.omit_refresh_token = False
    expected = {
        "no refresh token": ("Google returned no refresh token.", "myaccount.google.com"),
        "token endpoint down": ("Could not reach the token endpoint", "Check the network"),
    }
    message, hint = expected.get(case, (message, hint))
    assert outcome.ok is False
    assert message in outcome.message and hint in outcome.hint
    [row] = consents(engine)
    assert (row["used"], row["refresh_token_encrypted"], row["connected_account"]) == (
        True,
        None,
        None,
    )
    status = parts.connect.status("form-1", actor=EDITOR)
    assert status is not None and status.state is ConnectState.FAILED
    assert message in status.message
    with pytest.raises(ValidationFailed) as refused:  # nothing to save: no token held
        parts.mailboxes.create_mailbox(GMAIL, actor=EDITOR, connected="form-1")
    assert "refresh_token" in refused.value.by_field()
    assert [e.action for e in parts.mailboxes.list_audit()] == []


def test_the_wrong_tenant_is_a_readable_failure(parts: Parts, oauth_provider: FakeProvider) -> None:
    params = connect(parts, oauth_provider, {**OFFICE365, "tenant_id": "fabrikam.example"})
    outcome = parts.connect.complete(params, actor=EDITOR)
    assert (outcome.ok, outcome.hint) == (False, "No such tenant: check Tenant ID.")
    assert "AADSTS90002" in outcome.message


def test_an_unfinished_consent_expires_for_the_form(parts: Parts) -> None:
    start(parts, GMAIL)
    waiting = parts.connect.status("form-1", actor=EDITOR)
    assert waiting is not None and waiting.state is ConnectState.WAITING
    _expire(parts)
    expired = parts.connect.status("form-1", actor=EDITOR)
    assert expired is not None and expired.state is ConnectState.EXPIRED
    assert "Press Connect again" in expired.hint
    assert parts.connect.status("form-1", actor=ADMIN) is None, "another user sees nothing"


def test_a_held_token_older_than_the_hold_is_not_used_and_is_purged(
    parts: Parts, oauth_provider: FakeProvider
) -> None:
    parts.connect.complete(connect(parts, oauth_provider, GMAIL), actor=EDITOR)
    fresh, rotation = parts.connect.held_values(GMAIL, form="form-1", actor=EDITOR)
    assert fresh["refresh_token"] in oauth_provider.refresh_tokens and rotation is not None
    parts.clock.now += HOLD + timedelta(minutes=1)
    stale, rotation = parts.connect.held_values(GMAIL, form="form-1", actor=EDITOR)
    assert (stale["refresh_token"], rotation) == ("", None)
    start(parts, GMAIL, form="another-form")
    assert [r["form"] for r in consents(parts.engine)] == ["another-form"]


# ---------------------------------------------------------------- the held token and the form


def test_changing_the_account_after_connecting_refuses_to_save_it(
    parts: Parts, oauth_provider: FakeProvider
) -> None:
    parts.connect.complete(connect(parts, oauth_provider, GMAIL), actor=EDITOR)
    with pytest.raises(ValidationFailed) as refused:
        parts.mailboxes.create_mailbox(
            {**GMAIL, "account": "other@example.com"}, actor=EDITOR, connected="form-1"
        )
    assert "helpdesk@example.com was connected with" in refused.value.by_field()["account"]
    assert parts.mailboxes.list_mailboxes() == []


def test_a_typed_refresh_token_wins_and_another_user_cannot_use_the_held_one(
    parts: Parts, oauth_provider: FakeProvider
) -> None:
    parts.connect.complete(connect(parts, oauth_provider, GMAIL), actor=EDITOR)
    with pytest.raises(ValidationFailed):  # ADMIN did not connect this form: nothing held
        parts.mailboxes.create_mailbox(GMAIL, actor=ADMIN, connected="form-1")
    typed = parts.mailboxes.create_mailbox(
        {**GMAIL, "refresh_token": "1//typed"}, actor=EDITOR, connected="form-1"
    )
    assert parts.mailboxes.get_credentials(typed.id).refresh_token == "1//typed"
    assert [e.action for e in parts.mailboxes.list_audit()] == ["created"]


def test_operator_app_connects_a_gmail_mailbox_whose_client_fields_are_blank(
    engine: Engine, key: str, oauth_provider: FakeProvider
) -> None:
    blank = {**GMAIL, "client_id": "", "client_secret": ""}
    plain = build(engine, key, oauth_provider)
    with pytest.raises(ValidationFailed) as refused:
        start(plain, blank)
    assert "MAILBOX_GOOGLE_CLIENT_ID" in refused.value.by_field()["client_id"]
    with pytest.raises(ValidationFailed) as required:
        plain.mailboxes.create_mailbox({**blank, "refresh_token": "1//x"}, actor=EDITOR)
    assert {"client_id", "client_secret"} <= set(required.value.by_field())

    parts = build(engine, key, oauth_provider, google_app=OAuthApp(*GMAIL_CLIENT))
    asked = query(start(parts, blank))
    assert asked["client_id"] == GMAIL_CLIENT[0]
    assert parts.connect.complete(connect(parts, oauth_provider, blank), actor=EDITOR).ok
    saved = parts.mailboxes.create_mailbox(blank, actor=EDITOR, connected="form-1")
    assert (saved.client_id, saved.has_client_secret, saved.has_refresh_token) == (
        None,
        False,
        True,
    )


# ---------------------------------------------------------------- signing in with it (Dovecot)


@pytest.mark.dovecot
@pytest.mark.parametrize("values", [GMAIL, OFFICE365], ids=["gmail", "office365"])
def test_the_connected_token_signs_in_before_and_after_saving(
    engine: Engine, key: str, oauth_provider: FakeProvider, dovecot_server: Any, values: dict
) -> None:
    parts = build(engine, key, oauth_provider, ca_file=str(dovecot_server.ca_file))
    values = {**values, "port": dovecot_server.ports["imaps"]}
    assert parts.connect.complete(connect(parts, oauth_provider, values), actor=EDITOR).ok
    held = parts.box.decrypt(consents(engine)[0]["refresh_token_encrypted"])

    unsaved = parts.checker.test_values(values, actor=EDITOR, connected="form-1")
    assert unsaved.ok, unsaved
    assert unsaved.summary == "Signed in and opened INBOX; 3 messages"
    refreshed = [r for r in oauth_provider.requests if r.get("refresh_token") == held]
    assert [r["grant_type"] for r in refreshed] == ["refresh_token"]
    if values["oauth_provider"] == "Office365":
        # Microsoft rotates refresh tokens: the held one follows, still encrypted.
        assert refreshed[0]["scope"].split() == [
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "offline_access",
        ]
        rotated = parts.box.decrypt(consents(engine)[0]["refresh_token_encrypted"])
        assert rotated != held and rotated in oauth_provider.refresh_tokens
        held = rotated

    saved = parts.mailboxes.create_mailbox(values, actor=EDITOR, connected="form-1")
    assert parts.mailboxes.get_credentials(saved.id).refresh_token == held

    def grants() -> int:
        return sum(r.get("refresh_token") == held for r in oauth_provider.requests)

    before = grants()
    parts.checker.tokens.cache = type(parts.checker.tokens.cache)()  # no cached access token
    checked = parts.checker.check_mailbox(saved.id, actor=EDITOR)
    assert checked.ok, checked
    assert grants() == before + 1, "the saved mailbox signed in with its stored token"


# ---------------------------------------------------------------- the token client's part


def test_delegated_scopes_follow_the_protocol() -> None:
    from mailbox_core.oauth import delegated_scope

    assert (
        delegated_scope("IMAP") == "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"
    )
    assert (
        delegated_scope("POP3") == "https://outlook.office.com/POP.AccessAsUser.All offline_access"
    )


def test_the_operator_app_fills_a_blank_client_and_only_its_own() -> None:
    from mailbox_core.oauth import TokenError, TokenRequest
    from mailbox_core.schemas import AuthMethod, OAuthProvider

    tokens = TokenClient(google_app=OAuthApp("op-id", "op-secret"))
    gmail = TokenRequest(OAuthProvider.GMAIL, client_id="", account="a@example.com")
    assert tokens.client(gmail) == ("op-id", "op-secret")
    assert tokens.client(replace(gmail, client_id="op-id")) == ("op-id", "op-secret")
    own = replace(gmail, client_id="own-id", client_secret="own-secret")
    assert tokens.client(own) == ("own-id", "own-secret")
    delegated = TokenRequest(
        OAuthProvider.OFFICE365, "", "a@example.com", auth_method=AuthMethod.DELEGATED
    )
    with pytest.raises(TokenError) as missing:
        tokens.client(delegated)
    assert "MAILBOX_MICROSOFT_CLIENT_ID" in missing.value.hint


# ---------------------------------------------------------------- where the provider returns


def test_the_redirect_uri_is_the_public_address_plus_the_callback_page() -> None:
    from pathlib import Path

    from mailbox_core.config import CONNECT_CALLBACK_PATH, load_settings
    from mailbox_core.errors import ConfigurationError
    from ui.navigation import CONNECT_CALLBACK_PAGE

    assert Path(CONNECT_CALLBACK_PAGE).stem == CONNECT_CALLBACK_PATH
    local = load_settings({}, {}).connect
    assert local.redirect_uri(8501) == "http://localhost:8501/connect_callback"
    assert local.redirect_uri(9000, "/mbx/") == "http://localhost:9000/mbx/connect_callback"
    auth = {"auth": {"redirect_uri": "https://mbx.corp.example/mbx/oauth2callback"}}
    hosted = load_settings({}, auth).connect
    assert hosted.redirect_uri(8501, "mbx") == "https://mbx.corp.example/mbx/connect_callback"
    set_url = {"MAILBOX_PUBLIC_URL": "https://mail-admin.corp.example/"}
    explicit = load_settings(set_url, auth).connect
    assert explicit.redirect_uri(1) == "https://mail-admin.corp.example/connect_callback"
    with pytest.raises(ConfigurationError, match="MAILBOX_PUBLIC_URL"):
        load_settings({}, {"auth": {"cookie_secret": "x"}}).connect.redirect_uri(8501)
