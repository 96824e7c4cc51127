"""Shared fixtures: engines on SQLite and PostgreSQL, the service, mailbox factories."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

from mailbox_core.access import Actor
from mailbox_core.crypto import SecretBox, generate_key
from mailbox_core.db import init_db, make_engine
from mailbox_core.service import MailboxService
from tests.support import netfence

STRICT = os.environ.get("MAILBOX_TEST_STRICT") == "1"
POSTGRES_URL = os.environ.get("MAILBOX_TEST_POSTGRES_URL")
ROOT = Path(__file__).resolve().parent.parent
#: Who acts in tests that are not about roles: a local-mode user with every right.
ACTOR = Actor.local("tester")

# Loopback only (tests/support/netfence.py): this process, and Python children via PYTHONPATH.
netfence.install()
os.environ.update(netfence.subprocess_env())
# The app's services would look every saved Host up (same mailbox twice): tests that are
# about it inject a resolver; the rest compare host names, as without DNS.
os.environ.setdefault("MAILBOX_TWIN_DNS", "off")


@pytest.fixture(autouse=True)
def _network_fence() -> Iterator[None]:
    """Fail a test that dialed or resolved anything but loopback, even if the code swallowed it."""
    earlier = netfence.violations()
    netfence.clear()
    if earlier:
        pytest.fail("network fence, before this test (fixtures?):\n" + "\n".join(map(str, earlier)))
    yield
    found = netfence.violations()
    netfence.clear()
    if found:
        pytest.fail("network fence refused:\n" + "\n".join(map(str, found)), pytrace=False)


def need(condition: object, reason: str) -> None:
    """Skip when a server or tool is missing; under MAILBOX_TEST_STRICT=1 fail instead."""
    if condition:
        return
    if STRICT:
        pytest.fail(f"MAILBOX_TEST_STRICT=1 but: {reason}")
    pytest.skip(reason)


# A valid set of form values for each sign-in path of SPEC §3.
SIGN_IN_PATHS: dict[str, dict[str, Any]] = {
    "password": {
        "name": "Support POP3",
        "mailbox_type": "POP3",
        "host": "pop.example.com",
        "port": 110,
        "account": "support@example.com",
        "password": "pop-password-7Q",
    },
    "gmail": {
        "name": "Gmail helpdesk",
        "mailbox_type": "IMAP",
        "host": "imap.gmail.com",
        "port": 993,
        "ssl_enabled": "Yes",
        "account": "helpdesk@gmail.com",
        "oauth_enabled": "Yes",
        "oauth_provider": "Gmail",
        "client_id": "1234.apps.googleusercontent.com",
        "client_secret": "gmail-client-secret-Xy",
        "refresh_token": "1//gmail-refresh-token-Zq",
    },
    "office365_password": {
        "name": "O365 password grant",
        "mailbox_type": "IMAP",
        "host": "outlook.office365.com",
        "port": 993,
        "ssl_enabled": "Yes",
        "account": "it@contoso.com",
        "password": "o365-user-password-Kd",
        "oauth_enabled": "Yes",
        "oauth_provider": "Office365",
        "auth_method": "API Username/Password",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "tenant_id": "contoso.onmicrosoft.com",
    },
    "office365_secret": {
        "name": "O365 app-only",
        "mailbox_type": "IMAP",
        "host": "outlook.office365.com",
        "port": 993,
        "ssl_enabled": "Yes",
        "account": "billing@contoso.com",
        "oauth_enabled": "Yes",
        "oauth_provider": "Office365",
        "auth_method": "Client Secret",
        "client_id": "11111111-2222-3333-4444-555555555555",
        "tenant_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "client_secret": "o365-client-secret-Wv",
    },
    "unknown_provider": {
        "name": "Imported unknown",
        "mailbox_type": "IMAP",
        "host": "mail.example.org",
        "port": 143,
        "account": "old@example.org",
        "password": "unknown-provider-pw-Jr",
        "oauth_enabled": "Yes",
        "oauth_provider": "Unknown",
    },
}


def mailbox_data(path: str = "password", **overrides: Any) -> dict[str, Any]:
    """Form values for a sign-in path, with overrides."""
    return {**SIGN_IN_PATHS[path], **overrides}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh, empty database: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'mailboxes.db'}")
    else:
        need(POSTGRES_URL, "MAILBOX_TEST_POSTGRES_URL is not set (no PostgreSQL to test on)")
        eng = make_engine(str(POSTGRES_URL))
        reset_database(eng)
    init_db(eng)
    yield eng
    if request.param == "postgresql":
        reset_database(eng)
    eng.dispose()


def reset_database(eng: Engine) -> None:
    """Drop every table of the schema, Alembic's version table included."""
    SQLModel.metadata.drop_all(eng)
    with eng.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite file database, for tests that read the raw file."""
    eng = make_engine(f"sqlite:///{tmp_path / 'mailboxes.db'}")
    init_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def key() -> str:
    return generate_key()


@pytest.fixture
def service(engine: Engine, key: str) -> MailboxService:
    return MailboxService(engine, SecretBox([key]))


# ---------------------------------------------------------------- mail servers


@pytest.fixture(scope="session")
def oauth_provider() -> Iterator[Any]:
    from tests.support.oauth_provider import FakeProvider

    provider = FakeProvider()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def dovecot_server(oauth_provider: Any) -> Iterator[Any]:
    """A private Dovecot (IMAP, IMAPS, POP3, POP3S) whose XOAUTH2 asks ``oauth_provider``."""
    from tests.support import dovecot

    need(
        dovecot.available(),
        "Dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)",
    )
    server = dovecot.start(introspection_url=oauth_provider.introspection_url)
    yield server
    server.stop()


@pytest.fixture
def start_dovecot() -> Iterator[Any]:
    """Starts private Dovecots with options (``quota=True``, ``extra_config=…``) for one test.

    Each is stopped after the test; ``server.reload(extra_config)`` changes one mid-test.
    """
    from tests.support import dovecot

    need(
        dovecot.available(),
        "Dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)",
    )
    started: list[Any] = []

    def start(**options: Any) -> Any:
        started.append(dovecot.start(**options))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def dovecot_imaps(dovecot_server: Any, name: str, password: str, **extra: Any) -> dict[str, Any]:
    """Form values for an IMAPS mailbox of alice@ on the private Dovecot."""
    return {
        "name": name,
        "mailbox_type": "IMAP",
        "host": "localhost",
        "ssl_enabled": "Yes",
        "port": dovecot_server.ports["imaps"],
        "account": "alice@example.com",
        "password": password,
        **extra,
    }


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m mailbox_core ARGS` from the checkout, with exactly ``env`` (plus the fence)."""
    return subprocess.run(
        [sys.executable, "-m", "mailbox_core", *args],
        cwd=ROOT,
        env=netfence.subprocess_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
