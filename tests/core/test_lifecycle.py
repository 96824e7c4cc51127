"""Edit, delete, status, audit trail and safe concurrent edits, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, text

from mailbox_core.access import Actor
from mailbox_core.crypto import SecretBox
from mailbox_core.db import current_revision, head_revision, upgrade
from mailbox_core.errors import ConcurrentEditError, StoredSecretRefused, ValidationFailed
from mailbox_core.schemas import SECRET_FIELDS, Status
from mailbox_core.service import MailboxService
from tests.conftest import ACTOR, SIGN_IN_PATHS, mailbox_data, reset_database


def edit(service: MailboxService, mailbox_id: int, **changes: Any) -> dict[str, Any]:
    """Form values as the Edit page submits them: settings, secrets blank."""
    current = service.get_mailbox(mailbox_id)
    values = current.model_dump(
        exclude={
            "id",
            "version",
            "created_at",
            "updated_at",
            "has_password",
            "has_client_secret",
            "has_refresh_token",
        }
    )
    return {**values, **{f: "" for f in SECRET_FIELDS}, **changes}


def audit_text(engine: Engine) -> str:
    with engine.connect() as conn:
        return json.dumps(
            [list(map(str, r)) for r in conn.execute(text("SELECT * FROM audit_event"))]
        )


def test_edit_with_blank_password_keeps_it(service: MailboxService) -> None:
    mailbox = service.create_mailbox(mailbox_data("password"), actor=ACTOR)
    saved = service.update_mailbox(
        mailbox.id,
        edit(service, mailbox.id, comments="polled by the helpdesk"),
        expected_version=mailbox.version,
        actor=Actor.local("ann"),
    )
    assert (saved.comments, saved.version) == ("polled by the helpdesk", mailbox.version + 1)
    assert service.get_credentials(mailbox.id).password == SIGN_IN_PATHS["password"]["password"]


@pytest.mark.parametrize(
    "change",
    [
        {"host": "mail.attacker.example"},
        {"port": 995, "ssl_enabled": True},
        {"starttls": True},
        {"mailbox_type": "IMAP", "port": 143},
        {"account": "someone@example.com"},
    ],
    ids=lambda c: ",".join(c),
)
def test_a_new_destination_keeps_the_stored_password_only_when_confirmed(
    service: MailboxService, engine: Engine, change: dict[str, Any]
) -> None:
    mailbox = service.create_mailbox(mailbox_data("password"), actor=ACTOR)
    with pytest.raises(StoredSecretRefused) as caught:
        service.update_mailbox(
            mailbox.id,
            edit(service, mailbox.id, **change),
            expected_version=mailbox.version,
            actor=ACTOR,
        )
    assert caught.value.secrets == ("password",)
    assert service.get_mailbox(mailbox.id).version == mailbox.version, "nothing saved"
    saved = service.update_mailbox(
        mailbox.id,
        edit(service, mailbox.id, **change),
        expected_version=mailbox.version,
        keep_secrets_for_new_destination=True,
        actor=Actor.local("ann"),
    )
    assert saved.version == mailbox.version + 1
    assert service.get_credentials(mailbox.id).password == SIGN_IN_PATHS["password"]["password"]
    assert service.list_audit(mailbox.id)[0].changes["password"] == "kept for the new destination"


def test_a_new_destination_with_the_password_typed_again_needs_no_confirmation(
    service: MailboxService,
) -> None:
    mailbox = service.create_mailbox(mailbox_data("password"), actor=ACTOR)
    service.update_mailbox(
        mailbox.id,
        edit(service, mailbox.id, host="pop.other.example", password="new-server-pw"),
        expected_version=mailbox.version,
        actor=ACTOR,
    )
    assert service.get_credentials(mailbox.id).password == "new-server-pw"


def test_typed_secret_replaces_and_is_audited_as_changed(
    service: MailboxService, engine: Engine
) -> None:
    mailbox = service.create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    service.update_mailbox(
        mailbox.id,
        edit(service, mailbox.id, refresh_token="1//new-Tok"),
        expected_version=mailbox.version,
        actor=Actor.local("ann"),
    )
    assert service.get_credentials(mailbox.id).refresh_token == "1//new-Tok"
    event = service.list_audit(mailbox.id)[0]
    assert (event.action, event.actor, event.changes) == (
        "updated",
        "ann",
        {"refresh_token": "changed"},
    )


def test_optional_secret_can_be_cleared_but_a_required_one_cannot(service: MailboxService) -> None:
    gmail = service.create_mailbox(mailbox_data("gmail", password="optional-pw"), actor=ACTOR)
    service.update_mailbox(
        gmail.id,
        edit(service, gmail.id),
        clear={"password"},
        expected_version=gmail.version,
        actor=ACTOR,
    )
    assert service.get_mailbox(gmail.id).has_password is False
    pop = service.create_mailbox(mailbox_data("password"), actor=ACTOR)
    with pytest.raises(ValidationFailed) as caught:
        service.update_mailbox(
            pop.id,
            edit(service, pop.id),
            clear={"password"},
            expected_version=pop.version,
            actor=ACTOR,
        )
    assert caught.value.by_field() == {"password": "is required"}
    assert service.get_mailbox(pop.id).has_password is True


def test_switching_a_saved_gmail_mailbox_to_pop3_removes_its_oauth_secrets(
    service: MailboxService,
) -> None:
    mailbox = service.create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    saved = service.update_mailbox(
        mailbox.id,
        edit(service, mailbox.id, mailbox_type="POP3", port=995, password="pop-pw"),
        expected_version=mailbox.version,
        actor=ACTOR,
    )
    assert (
        saved.oauth_enabled,
        saved.client_id,
        saved.has_client_secret,
        saved.has_refresh_token,
    ) == (False, None, False, False)
    changes = service.list_audit(mailbox.id)[0].changes
    assert changes["client_secret"] == "cleared"
    assert changes["refresh_token"] == "cleared"
    assert changes["password"] == "changed"


def test_second_save_of_the_same_version_is_refused(service: MailboxService) -> None:
    mailbox = service.create_mailbox(mailbox_data("password"), actor=ACTOR)
    first = edit(service, mailbox.id, port=1110)
    second = edit(service, mailbox.id, host="other.example.com")
    service.update_mailbox(
        mailbox.id,
        first,
        expected_version=mailbox.version,
        keep_secrets_for_new_destination=True,
        actor=ACTOR,
    )
    with pytest.raises(ConcurrentEditError) as caught:
        service.update_mailbox(mailbox.id, second, expected_version=mailbox.version, actor=ACTOR)
    assert str(caught.value).startswith("This mailbox was changed by someone else at ")
    assert "reload to see their change" in str(caught.value)
    kept = service.get_mailbox(mailbox.id)
    assert (kept.port, kept.host) == (1110, "pop.example.com")


def test_rename_to_an_existing_name_is_refused(service: MailboxService) -> None:
    service.create_mailbox(mailbox_data("password", name="Sales"), actor=ACTOR)
    other = service.create_mailbox(mailbox_data("password", name="Support"), actor=ACTOR)
    with pytest.raises(ValidationFailed) as caught:
        service.update_mailbox(
            other.id,
            edit(service, other.id, name="SALES"),
            expected_version=other.version,
            actor=ACTOR,
        )
    assert "already exists" in caught.value.by_field()["name"]


def test_status_delete_and_audit_trail(service: MailboxService, engine: Engine) -> None:
    ids = [
        service.create_mailbox(mailbox_data(p), actor=Actor.local("ann")).id for p in SIGN_IN_PATHS
    ]
    assert service.set_status(ids[:2], Status.NOT_ACTIVE, actor=Actor.local("bob")) == 2
    assert service.set_status(ids[:2], Status.NOT_ACTIVE, actor=Actor.local("bob")) == 0
    assert service.delete_mailboxes(ids[2:4], actor=Actor.local("cy")) == 2
    assert service.count_mailboxes() == 3
    actions = [(e.action, e.actor) for e in service.list_audit()]
    assert actions[:4] == [("deleted", "cy")] * 2 + [("deactivated", "bob")] * 2
    assert actions.count(("created", "ann")) == 5
    deactivated = service.list_audit(ids[0])[0]
    assert deactivated.changes == {"status": ["Active", "Not Active"]}
    stored = audit_text(engine)
    for values in SIGN_IN_PATHS.values():
        for field in SECRET_FIELDS:
            if field in values:
                assert values[field] not in stored


def test_copy_name_is_unique(service: MailboxService) -> None:
    mailbox = service.create_mailbox(mailbox_data("password", name="Desk"), actor=ACTOR)
    assert service.copy_name(mailbox.id, actor=ACTOR) == "Desk (copy)"
    service.create_mailbox(mailbox_data("password", name="Desk (copy)"), actor=ACTOR)
    assert service.copy_name(mailbox.id, actor=ACTOR) == "Desk (copy 2)"


def test_upgrade_from_the_first_revision_keeps_rows_and_secrets(engine: Engine, key: str) -> None:
    reset_database(engine)
    upgrade(engine, "0001")
    box = SecretBox([key])
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO mailbox (name, name_key, mailbox_type, host, port, account, "
                "ssl_enabled, starttls, allow_self_signed, status, oauth_enabled, "
                "password_encrypted, created_at, updated_at) VALUES ('Old', 'old', 'POP3', "
                "'pop.example.com', 110, 'a@b.co', FALSE, FALSE, FALSE, 'Active', FALSE, :token, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            ),
            {"token": box.encrypt("old-pw")},
        )
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    service = MailboxService(engine, box)
    [mailbox] = service.list_mailboxes()
    assert (mailbox.name, mailbox.version) == ("Old", 1)
    assert service.get_credentials(mailbox.id).password == "old-pw"
    saved = service.update_mailbox(
        mailbox.id, edit(service, mailbox.id, comments="migrated"), expected_version=1, actor=ACTOR
    )
    assert saved.version == 2
