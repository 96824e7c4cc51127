"""OAuth grant health: the local token endpoint and Dovecot's token check, each failure
classified with its hint; the five-month warning on a settable clock (SQLite, PostgreSQL)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from mailbox_core.checks import MailboxChecker
from mailbox_core.config import CheckSettings
from mailbox_core.crypto import SecretBox
from mailbox_core.grant import GrantFacts
from mailbox_core.models import MailboxCheck
from mailbox_core.monitoring import CheckRecord, Monitor
from mailbox_core.oauth import (
    GRANT_HINTS,
    GrantProblem,
    GrantUse,
    TokenClient,
    TokenError,
    TokenRequest,
    classify,
)
from mailbox_core.schemas import AuthMethod, OAuthProvider
from mailbox_core.service import MailboxService
from tests.conftest import ACTOR, mailbox_data
from tests.support.dovecot import free_port
from tests.support.oauth_provider import GMAIL_CLIENT, MS_APP, TENANT


@pytest.fixture
def checker(
    sqlite_engine: Engine, key: str, dovecot_server: Any, oauth_provider: Any
) -> MailboxChecker:
    service = MailboxService(sqlite_engine, SecretBox([key]))
    settings = CheckSettings(
        timeout=3,
        ca_file=str(dovecot_server.ca_file),
        google_token_url=oauth_provider.google_token_url,
        microsoft_authority=oauth_provider.microsoft_authority,
    )
    return MailboxChecker(service, settings)


def save_gmail(checker: MailboxChecker, dovecot_server: Any, **changes: Any) -> int:
    values = {
        "name": f"g{time.monotonic_ns()}",
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
        **changes,
    }
    return checker.mailboxes.create_mailbox(values, actor=ACTOR).id


@pytest.mark.dovecot
@pytest.mark.network
@pytest.mark.parametrize(
    ("token", "subject", "match"),
    [
        ("1//good-refresh", None, "not known"),
        ("1//with-id", "helpdesk@example.com", "matches"),
    ],
)
def test_a_used_grant_records_when_and_whom(
    checker: MailboxChecker, dovecot_server: Any, token: str, subject: str | None, match: str
) -> None:
    mailbox = save_gmail(checker, dovecot_server, refresh_token=token)
    assert checker.check_mailbox(mailbox, actor=ACTOR).ok
    grant = checker.monitor.grant_of(mailbox)
    assert grant is not None and grant.last_used_at is not None
    assert (grant.subject, grant.subject_match, grant.rotated_at) == (subject, match, None)
    assert grant.failure_message is None and grant.warning is None


@pytest.mark.dovecot
@pytest.mark.network
def test_a_rotated_refresh_token_is_recorded_as_rotated(
    checker: MailboxChecker, dovecot_server: Any
) -> None:
    mailbox = save_gmail(checker, dovecot_server, refresh_token="1//rotate-me")
    assert checker.check_mailbox(mailbox, actor=ACTOR).ok
    grant = checker.monitor.grant_of(mailbox)
    assert grant is not None and grant.rotated_at is not None
    assert grant.rotated_at == grant.last_used_at
    stored = checker.mailboxes.get_credentials(mailbox).refresh_token
    assert stored is not None and stored.startswith("1//rotated-")
    assert stored not in repr(grant)


@pytest.mark.dovecot
@pytest.mark.network
def test_an_id_token_for_another_user_differs_and_dovecot_refuses(
    checker: MailboxChecker, dovecot_server: Any
) -> None:
    mailbox = save_gmail(checker, dovecot_server, refresh_token="1//other-user")
    result = checker.check_mailbox(mailbox, actor=ACTOR)
    assert result.summary == "The server refused the OAuth token for helpdesk@example.com"
    grant = checker.monitor.grant_of(mailbox)
    assert grant is not None
    assert (grant.subject, grant.subject_match) == ("carol@example.com", "differs")
    assert grant.last_used_at is not None  # the token endpoint answered: the grant works


REFUSED = {
    "revoked": ({"refresh_token": "1//expired-or-revoked"}, GrantProblem.REVOKED, "re-authorise"),
    "consent": ({"refresh_token": "1//consent"}, GrantProblem.CONSENT, "consent"),
    "client": ({"client_secret": "not-the-secret"}, GrantProblem.CLIENT, "Client Secret"),
}


@pytest.mark.dovecot
@pytest.mark.network
@pytest.mark.parametrize("case", REFUSED)
def test_each_refusal_is_classified_with_its_hint_and_pauses(
    checker: MailboxChecker, dovecot_server: Any, sqlite_engine: Engine, case: str
) -> None:
    changes, problem, hint = REFUSED[case]
    mailbox = save_gmail(checker, dovecot_server, **changes)
    result = checker.check_mailbox(mailbox, actor=ACTOR)
    assert result.failed_step is not None and result.failed_step.name == "Sign-in"
    assert hint in result.failed_step.hint
    grant = checker.monitor.grant_of(mailbox)
    assert grant is not None and grant.failure == problem.value
    assert grant.failure_hint is not None and hint in grant.failure_hint
    with sqlite_engine.connect() as conn:
        query = text("SELECT problem FROM mailbox_check WHERE mailbox_id = :m")
        assert conn.execute(query, {"m": mailbox}).scalars().all() == [problem.value]
    status = checker.monitor.status_of(mailbox)
    assert status.paused(checker.monitor.now())  # a person must act: no retries meanwhile
    [alert] = checker.monitor.alerts_of(mailbox)
    assert alert.kind == ("reauthorise" if problem is GrantProblem.REVOKED else "down")


@pytest.mark.dovecot
@pytest.mark.network
@pytest.mark.parametrize("how", ["5xx", "down"])
def test_an_unreachable_endpoint_is_nobodys_fault(
    checker: MailboxChecker, dovecot_server: Any, oauth_provider: Any, how: str
) -> None:
    mailbox = save_gmail(checker, dovecot_server)
    if how == "down":
        checker.tokens.google_token_url = f"http://127.0.0.1:{free_port()}/token"
    oauth_provider.token_status = 503 if how == "5xx" else None
    try:
        result = checker.check_mailbox(mailbox, actor=ACTOR)
    finally:
        oauth_provider.token_status = None
    assert not result.ok
    assert ("answered HTTP 503" if how == "5xx" else "Could not reach") in result.summary
    grant = checker.monitor.grant_of(mailbox)
    assert grant is not None and grant.failure == GrantProblem.UNREACHABLE.value
    assert not checker.monitor.status_of(mailbox).paused(checker.monitor.now())


@pytest.mark.network
@pytest.mark.parametrize(
    ("token", "problem", "code"),
    [
        ("ms-expired", GrantProblem.REVOKED, "revoked or expired"),
        ("ms-revoked", GrantProblem.REVOKED, "revoked"),
        ("ms-consent", GrantProblem.CONSENT, "AADSTS65001"),
    ],
)
def test_microsoft_refusals_are_classified(
    oauth_provider: Any, token: str, problem: GrantProblem, code: str
) -> None:
    client = TokenClient(microsoft_authority=oauth_provider.microsoft_authority, timeout=3)
    request = TokenRequest(
        provider=OAuthProvider.OFFICE365,
        client_id=MS_APP[0],
        account="it@example.com",
        auth_method=AuthMethod.DELEGATED,
        tenant_id=TENANT,
        refresh_token=token,
    )
    with pytest.raises(TokenError) as caught:
        client.access_token(request)
    assert caught.value.problem is problem
    assert code in str(caught.value)
    assert caught.value.hint


@pytest.mark.parametrize(
    ("error", "description", "problem"),
    [
        ("invalid_grant", "Token has been expired or revoked.", GrantProblem.REVOKED),
        ("invalid_grant", "AADSTS700082: The refresh token has expired", GrantProblem.REVOKED),
        ("invalid_grant", "AADSTS50173: The provided grant has expired", GrantProblem.REVOKED),
        ("consent_required", "", GrantProblem.CONSENT),
        ("interaction_required", "", GrantProblem.CONSENT),
        ("invalid_grant", "AADSTS65001: not consented", GrantProblem.CONSENT),
        ("invalid_client", "Unauthorized", GrantProblem.CLIENT),
        ("unauthorized_client", "", GrantProblem.CLIENT),
        ("invalid_request", "AADSTS7000215: Invalid client secret", GrantProblem.CLIENT),
        ("invalid_grant", "AADSTS50126: Error validating credentials", None),  # a password
        ("invalid_scope", "AADSTS70011", None),
    ],
)
def test_the_classification_table(error: str, description: str, problem: object) -> None:
    assert classify(error, description) is problem
    if problem is not None:
        assert GRANT_HINTS[problem]  # type: ignore[index]


# ---------------------------------------------------------------- five months unused


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def used_gmail(engine: Engine, key: str, clock: Clock) -> tuple[Monitor, MailboxService, int]:
    """A Gmail mailbox whose refresh token a check used at ``clock.now``."""
    monitor = Monitor(engine, clock=clock)
    service = MailboxService(engine, SecretBox([key]), monitor)
    mailbox = service.create_mailbox(mailbox_data("gmail"), actor=ACTOR).id
    used = CheckRecord(
        MailboxCheck(mailbox_id=mailbox, started_at=clock.now, ok=True, message="OK", latency_ms=5),
        grant=GrantFacts(use=GrantUse(refresh_token_used=True, rotated=False, subject=None)),
    )
    service.record_checks([used])
    return monitor, service, mailbox


def test_an_unused_google_token_warns_once_after_five_months(engine: Engine, key: str) -> None:
    clock = Clock(datetime(2026, 1, 1, 9, tzinfo=UTC))
    monitor, service, mailbox = used_gmail(engine, key, clock)
    start = clock.now

    clock.now = start + timedelta(days=120)  # four months
    assert monitor.warn_unused_grants() == 0
    grant = monitor.grant_of(mailbox)
    assert grant is not None and grant.warning is None

    clock.now = start + timedelta(days=151)  # five months and a day
    assert monitor.warn_unused_grants() == 1
    grant = monitor.grant_of(mailbox)
    assert grant is not None and grant.warning is not None and "151 days" in grant.warning
    assert monitor.warn_unused_grants() == 0  # not repeated
    failed = MailboxCheck(
        mailbox_id=mailbox, started_at=clock.now, ok=False, message="no DNS", latency_ms=5
    )
    service.record_checks([CheckRecord(failed)])  # nor by a check that never got a token
    kinds = [a.kind for a in monitor.alerts_of(mailbox)]
    assert kinds.count("grant unused") == 1
    [alert] = [a for a in monitor.alerts_of(mailbox) if a.kind == "grant unused"]
    assert "unused for 151 days" in alert.subject
    assert "1//gmail-refresh-token-Zq" not in alert.text


def test_the_five_month_warning_waits_for_the_maintenance_window_to_end(
    engine: Engine, key: str
) -> None:
    clock = Clock(datetime(2026, 1, 1, 2, 30, tzinfo=UTC))
    monitor, _, mailbox = used_gmail(engine, key, clock)
    monitor.set_window(mailbox, "02:00–03:00", "UTC", actor=ACTOR)

    clock.now += timedelta(days=151)  # five months and a day, at 02:30: in the window
    assert monitor.warn_unused_grants() == 0
    assert [a.kind for a in monitor.alerts_of(mailbox)].count("grant unused") == 0
    clock.now += timedelta(minutes=31)  # 03:01: the window is over, the warning goes out
    assert monitor.warn_unused_grants() == 1
    assert monitor.warn_unused_grants() == 0  # once
    assert [a.kind for a in monitor.alerts_of(mailbox)].count("grant unused") == 1
