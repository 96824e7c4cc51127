"""The connection test against a real Dovecot, a local OAuth provider and hostile servers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from mailbox_core.checks import MailboxChecker
from mailbox_core.config import CheckSettings
from mailbox_core.crypto import SecretBox
from mailbox_core.errors import ValidationFailed
from mailbox_core.probe import ProbeResult, ProbeTarget, StepStatus, run_probe
from mailbox_core.schemas import MailboxType
from mailbox_core.service import MailboxService
from mailbox_core.tls import sessions
from tests.conftest import ACTOR
from tests.support import hostile
from tests.support.oauth_provider import GMAIL_CLIENT, MS_APP, TENANT

pytestmark = [pytest.mark.dovecot, pytest.mark.network]

PORTS = {
    ("IMAP", "plain"): "imap",
    ("IMAP", "SSL"): "imaps",
    ("IMAP", "STARTTLS"): "imap",
    ("POP3", "plain"): "pop3",
    ("POP3", "SSL"): "pop3s",
    ("POP3", "STARTTLS"): "pop3",
}


@pytest.fixture
def checker(
    sqlite_engine: Engine, key: str, dovecot_server: Any, oauth_provider: Any
) -> MailboxChecker:
    service = MailboxService(sqlite_engine, SecretBox([key]))
    settings = CheckSettings(
        timeout=3,
        concurrency=8,
        ca_file=str(dovecot_server.ca_file),
        google_token_url=oauth_provider.google_token_url,
        microsoft_authority=oauth_provider.microsoft_authority,
    )
    return MailboxChecker(service, settings)


def save(checker: MailboxChecker, **values: Any) -> int:
    base = {"name": f"m{time.monotonic_ns()}", "host": "localhost", "account": "alice@example.com"}
    return checker.mailboxes.create_mailbox({**base, **values}, actor=ACTOR).id


def steps(result: ProbeResult) -> dict[str, StepStatus]:
    return {s.name: s.status for s in result.steps}


@pytest.mark.parametrize("kind", ["IMAP", "POP3"])
@pytest.mark.parametrize("security", ["plain", "SSL", "STARTTLS"])
@pytest.mark.parametrize("good", [True, False], ids=["good-password", "bad-password"])
def test_password_matrix(
    checker: MailboxChecker, dovecot_server: Any, kind: str, security: str, good: bool
) -> None:
    mailbox_id = save(
        checker,
        mailbox_type=kind,
        port=dovecot_server.ports[PORTS[kind, security]],
        ssl_enabled=security == "SSL",
        starttls=security == "STARTTLS",
        allow_plaintext_password=security == "plain",
        password="alice-Secret-1" if good else "wrong-password",
    )
    result = checker.check_mailbox(mailbox_id, actor=ACTOR)
    if good:
        assert result.ok, result
        assert result.summary == "Signed in and opened INBOX; 3 messages"
        assert result.message_count == 3
        tls = "warning" if security == "plain" else "passed"
        assert steps(result) == {
            "DNS": "passed",
            "TCP": "passed",
            "TLS": tls,
            "Greeting": "passed",
            "Sign-in": "passed",
            "Mailbox": "passed",
        }
    else:
        assert not result.ok
        assert result.failed_step is not None
        assert result.failed_step.name == "Sign-in"
        assert result.summary == "The server refused the password for alice@example.com"
        assert result.failed_step.hint == "Check Account and Password."
        assert steps(result)["Mailbox"] == "skipped"
    health = checker.mailboxes.health()[mailbox_id]
    assert health.last_ok is good
    assert health.consecutive_failures == (0 if good else 1)


def test_plain_connection_allowed_per_mailbox_still_warns(
    checker: MailboxChecker, dovecot_server: Any
) -> None:
    result = checker.check_mailbox(
        save(
            checker,
            mailbox_type="IMAP",
            password="alice-Secret-1",
            port=dovecot_server.ports["imap"],
            allow_plaintext_password=True,
        ),
        actor=ACTOR,
    )
    assert result.ok
    tls = next(s for s in result.steps if s.name == "TLS")
    assert tls.status is StepStatus.WARNING
    assert (
        tls.detail == "Not encrypted: the password is sent in plain text (allowed for this mailbox)"
    )
    assert tls.hint == "The server offers STARTTLS: set STARTTLS to Yes."


@pytest.mark.parametrize("kind", ["IMAP", "POP3"])
def test_plain_connection_without_the_choice_sends_no_password(
    checker: MailboxChecker, dovecot_server: Any, kind: str
) -> None:
    result = checker.check_mailbox(
        save(
            checker,
            mailbox_type=kind,
            password="alice-Secret-1",
            port=dovecot_server.ports[kind.lower()],
        ),
        actor=ACTOR,
    )
    assert not result.ok
    assert result.failed_step is not None
    assert result.failed_step.name == "TLS"
    assert result.summary.startswith("Not encrypted: signing in would send the password in plain")
    assert "Allow sign-in without encryption" in result.failed_step.hint
    assert steps(result)["Sign-in"] == "skipped"


def test_plain_connection_without_the_choice_sends_nothing_to_the_server(
    checker: MailboxChecker,
) -> None:
    capture = hostile.CaptureServer()
    try:
        result = checker.test_values(
            {
                "name": "capture",
                "mailbox_type": "IMAP",
                "host": "127.0.0.1",
                "port": capture.port,
                "account": "alice@example.com",
                "password": "never-on-the-wire-9",
            },
            actor=ACTOR,
        )
    finally:
        capture.stop()
    assert result.failed_step is not None and result.failed_step.name == "TLS"
    assert capture.connections == 1, "the greeting was read (the server was reached)"
    assert "never-on-the-wire-9" not in capture.received_text()
    assert "LOGIN" not in capture.received_text().upper()


def test_probe_never_changes_the_mailbox(checker: MailboxChecker, dovecot_server: Any) -> None:
    for kind, port in (("POP3", "pop3s"), ("IMAP", "imaps"), ("POP3", "pop3s")):
        mailbox = save(
            checker,
            mailbox_type=kind,
            ssl_enabled=True,
            password="bob-Secret-2",
            account="bob@example.com",
            port=dovecot_server.ports[port],
            name=f"bob {kind} {time.monotonic_ns()}",
        )
        assert checker.check_mailbox(mailbox, actor=ACTOR).message_count == 3
    maildir = dovecot_server.workdir / "mail" / "bob@example.com" / "Maildir"
    assert len(list((maildir / "new").iterdir())) + len(list((maildir / "cur").iterdir())) == 3
    assert not [p for p in (maildir / "cur").iterdir() if "S" in p.name.rsplit(",", 1)[-1]]


@pytest.mark.parametrize("kind,port", [("IMAP", "imaps"), ("POP3", "pop3s")])
def test_non_ascii_password_signs_in(
    checker: MailboxChecker, dovecot_server: Any, kind: str, port: str
) -> None:
    result = checker.check_mailbox(
        save(
            checker,
            mailbox_type=kind,
            ssl_enabled=True,
            account="carol@example.com",
            password="pässwörd-ü",
            port=dovecot_server.ports[port],
        ),
        actor=ACTOR,
    )
    assert result.ok, result.summary


def test_unsaved_form_values_can_be_tested(checker: MailboxChecker, dovecot_server: Any) -> None:
    result = checker.test_values(
        {
            "name": "draft",
            "mailbox_type": "IMAP",
            "host": "localhost",
            "port": dovecot_server.ports["imaps"],
            "ssl_enabled": "Yes",
            "account": "alice@example.com",
            "password": "alice-Secret-1",
        },
        actor=ACTOR,
    )
    assert result.ok
    assert checker.mailboxes.count_mailboxes() == 0


def test_consecutive_failures_and_failing_since(
    checker: MailboxChecker, dovecot_server: Any
) -> None:
    mailbox = save(
        checker,
        mailbox_type="IMAP",
        password="nope",
        port=dovecot_server.ports["imap"],
        allow_plaintext_password=True,
    )
    checker.check_mailbox(mailbox, actor=ACTOR)
    first = checker.mailboxes.health()[mailbox].failing_since
    checker.check_mailbox(mailbox, actor=ACTOR)
    health = checker.mailboxes.health()[mailbox]
    assert health.consecutive_failures == 2
    assert health.failing_since == first
    assert health.last_success_at is None
    assert health.last_failed_step == "Sign-in"


def test_check_all_checks_only_active_mailboxes(
    checker: MailboxChecker, dovecot_server: Any
) -> None:
    port = dovecot_server.ports["imaps"]
    good = save(
        checker, mailbox_type="IMAP", password="alice-Secret-1", port=port, ssl_enabled=True
    )
    bad = save(checker, mailbox_type="IMAP", password="wrong", port=port, ssl_enabled=True)
    idle = save(
        checker,
        mailbox_type="IMAP",
        password="alice-Secret-1",
        port=port,
        ssl_enabled=True,
        status="Not Active",
    )
    seen: list[tuple[int, int]] = []
    results = checker.check_many(
        on_progress=lambda done, total, m, r: seen.append((done, total)), actor=ACTOR
    )
    assert set(results) == {good, bad}
    assert results[good].ok and not results[bad].ok
    assert seen == [(1, 2), (2, 2)]
    assert idle not in checker.mailboxes.health()


# ---------------------------------------------------------------- XOAUTH2


OAUTH_CASES = {
    "gmail": {
        "oauth_provider": "Gmail",
        "account": "helpdesk@example.com",
        "client_id": GMAIL_CLIENT[0],
        "client_secret": GMAIL_CLIENT[1],
        "refresh_token": "1//good-refresh",
    },
    "office365_secret": {
        "oauth_provider": "Office365",
        "auth_method": "Client Secret",
        "account": "billing@example.com",
        "client_id": MS_APP[0],
        "tenant_id": TENANT,
        "client_secret": MS_APP[1],
    },
    "office365_password": {
        "oauth_provider": "Office365",
        "auth_method": "API Username/Password",
        "account": "it@example.com",
        "client_id": MS_APP[0],
        "tenant_id": TENANT,
        "password": "it-Secret-4",
    },
}
OAUTH_BAD = {
    "gmail": ({"refresh_token": "1//revoked"}, "invalid_grant", "re-authorise the app"),
    "office365_secret": (
        {"client_secret": "expired-secret"},
        "AADSTS7000222",
        "client secret has expired",
    ),
    "office365_password": (
        {"account": "mfa@example.com"},
        "AADSTS50076",
        "Multi-factor authentication blocks the password grant",
    ),
}


def save_oauth(checker: MailboxChecker, dovecot_server: Any, case: str, **changes: Any) -> int:
    return save(
        checker,
        mailbox_type="IMAP",
        ssl_enabled=True,
        oauth_enabled=True,
        port=dovecot_server.ports["imaps"],
        **{**OAUTH_CASES[case], **changes},
    )


@pytest.mark.parametrize("case", OAUTH_CASES)
def test_xoauth2_good_token_signs_in(
    checker: MailboxChecker, dovecot_server: Any, case: str
) -> None:
    result = checker.check_mailbox(save_oauth(checker, dovecot_server, case), actor=ACTOR)
    assert result.ok, result.summary
    sign_in = next(s for s in result.steps if s.name == "Sign-in")
    assert "XOAUTH2" in sign_in.detail
    assert result.message_count == 3


@pytest.mark.parametrize("case", OAUTH_CASES)
def test_xoauth2_provider_refusal_is_a_readable_hint(
    checker: MailboxChecker, dovecot_server: Any, case: str
) -> None:
    changes, code, hint = OAUTH_BAD[case]
    result = checker.check_mailbox(
        save_oauth(checker, dovecot_server, case, **changes), actor=ACTOR
    )
    assert not result.ok
    assert result.failed_step is not None and result.failed_step.name == "Sign-in"
    assert code in result.summary
    assert hint in result.failed_step.hint


def test_token_for_another_account_is_refused_by_the_server(
    checker: MailboxChecker, dovecot_server: Any
) -> None:
    # The app-only token is for billing@; signing in as alice@ with it must fail.
    result = checker.check_mailbox(
        save_oauth(checker, dovecot_server, "office365_secret", account="alice@example.com"),
        actor=ACTOR,
    )
    assert result.summary == "The server refused the OAuth token for alice@example.com"


def test_token_endpoint_down_is_a_readable_message(
    checker: MailboxChecker, dovecot_server: Any
) -> None:
    checker.tokens.google_token_url = f"http://127.0.0.1:{hostile_closed_port()}/token"
    result = checker.check_mailbox(save_oauth(checker, dovecot_server, "gmail"), actor=ACTOR)
    assert not result.ok
    assert "Could not reach the token endpoint" in result.summary


def test_introspection_down_reaches_the_client_as_unavailable(
    checker: MailboxChecker, dovecot_server: Any, oauth_provider: Any
) -> None:
    mailbox = save_oauth(checker, dovecot_server, "gmail")
    oauth_provider.introspection_down = True
    try:
        result = checker.check_mailbox(mailbox, actor=ACTOR)
    finally:
        oauth_provider.introspection_down = False
    assert result.summary == "The mail server could not verify the token right now"


def test_rotated_refresh_token_is_stored_encrypted(
    checker: MailboxChecker, dovecot_server: Any
) -> None:
    mailbox = save_oauth(checker, dovecot_server, "gmail", refresh_token="1//rotate-me")
    assert checker.check_mailbox(mailbox, actor=ACTOR).ok
    stored = checker.mailboxes.get_credentials(mailbox).refresh_token
    assert stored is not None and stored.startswith("1//rotated-")


def test_access_tokens_are_cached(
    checker: MailboxChecker, dovecot_server: Any, oauth_provider: Any
) -> None:
    mailbox = save_oauth(checker, dovecot_server, "office365_secret")
    before = len(oauth_provider.requests)
    assert checker.check_mailbox(mailbox, actor=ACTOR).ok
    assert checker.check_mailbox(mailbox, actor=ACTOR).ok
    assert len(oauth_provider.requests) - before == 1


# ---------------------------------------------------------------- edits and stalls


def hostile_closed_port() -> int:
    from tests.support.dovecot import free_port

    return free_port()


@pytest.fixture
def serve() -> Iterator[Any]:
    servers = hostile.Servers()
    yield servers.start
    servers.stop()


def saved_imaps(checker: MailboxChecker, dovecot_server: Any) -> tuple[int, dict[str, Any]]:
    """A saved IMAPS mailbox of alice@, and its settings as the Edit form submits them."""
    mailbox = save(
        checker,
        mailbox_type="IMAP",
        password="alice-Secret-1",
        port=dovecot_server.ports["imaps"],
        ssl_enabled=True,
    )
    values = checker.mailboxes.get_mailbox(mailbox).model_dump(
        include={"name", "mailbox_type", "host", "port", "account", "ssl_enabled"}
    )
    return mailbox, values


def test_edit_test_uses_typed_secret_over_the_stored_one(
    checker: MailboxChecker, dovecot_server: Any
) -> None:
    mailbox, values = saved_imaps(checker, dovecot_server)
    assert checker.test_edit(mailbox, {**values, "password": ""}, actor=ACTOR).ok
    typed = checker.test_edit(mailbox, {**values, "password": "typed-but-wrong"}, actor=ACTOR)
    assert typed.summary == "The server refused the password for alice@example.com"
    with pytest.raises(ValidationFailed):
        checker.test_edit(mailbox, values, clear={"password"}, actor=ACTOR)


@pytest.mark.parametrize(
    "change",
    [
        {"host": "127.0.0.1"},
        {"port": 1},
        {"ssl_enabled": False, "starttls": True},
        {"mailbox_type": "POP3"},
        {"account": "mallory@example.com"},
    ],
    ids=lambda c: ",".join(c),
)
def test_edit_test_never_sends_a_stored_password_to_a_changed_destination(
    checker: MailboxChecker, dovecot_server: Any, change: dict[str, Any]
) -> None:
    from mailbox_core.errors import StoredSecretRefused

    mailbox, values = saved_imaps(checker, dovecot_server)
    capture = hostile.CaptureServer()
    moved = {**values, **change, "password": ""}
    if "port" in change:
        moved["port"] = capture.port
    try:
        with pytest.raises(StoredSecretRefused) as caught:
            checker.test_edit(mailbox, moved, actor=ACTOR)
    finally:
        capture.stop()
    assert caught.value.secrets == ("password",)
    assert caught.value.by_field()["password"].startswith("type it again: the stored Password")
    assert capture.connections == 0


def test_edit_test_of_gmail_keeps_its_stored_token_only_for_the_same_client(
    checker: MailboxChecker, dovecot_server: Any
) -> None:
    from mailbox_core.errors import StoredSecretRefused

    mailbox = checker.mailboxes.create_mailbox(
        {
            "name": "gmail moved",
            "mailbox_type": "IMAP",
            "host": "localhost",
            "port": dovecot_server.ports["imaps"],
            "ssl_enabled": True,
            "account": "helpdesk@example.com",
            "oauth_enabled": True,
            "oauth_provider": "Gmail",
            "client_id": GMAIL_CLIENT[0],
            "client_secret": GMAIL_CLIENT[1],
            "refresh_token": "1//good-refresh",
        },
        actor=ACTOR,
    )
    values = mailbox.model_dump(
        include={
            "name", "mailbox_type", "host", "port", "account", "ssl_enabled",
            "oauth_enabled", "oauth_provider", "client_id",
        }
    )  # fmt: skip
    assert checker.test_edit(mailbox.id, values, actor=ACTOR).ok
    with pytest.raises(StoredSecretRefused) as caught:
        checker.test_edit(
            mailbox.id, {**values, "client_id": "other.apps.googleusercontent.com"}, actor=ACTOR
        )
    assert caught.value.secrets == ("client_secret", "refresh_token")


def test_a_stalled_mailbox_does_not_block_check_all(
    checker: MailboxChecker, dovecot_server: Any, serve: Any
) -> None:
    stalled = save(
        checker, mailbox_type="IMAP", password="x", port=serve(hostile.silent), name="Stalled"
    )
    good = [
        save(
            checker,
            mailbox_type="IMAP",
            password="alice-Secret-1",
            port=dovecot_server.ports["imap"],
        )
        for _ in range(3)
    ]
    finished: list[tuple[int, float]] = []
    waiting: list[tuple[int, int, list[tuple[str, float]]]] = []
    started = time.monotonic()
    results = checker.check_many(
        on_progress=lambda done, total, mailbox, result: finished.append(
            (mailbox.id, time.monotonic() - started)
        ),
        on_wait=lambda done, total, running: waiting.append(
            (done, total, [(m.name, seconds) for m, seconds in running])
        ),
        actor=ACTOR,
    )
    order = [mailbox_id for mailbox_id, _ in finished]
    assert order[-1] == stalled, "the stalled mailbox must finish last, after the others"
    # While it stalls, Check all says what it is waiting for, and for how long.
    done, total, running = waiting[-1]
    assert (done, total) == (3, 4)
    assert [name for name, _ in running] == ["Stalled"]
    assert running[0][1] >= checker.settings.timeout - 1
    assert set(order[:3]) == set(good)
    assert time.monotonic() - started < checker.settings.timeout + 1
    assert "sent no greeting" in results[stalled].summary


# ---------------------------------------------------------------- TLS session reuse


@pytest.mark.parametrize("kind, port", [("IMAP", "imaps"), ("POP3", "pop3s")])
def test_the_second_handshake_to_the_same_dovecot_is_resumed(
    dovecot_server: Any, kind: str, port: str
) -> None:
    sessions.clear()
    target = ProbeTarget(
        MailboxType(kind),
        "localhost",
        dovecot_server.ports[port],
        "alice@example.com",
        "alice-Secret-1",
        ssl_enabled=True,
    )
    ca_file = str(dovecot_server.ca_file)
    results = [run_probe(target, timeout=3, ca_file=ca_file) for _ in range(3)]
    assert all(r.ok for r in results), [r.summary for r in results]
    tls = [next(s.detail for s in r.steps if s.name == "TLS") for r in results]
    # The detail says "resumed" exactly when the TLS socket's session_reused is true.
    assert tls == [
        "TLSv1.3 · certificate verified",
        "TLSv1.3 · certificate verified · resumed",
        "TLSv1.3 · certificate verified · resumed",
    ]
