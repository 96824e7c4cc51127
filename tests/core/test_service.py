"""Service use cases on SQLite and PostgreSQL: save, list, refuse, encrypt."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, text

from mailbox_core.crypto import SecretBox, generate_key
from mailbox_core.errors import MailboxNotFound, SecretDecryptionError, ValidationFailed
from mailbox_core.schemas import SECRET_FIELDS
from mailbox_core.service import MailboxService
from tests.conftest import ACTOR, SIGN_IN_PATHS, mailbox_data


def raw_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(text("SELECT * FROM mailbox"))]


@pytest.mark.parametrize("path", SIGN_IN_PATHS)
def test_saved_mailbox_is_listed_with_its_database_id(service: MailboxService, path: str) -> None:
    created = service.create_mailbox(mailbox_data(path), actor=ACTOR)
    listed = service.list_mailboxes()
    assert [m.id for m in listed] == [created.id]
    assert created.id is not None and created.id >= 1
    assert listed[0].name == SIGN_IN_PATHS[path]["name"]
    assert service.get_mailbox(created.id) == listed[0]


@pytest.mark.parametrize("path", SIGN_IN_PATHS)
def test_secrets_round_trip_through_encryption(service: MailboxService, path: str) -> None:
    created = service.create_mailbox(mailbox_data(path), actor=ACTOR)
    credentials = service.get_credentials(created.id)
    for field in SECRET_FIELDS:
        assert getattr(credentials, field) == SIGN_IN_PATHS[path].get(field)
        assert getattr(created, f"has_{field}") is (field in SIGN_IN_PATHS[path])


@pytest.mark.parametrize("path", SIGN_IN_PATHS)
def test_database_holds_only_ciphertext(service: MailboxService, engine: Engine, path: str) -> None:
    service.create_mailbox(mailbox_data(path), actor=ACTOR)
    stored = " ".join(str(v) for row in raw_rows(engine) for v in row.values())
    for field in SECRET_FIELDS:
        if field in SIGN_IN_PATHS[path]:
            assert SIGN_IN_PATHS[path][field] not in stored


def test_public_model_carries_no_secret(service: MailboxService) -> None:
    created = service.create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    dumped = created.model_dump_json()
    for field in SECRET_FIELDS:
        assert f'"{field}"' not in dumped
        assert f"{field}_encrypted" not in dumped
    assert SIGN_IN_PATHS["gmail"]["client_secret"] not in dumped


def test_duplicate_name_is_refused_ignoring_case(service: MailboxService) -> None:
    service.create_mailbox(mailbox_data("password", name="Support"), actor=ACTOR)
    with pytest.raises(ValidationFailed) as caught:
        service.create_mailbox(mailbox_data("password", name="  SUPPORT "), actor=ACTOR)
    assert caught.value.errors[0].field == "name"
    assert "already exists" in caught.value.errors[0].message
    assert service.count_mailboxes() == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"port": 0},
        {"account": "nope"},
        {"host": "ftp://x.example"},
        {"name": "a\r\nb"},
        {"password": ""},
        {
            "mailbox_type": "IMAP",
            "oauth_enabled": "Yes",
            "oauth_provider": "Office365",
            "auth_method": "Client Secret",
            "client_id": "11111111-2222-3333-4444-555555555555",
            "tenant_id": "not a tenant",
        },
    ],
)
def test_invalid_input_writes_nothing(
    service: MailboxService, engine: Engine, overrides: dict[str, Any]
) -> None:
    with pytest.raises(ValidationFailed):
        service.create_mailbox(mailbox_data("password", **overrides), actor=ACTOR)
    assert raw_rows(engine) == []


def test_hidden_gmail_client_id_is_not_stored_after_switch_to_pop3(
    service: MailboxService, engine: Engine
) -> None:
    data = mailbox_data("gmail", mailbox_type="POP3", port=995, password="pw-after-switch")
    created = service.create_mailbox(data, actor=ACTOR)
    row = raw_rows(engine)[0]
    assert row["client_id"] is None
    assert row["client_secret_encrypted"] is None
    assert row["refresh_token_encrypted"] is None
    assert row["oauth_provider"] is None
    assert created.oauth_enabled is False


def test_unknown_id_raises_not_found(service: MailboxService) -> None:
    with pytest.raises(MailboxNotFound) as caught:
        service.get_mailbox(4242)
    assert caught.value.mailbox_id == 4242


def test_wrong_key_names_the_mailbox_and_leaves_the_row(engine: Engine, key: str) -> None:
    created = MailboxService(engine, SecretBox([key])).create_mailbox(
        mailbox_data("gmail"), actor=ACTOR
    )
    before = raw_rows(engine)
    stranger = MailboxService(engine, SecretBox([generate_key()]))
    with pytest.raises(SecretDecryptionError) as caught:
        stranger.get_credentials(created.id)
    assert caught.value.mailbox_id == created.id
    assert "Gmail helpdesk" in str(caught.value)
    assert [m.id for m in stranger.undecryptable_mailboxes()] == [created.id]
    assert raw_rows(engine) == before


def test_two_keys_decrypt_old_and_new_rows(engine: Engine, key: str) -> None:
    old = MailboxService(engine, SecretBox([key])).create_mailbox(
        mailbox_data("password"), actor=ACTOR
    )
    rotated = MailboxService(engine, SecretBox([generate_key(), key]))
    new = rotated.create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    assert rotated.get_credentials(old.id).password == SIGN_IN_PATHS["password"]["password"]
    assert rotated.get_credentials(new.id).refresh_token == SIGN_IN_PATHS["gmail"]["refresh_token"]
    assert rotated.undecryptable_mailboxes() == []
    # The old key alone cannot open what the new first key encrypted.
    with pytest.raises(SecretDecryptionError):
        MailboxService(engine, SecretBox([key])).get_credentials(new.id)
