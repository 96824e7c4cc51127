"""Roles from the signed-in identity, and the core refusing what a role may not do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mailbox_core.access import AccessDenied, AccessPolicy, Actor, ActorKind, Permission, Role
from mailbox_core.checks import MailboxChecker
from mailbox_core.config import CheckSettings
from mailbox_core.errors import ConfigurationError
from mailbox_core.listing import MailboxFilter
from mailbox_core.schemas import Status
from mailbox_core.service import MailboxService
from tests.conftest import ACTOR, mailbox_data

POLICY = AccessPolicy.load(
    {},
    {
        "access": {
            "admins": ["Alice@Corp.Example"],
            "editors": ["@ops.corp.example"],
            "viewers": ["@corp.example"],
            "groups_claim": "groups",
            "group_roles": {"mailbox-admins": "admin", "helpdesk-ops": "editor"},
        }
    },
)


@pytest.mark.parametrize(
    "claims, role",
    [
        ({"email": "alice@corp.example"}, Role.ADMIN),
        ({"email": "ALICE@corp.example", "email_verified": True}, Role.ADMIN),
        ({"email": "bob@ops.corp.example"}, Role.EDITOR),
        ({"email": "carol@corp.example"}, Role.VIEWER),
        ({"email": "dave@sub.ops.corp.example"}, None),  # a domain entry is that domain only
        ({"email": "mallory@corp.example.evil"}, None),
        ({"email": "alice@corp.example", "email_verified": False}, None),
        ({"email": "alice@corp.example", "email_verified": "false"}, None),
        ({"email": "eve@elsewhere.example", "groups": ["helpdesk-ops"]}, Role.EDITOR),
        ({"email": "carol@corp.example", "groups": ["mailbox-admins"]}, Role.ADMIN),
        (
            {"email": "unverified@x.example", "email_verified": False, "groups": "helpdesk-ops"},
            Role.EDITOR,
        ),
        ({"sub": "no-email"}, None),
        ({}, None),
    ],
)
def test_the_highest_matching_role_wins(claims: dict[str, Any], role: Role | None) -> None:
    assert POLICY.role_for(claims) is role


def test_environment_lists_add_to_the_secrets_table() -> None:
    policy = AccessPolicy.load(
        {"MAILBOX_ADMINS": "root@corp.example", "MAILBOX_VIEWERS": "@partner.example, x@y.example"},
        {"access": {"editors": ["@corp.example"]}},
    )
    assert policy.role_for({"email": "root@corp.example"}) is Role.ADMIN
    assert policy.role_for({"email": "anyone@corp.example"}) is Role.EDITOR
    assert policy.role_for({"email": "p@partner.example"}) is Role.VIEWER
    assert policy.role_for({"email": "x@y.example"}) is Role.VIEWER


@pytest.mark.parametrize(
    "environ, secrets, message",
    [
        ({"MAILBOX_ADMINS": "alice"}, {}, "MAILBOX_ADMINS has 'alice'"),
        ({}, {"access": {"viewers": "@corp.example"}}, None),
        ({}, {"access": {"editors": 3}}, "[access] editors must be a list"),
        ({}, {"access": {"group_roles": {"g": "owner"}}}, "gives 'g' the role 'owner'"),
        ({}, {"access": {"groups_claim": ""}}, None),
        ({}, {"access": {"groups_claim": 7}}, "groups_claim must be the name"),
        ({"MAILBOX_SESSION_MAX_AGE": "12h"}, {}, "MAILBOX_SESSION_MAX_AGE must be a number"),
        ({"MAILBOX_SESSION_MAX_AGE": "0"}, {}, "between"),
    ],
)
def test_bad_access_settings_name_the_setting(
    environ: dict[str, str], secrets: dict[str, Any], message: str | None
) -> None:
    if message is None:
        AccessPolicy.load(environ, secrets)
        return
    with pytest.raises(ConfigurationError) as caught:
        AccessPolicy.load(environ, secrets)
    assert message in str(caught.value)


def test_a_sign_in_expires_after_the_max_age_from_iat() -> None:
    policy = AccessPolicy.load({"MAILBOX_SESSION_MAX_AGE": "3600"}, {})
    assert not policy.session_expired({"iat": 1000}, now=1000 + 3600)
    assert policy.session_expired({"iat": 1000}, now=1000 + 3601)
    # auth_time is not used: an IdP's single sign-on can make it older than the sign-in.
    assert not policy.session_expired({"iat": 1000, "auth_time": 1}, now=1001)
    assert policy.session_expired({}, now=0), "no iat: treated as expired"
    assert AccessPolicy().session_max_age == 12 * 3600


def test_the_actor_is_named_by_email_and_keeps_the_subject() -> None:
    actor = POLICY.actor_for({"email": "bob@ops.corp.example", "sub": "abc-123"})
    assert (actor.name, actor.role, actor.subject, actor.kind) == (
        "bob@ops.corp.example",
        Role.EDITOR,
        "abc-123",
        ActorKind.USER,
    )


def test_access_denied_says_who_and_what() -> None:
    viewer = Actor("val@corp.example", Role.VIEWER)
    with pytest.raises(AccessDenied) as caught:
        viewer.require(Permission.DELETE)
    assert str(caught.value) == (
        "val@corp.example is a viewer and may not delete mailboxes; ask an admin for a higher role."
    )
    assert caught.value.permission is Permission.DELETE
    with pytest.raises(AccessDenied, match="has no access to Mailbox Manager"):
        Actor("eve@x.example", None).require(Permission.VIEW)


# ---------------------------------------------------------------- the core enforces it

ROLES = {
    "none": Actor("eve@x.example", None),
    "viewer": Actor("val@corp.example", Role.VIEWER),
    "editor": Actor("ed@ops.corp.example", Role.EDITOR),
    "admin": Actor("ann@corp.example", Role.ADMIN),
    "operator": Actor.operator("root"),
}
MINIMUM = {"editor": {"editor", "admin", "operator"}, "admin": {"admin", "operator"}}


def _calls(
    service: MailboxService, checker: MailboxChecker, mailbox_id: int
) -> dict[str, tuple[str, Callable[[Actor], Any]]]:
    """Every changing call of the core, with the least role that may make it."""
    values = {**SAVED, "name": "Renamed", "password": ""}
    unreachable = {**mailbox_data("password", name="Draft"), "host": "mailbox.invalid"}
    return {
        "create": ("editor", lambda a: service.create_mailbox(mailbox_data("gmail"), actor=a)),
        "update": (
            "editor",
            lambda a: service.update_mailbox(mailbox_id, values, expected_version=1, actor=a),
        ),
        "set_status": (
            "editor",
            lambda a: service.set_status([mailbox_id], Status.NOT_ACTIVE, actor=a),
        ),
        "copy_name": ("editor", lambda a: service.copy_name(mailbox_id, actor=a)),
        "test_values": ("editor", lambda a: checker.test_values(unreachable, actor=a)),
        "test_edit": ("editor", lambda a: checker.test_edit(mailbox_id, values, actor=a)),
        "check_mailbox": ("editor", lambda a: checker.check_mailbox(mailbox_id, actor=a)),
        "check_selected": ("editor", lambda a: checker.check_many([mailbox_id], actor=a)),
        "check_all": ("editor", lambda a: checker.check_many(actor=a)),
        "set_status_matching": (
            "editor",
            lambda a: service.set_status_matching(
                MailboxFilter(), Status.NOT_ACTIVE, expected=1, actor=a
            ),
        ),
        "delete": ("admin", lambda a: service.delete_mailboxes([mailbox_id], actor=a)),
        "delete_matching": (
            "admin",
            lambda a: service.delete_matching(MailboxFilter(), expected=1, actor=a),
        ),
        "import": (
            "admin",
            lambda a: service.import_mailboxes([mailbox_data("office365_secret")], actor=a),
        ),
        "rotate_keys": ("admin", lambda a: service.rotate_keys(actor=a)),
    }


# Never reachable (.invalid does not resolve): tests fail fast, and nothing is dialed.
SAVED = {**mailbox_data("password"), "host": "pop.invalid", "ssl_enabled": "Yes"}
CALLS = [
    "create", "update", "set_status", "copy_name", "test_values", "test_edit", "check_mailbox",
    "check_selected", "check_all", "set_status_matching", "delete", "delete_matching", "import",
    "rotate_keys",
]  # fmt: skip


@pytest.mark.parametrize("who", list(ROLES))
@pytest.mark.parametrize("call", CALLS)
def test_every_changing_call_is_allowed_only_to_its_roles(
    service: MailboxService, call: str, who: str
) -> None:
    mailbox_id = service.create_mailbox(SAVED, actor=ACTOR).id
    checker = MailboxChecker(service, CheckSettings(timeout=1))
    least, action = _calls(service, checker, mailbox_id)[call]
    before = (service.count_mailboxes(), len(service.list_audit()), service.health())
    if who in MINIMUM[least]:
        action(ROLES[who])
        return
    with pytest.raises(AccessDenied) as caught:
        action(ROLES[who])
    assert caught.value.actor is ROLES[who]
    assert (service.count_mailboxes(), len(service.list_audit()), service.health()) == before


def test_every_changing_method_takes_a_required_actor() -> None:
    import inspect

    changing = {
        MailboxService: [
            "create_mailbox", "update_mailbox", "delete_mailboxes", "set_status",
            "copy_name", "import_mailboxes", "rotate_keys", "delete_matching",
            "set_status_matching",
        ],
        MailboxChecker: ["test_values", "test_edit", "check_mailbox", "check_many"],
    }  # fmt: skip
    for cls, names in changing.items():
        for name in names:
            parameter = inspect.signature(getattr(cls, name)).parameters["actor"]
            assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, name
            assert parameter.default is inspect.Parameter.empty, f"{name} defaults its actor"


def test_the_audit_trail_records_email_and_subject(service: MailboxService) -> None:
    actor = POLICY.actor_for({"email": "bob@ops.corp.example", "sub": "idp|42"})
    service.create_mailbox(mailbox_data("password"), actor=actor)
    [event] = service.list_audit()
    assert (event.actor, event.actor_subject) == ("bob@ops.corp.example", "idp|42")
