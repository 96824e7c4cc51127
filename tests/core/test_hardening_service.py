"""Hardening of the service (issue 11): rotated tokens are not edits (D6), races end in the
core's errors (D8), and IDs no database can hold are simply "no such mailbox" (D9).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, text

from mailbox_core import repository
from mailbox_core.checks import MailboxChecker
from mailbox_core.config import CheckSettings
from mailbox_core.crypto import SecretBox, generate_key
from mailbox_core.errors import ConcurrentEditError, MailboxNotFound
from mailbox_core.schemas import SECRET_FIELDS, Status
from mailbox_core.service import MailboxService
from tests.conftest import ACTOR, mailbox_data

HUGE = [2**63, 10**20, 2**31, 0, -1]


def edit_values(service: MailboxService, mailbox_id: int, **changes: Any) -> dict[str, Any]:
    current = service.get_mailbox(mailbox_id).model_dump(
        exclude={"id", "version", "created_at", "updated_at"} | {f"has_{f}" for f in SECRET_FIELDS}
    )
    return {**current, **{f: "" for f in SECRET_FIELDS}, **changes}


def raw(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT * FROM mailbox ORDER BY id"))]


# ---------------------------------------------------------------- D9


@pytest.mark.parametrize("huge", HUGE)
def test_an_id_no_database_can_hold_is_no_such_mailbox(service: MailboxService, huge: int) -> None:
    service.create_mailbox(mailbox_data("password"), actor=ACTOR)
    with pytest.raises(MailboxNotFound) as caught:
        service.get_mailbox(huge)
    assert str(caught.value) == f"There is no mailbox with ID {huge}."
    with pytest.raises(MailboxNotFound):
        service.update_mailbox(huge, mailbox_data("password"), expected_version=1, actor=ACTOR)
    with pytest.raises(MailboxNotFound):
        service.get_credentials(huge)
    with pytest.raises(MailboxNotFound):
        service.mailboxes_for_check([huge])
    assert service.delete_mailboxes([huge], actor=ACTOR) == 0
    assert service.set_status([huge], Status.NOT_ACTIVE, actor=ACTOR) == 0
    assert service.replace_refresh_token(huge, "x", replaces="y") is False
    assert service.count_mailboxes() == 1


# ---------------------------------------------------------------- D8


def racing(monkeypatch: pytest.MonkeyPatch, name: str, other: Callable[[], Any]) -> None:
    """Make ``repository.<name>`` run ``other`` (a second user's change) right after it reads."""
    original = getattr(repository, name)

    def read_then_race(*args: Any, **kwargs: Any) -> Any:
        found = original(*args, **kwargs)
        monkeypatch.setattr(repository, name, original)
        other()
        return found

    monkeypatch.setattr(repository, name, read_then_race)


@pytest.fixture
def other(engine: Engine, key: str) -> MailboxService:
    """A second user's service on the same database."""
    return MailboxService(engine, SecretBox([key]))


@pytest.mark.parametrize("first", ["save", "delete"])
@pytest.mark.parametrize("then", ["deactivate", "delete"])
def test_a_bulk_action_racing_another_change_is_a_concurrent_edit(
    service: MailboxService,
    other: MailboxService,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    first: str,
    then: str,
) -> None:
    mailbox = service.create_mailbox(mailbox_data("password"), actor=ACTOR)

    def second_user() -> None:
        if first == "save":
            values = edit_values(other, mailbox.id, comments="saved meanwhile")
            other.update_mailbox(mailbox.id, values, expected_version=1, actor=ACTOR)
        else:
            other.delete_mailboxes([mailbox.id], actor=ACTOR)

    racing(monkeypatch, "get_mailboxes", second_user)
    after_other = None
    with pytest.raises(ConcurrentEditError) as caught:
        if then == "deactivate":
            service.set_status([mailbox.id], Status.NOT_ACTIVE, actor=ACTOR)
        else:
            service.delete_mailboxes([mailbox.id], actor=ACTOR)
    after_other = raw(engine)
    message = str(caught.value)
    assert message == (
        "Someone else got there first: “Support POP3” changed or went away while this was "
        "being done. Nothing was changed — try again."
    )
    assert "expected to update" not in message and "matched" not in message
    # Only the other user's change is there.
    if first == "save":
        assert service.get_mailbox(mailbox.id).comments == "saved meanwhile"
        assert service.get_mailbox(mailbox.id).status is Status.ACTIVE
    else:
        assert after_other == []
    actions = [e.action for e in service.list_audit(mailbox.id)]
    assert actions.count("deactivated") == 0
    assert actions.count("deleted") == (1 if first == "delete" else 0)


def test_key_rotation_racing_an_edit_is_a_concurrent_edit(
    engine: Engine, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = MailboxService(engine, SecretBox([key]))
    mailbox = old.create_mailbox(mailbox_data("password"), actor=ACTOR)
    rotating = MailboxService(engine, SecretBox([generate_key(), key]))

    def edit() -> None:
        values = edit_values(old, mailbox.id, comments="edited during rotation")
        old.update_mailbox(mailbox.id, values, expected_version=1, actor=ACTOR)

    racing(monkeypatch, "list_mailboxes", edit)
    with pytest.raises(ConcurrentEditError, match="Nothing was changed — try again"):
        rotating.rotate_keys(actor=ACTOR)
    # The edit stands and the secret still opens with the old key only: nothing rotated.
    assert old.get_mailbox(mailbox.id).comments == "edited during rotation"
    assert old.get_credentials(mailbox.id).password == mailbox_data("password")["password"]


# ---------------------------------------------------------------- D6


def test_a_rotated_refresh_token_is_not_an_edit(service: MailboxService) -> None:
    mailbox = service.create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    old_token = mailbox_data("gmail")["refresh_token"]
    assert service.replace_refresh_token(mailbox.id, "1//rotated-A", replaces=old_token)
    after = service.get_mailbox(mailbox.id)
    assert (after.version, after.updated_at) == (mailbox.version, mailbox.updated_at)
    assert service.get_credentials(mailbox.id).refresh_token == "1//rotated-A"
    assert [e.action for e in service.list_audit(mailbox.id)] == ["created"]
    # The editor who loaded the form before the rotation saves without a conflict.
    values = edit_values(service, mailbox.id, comments="saved after a rotation")
    saved = service.update_mailbox(
        mailbox.id, values, expected_version=mailbox.version, actor=ACTOR
    )
    assert saved.comments == "saved after a rotation"
    assert service.get_credentials(mailbox.id).refresh_token == "1//rotated-A"


def test_a_rotation_never_overwrites_a_token_typed_meanwhile(service: MailboxService) -> None:
    mailbox = service.create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    old_token = mailbox_data("gmail")["refresh_token"]
    values = edit_values(service, mailbox.id, refresh_token="1//typed-by-the-editor")
    service.update_mailbox(mailbox.id, values, expected_version=mailbox.version, actor=ACTOR)
    assert (
        service.replace_refresh_token(mailbox.id, "1//late-rotation", replaces=old_token) is False
    )
    assert service.get_credentials(mailbox.id).refresh_token == "1//typed-by-the-editor"


@pytest.mark.dovecot
def test_an_edit_page_test_that_rotates_the_token_does_not_block_the_save(
    sqlite_engine: Engine, key: str, dovecot_server: Any, oauth_provider: Any
) -> None:
    service = MailboxService(sqlite_engine, SecretBox([key]))
    checker = MailboxChecker(
        service,
        CheckSettings(
            timeout=3,
            ca_file=str(dovecot_server.ca_file),
            google_token_url=oauth_provider.google_token_url,
        ),
    )
    from tests.support.oauth_provider import GMAIL_CLIENT

    mailbox = service.create_mailbox(
        {
            "name": "Rotating Gmail",
            "mailbox_type": "IMAP",
            "host": "localhost",
            "port": dovecot_server.ports["imaps"],
            "ssl_enabled": True,
            "account": "helpdesk@example.com",
            "oauth_enabled": True,
            "oauth_provider": "Gmail",
            "client_id": GMAIL_CLIENT[0],
            "client_secret": GMAIL_CLIENT[1],
            "refresh_token": "1//rotate-me",
        },
        actor=ACTOR,
    )
    form = edit_values(service, mailbox.id, comments="typed while testing")
    assert checker.test_edit(mailbox.id, form, actor=ACTOR).ok
    rotated = service.get_credentials(mailbox.id).refresh_token
    assert rotated is not None and rotated.startswith("1//rotated-")
    saved = service.update_mailbox(mailbox.id, form, expected_version=mailbox.version, actor=ACTOR)
    assert saved.comments == "typed while testing"
    assert service.get_credentials(mailbox.id).refresh_token == rotated
