"""Expiry warnings with an injectable clock: client-secret dates 40/20/5 days ahead and a
Dovecot serving certificates that expire in 40/10/2 days (by SNI name); certificate facts
recorded with checking off and on; an issuer change is recorded, not sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mailbox_core.bootstrap import Services
from mailbox_core.monitoring import sweep
from tests.conftest import ACTOR
from tests.support import dovecot
from tests.support.monitoring import Clock, monitor_env, open_monitored
from tests.support.receivers import SmtpReceiver
from tests.support.tls import make_certificate

pytestmark = [pytest.mark.dovecot, pytest.mark.network]
CERT_DAYS = (40, 10, 2)
SECRET_DAYS = (40, 20, 5)


def serving(directory: Path, names: dict[str, tuple[float, str]]) -> dovecot.Dovecot:
    """A Dovecot whose IMAPS answers each SNI name with its own certificate."""
    directory.mkdir(exist_ok=True)
    blocks = []
    for name, (days, issuer) in names.items():
        cert, key = make_certificate(directory, name, [name], days=days, issuer=issuer)
        blocks.append(f"local_name {name} {{\n  ssl_cert = <{cert}\n  ssl_key = <{key}\n}}")
    return dovecot.start(extra_config="\n".join(blocks))


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def certs(tmp_path: Path) -> Iterator[dovecot.Dovecot]:
    names = {f"cert{days}.localhost": (days, f"Test CA {days}") for days in CERT_DAYS}
    server = serving(tmp_path / "certs", names)
    yield server
    server.stop()


def imaps(port: int, name: str, host: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "mailbox_type": "IMAP",
        "host": host,
        "port": port,
        "ssl_enabled": "Yes",
        "account": "alice@example.com",
        "password": dovecot.USERS["alice@example.com"],
        **extra,
    }


def secret_mailbox(port: int, days: int, clock: Clock, oauth: Any) -> dict[str, Any]:
    from tests.support.oauth_provider import MS_APP, MS_APP_MAILBOX, TENANT

    return imaps(
        port,
        f"Secret {days}",
        "localhost",
        account=MS_APP_MAILBOX,
        password=None,
        oauth_enabled="Yes",
        oauth_provider="Office365",
        auth_method="Client Secret",
        client_id=MS_APP[0],
        tenant_id=TENANT,
        client_secret=MS_APP[1],
        client_secret_expires=(clock() + timedelta(days=days)).date().isoformat(),
    )


def test_expiry_warnings_badge_and_alert_once_per_threshold(
    tmp_path: Path, certs: dovecot.Dovecot, dovecot_server: Any, oauth_provider: Any,
    smtp: SmtpReceiver,
) -> None:  # fmt: skip
    clock = Clock()
    clock.advance(minutes=1)  # the certificates were made just before: 40 days less a minute
    env = monitor_env(
        tmp_path,
        MAILBOX_CA_FILE=str(dovecot_server.ca_file),
        MAILBOX_MICROSOFT_AUTHORITY=oauth_provider.microsoft_authority,
        MAILBOX_ALERT_SMTP_URL=smtp.url,
        MAILBOX_ALERT_EMAIL_TO="oncall@example.com",
    )
    services = open_monitored(env, clock)
    create = services.mailboxes.create_mailbox
    port = certs.ports["imaps"]
    cert_ids = {
        days: create(
            imaps(port, f"Cert {days}", f"cert{days}.localhost", allow_self_signed=True),
            actor=ACTOR,
        ).id
        for days in CERT_DAYS
    }
    secret_ids = {
        days: create(
            secret_mailbox(dovecot_server.ports["imaps"], days, clock, oauth_provider), actor=ACTOR
        ).id
        for days in SECRET_DAYS
    }
    verified = create(imaps(dovecot_server.ports["imaps"], "Verified", "localhost"), actor=ACTOR)

    assert sweep.sweep(services).ok
    assert sorted(smtp.subjects) == sorted(
        [
            f"TLS certificate of cert10.localhost port {port} expires in 9 days",
            f"TLS certificate of cert2.localhost port {port} expires in 1 day",
            f"Client Secret of “Secret 20” (ID {secret_ids[20]}) expires in 20 days",
            f"Client Secret of “Secret 5” (ID {secret_ids[5]}) expires in 5 days",
        ]
    )
    assert notes(services, clock) == {
        cert_ids[40]: [],
        cert_ids[10]: ["certificate expires in 9 days"],
        cert_ids[2]: ["certificate expires in 1 day"],
        secret_ids[40]: [],
        secret_ids[20]: ["client secret expires in 20 days"],
        secret_ids[5]: ["client secret expires in 5 days"],
        verified.id: [],
    }
    status = services.monitor.status_of(cert_ids[10])
    assert status.cert_issuer == "CN=Test CA 10"
    facts = services.monitor.status_of(verified.id)  # checking on: recorded too
    assert facts.cert_issuer == "CN=localhost" and facts.cert_days(clock()) > 300  # type: ignore[operator]

    clock.advance(minutes=6)
    assert sweep.sweep(services).claimed == 7
    assert len(smtp.messages) == 4  # each warning once

    clock.advance(days=14)  # 40 → 26 days (30-day warnings), 20 → 6 days (7-day warning)
    sweep.sweep(services)
    expires = services.mailboxes.get_mailbox(secret_ids[20]).client_secret_expires
    assert expires is not None
    left = (expires - clock().date()).days  # 6, or 5 if the sweep crossed midnight
    assert sorted(smtp.subjects[4:]) == sorted(
        [
            f"TLS certificate of cert40.localhost port {port} expires in 25 days",
            f"TLS certificate of cert10.localhost port {port} has expired",
            f"Client Secret of “Secret 20” (ID {secret_ids[20]}) expires in {left} days",
            f"Client Secret of “Secret 40” (ID {secret_ids[40]}) expires in {left + 20} days",
        ]
    )


def notes(services: Services, clock: Clock) -> dict[int, list[str]]:
    return {s.mailbox_id: s.notes(clock()) for s in services.monitor.statuses()}


def test_a_changed_issuer_is_recorded_and_not_sent(
    tmp_path: Path, certs: dovecot.Dovecot, smtp: SmtpReceiver
) -> None:
    clock = Clock()
    env = monitor_env(
        tmp_path, MAILBOX_ALERT_SMTP_URL=smtp.url, MAILBOX_ALERT_EMAIL_TO="oncall@example.com"
    )
    services = open_monitored(env, clock)
    values = imaps(certs.ports["imaps"], "Moves", "cert40.localhost", allow_self_signed=True)
    mailbox = services.mailboxes.create_mailbox(values, actor=ACTOR)
    sweep.sweep(services)
    other = serving(tmp_path / "other", {"cert40.localhost": (40, "Another CA")})
    try:
        services.mailboxes.update_mailbox(
            mailbox.id,
            {**values, "port": other.ports["imaps"]},
            expected_version=mailbox.version,
            keep_secrets_for_new_destination=True,
            actor=ACTOR,
        )
        sweep.sweep(services)
    finally:
        other.stop()
    [changed] = services.monitor.alerts_of(mailbox.id)
    assert changed.kind == "certificate issuer" and changed.status == "recorded"
    assert "changed issuer: CN=Test CA 40 → CN=Another CA" in changed.text
    assert smtp.messages == []
