"""Who may do what: roles from the signed-in identity, asked by the service before a change.

Three roles, each including the one below it:

- ``viewer``: the list, health, the Activity page, export;
- ``editor``: + create, edit, test connections, Check all, duplicate, activate/deactivate;
- ``admin``:  + delete (also in bulk), import, key rotation.

Roles come from an ``[access]`` table of the secrets and ``MAILBOX_ADMINS`` /
``MAILBOX_EDITORS`` / ``MAILBOX_VIEWERS``: an email, or ``@domain`` for a whole domain
(that domain exactly, not its subdomains), and optionally the IdP's groups through
``groups_claim`` and ``group_roles``. The highest matching role wins. An email counts
only when the ID token does not say ``email_verified = false``: Streamlit does not check
it, and some IdPs let users type any address.

Local mode (no sign-in) and the command line act as a full-rights user: the machine's
user is the operator there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from mailbox_core.errors import ConfigurationError, MailboxCoreError

DEFAULT_SESSION_MAX_AGE = 12 * 3600.0


class Role(IntEnum):
    """Ordered: a higher role can do everything a lower one can."""

    VIEWER = 1
    EDITOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class Permission(StrEnum):
    """What an actor may do; the value completes "may not …" in AccessDenied."""

    VIEW = "see mailboxes"
    EXPORT = "export mailbox settings"
    CREATE = "create mailboxes"
    EDIT = "edit mailboxes"
    TEST = "test connections"
    CHECK_ALL = "check all mailboxes"
    DUPLICATE = "duplicate mailboxes"
    SET_STATUS = "activate or deactivate mailboxes"
    DELETE = "delete mailboxes"
    IMPORT = "import mailboxes"
    ROTATE_KEYS = "rotate the encryption keys"


_VIEWER = frozenset({Permission.VIEW, Permission.EXPORT})
_EDITOR = _VIEWER | {
    Permission.CREATE,
    Permission.EDIT,
    Permission.TEST,
    Permission.CHECK_ALL,
    Permission.DUPLICATE,
    Permission.SET_STATUS,
}
_ADMIN = _EDITOR | {Permission.DELETE, Permission.IMPORT, Permission.ROTATE_KEYS}
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: _VIEWER,
    Role.EDITOR: frozenset(_EDITOR),
    Role.ADMIN: frozenset(_ADMIN),
}


class ActorKind(StrEnum):
    USER = "user"  # signed in through the IdP
    LOCAL = "local"  # local mode: no sign-in configured, the machine's user
    OPERATOR = "operator"  # the command line on the host


@dataclass(frozen=True)
class Actor:
    """Who is acting, as the audit trail records it, and with which role (None: no access)."""

    name: str
    role: Role | None
    kind: ActorKind = ActorKind.USER
    subject: str | None = None  # the IdP's `sub`: stable where an email can change

    @classmethod
    def local(cls, name: str) -> Actor:
        """The person at a local `streamlit run` without sign-in: every right."""
        return cls(name=name, role=Role.ADMIN, kind=ActorKind.LOCAL)

    @classmethod
    def operator(cls, name: str) -> Actor:
        """The command line, run by whoever operates the host: not gated by roles."""
        return cls(name=name, role=Role.ADMIN, kind=ActorKind.OPERATOR)

    def can(self, permission: Permission) -> bool:
        """True when this actor's role grants ``permission``."""
        return self.role is not None and permission in GRANTS[self.role]

    def require(self, permission: Permission) -> None:
        """Raise AccessDenied unless this actor's role grants ``permission``."""
        if not self.can(permission):
            raise AccessDenied(self, permission)


class AccessDenied(MailboxCoreError):
    """The acting user's role does not allow this; nothing was done."""

    def __init__(self, actor: Actor, permission: Permission) -> None:
        self.actor = actor
        self.permission = permission
        if actor.role is None:
            text = f"{actor.name} has no access to Mailbox Manager — ask an admin."
        else:
            text = (
                f"{actor.name} is a {actor.role.label} and may not {permission.value}; "
                "ask an admin for a higher role."
            )
        super().__init__(text)


@dataclass(frozen=True)
class AccessPolicy:
    """Who gets which role, and how long a sign-in lasts."""

    admins: tuple[str, ...] = ()
    editors: tuple[str, ...] = ()
    viewers: tuple[str, ...] = ()
    groups_claim: str | None = None
    group_roles: tuple[tuple[str, Role], ...] = ()
    session_max_age: float = DEFAULT_SESSION_MAX_AGE

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None
    ) -> AccessPolicy:
        """The `[access]` table of the secrets plus MAILBOX_ADMINS/EDITORS/VIEWERS (both count)."""
        environ = os.environ if environ is None else environ
        table: Mapping[str, Any] = (secrets or {}).get("access") or {}
        lists = {
            role: _entries(table.get(role), f"[access] {role}")
            + _entries(environ.get(f"MAILBOX_{role.upper()}", ""), f"MAILBOX_{role.upper()}")
            for role in ("admins", "editors", "viewers")
        }
        claim = table.get("groups_claim")
        if claim is not None and not isinstance(claim, str):
            raise ConfigurationError("[access] groups_claim must be the name of a token claim.")
        return cls(
            admins=lists["admins"],
            editors=lists["editors"],
            viewers=lists["viewers"],
            groups_claim=claim.strip() or None if claim else None,
            group_roles=_group_roles(table.get("group_roles") or {}),
            session_max_age=_max_age(environ.get("MAILBOX_SESSION_MAX_AGE", "")),
        )

    def role_for(self, claims: Mapping[str, Any]) -> Role | None:
        """The highest role the identity's verified email or groups earn (None: no access)."""
        by_role = (
            (Role.ADMIN, self.admins),
            (Role.EDITOR, self.editors),
            (Role.VIEWER, self.viewers),
        )
        found = [role for role, entries in by_role for e in entries if _email_matches(e, claims)]
        groups = _groups(claims, self.groups_claim)
        found += [role for group, role in self.group_roles if group in groups]
        return max(found, default=None)

    def actor_for(self, claims: Mapping[str, Any]) -> Actor:
        """The signed-in user as an Actor (email, else sub, as the name)."""
        email = str(claims.get("email") or "").strip()
        subject = str(claims.get("sub") or "") or None
        return Actor(
            name=email or subject or "unknown user",
            role=self.role_for(claims),
            subject=subject,
        )

    def session_expired(self, claims: Mapping[str, Any], now: float | None = None) -> bool:
        """True when the sign-in is older than ``session_max_age`` (no `iat`: expired).

        `iat` is when the IdP issued the ID token at this app's sign-in; `auth_time` can
        be older than that (an IdP's single sign-on session) and would loop forever.
        """
        try:
            issued = float(claims["iat"])
        except (KeyError, TypeError, ValueError):
            return True
        now = time.time() if now is None else now
        return now - issued > self.session_max_age


def _email_matches(entry: str, claims: Mapping[str, Any]) -> bool:
    if _says_unverified(claims.get("email_verified")):
        return False
    email = str(claims.get("email") or "").strip().casefold()
    if "@" not in email:
        return False
    if entry.startswith("@"):
        return email.rsplit("@", 1)[1] == entry[1:]
    return email == entry


def _says_unverified(value: Any) -> bool:
    # Some IdPs send the claim as a string.
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def _groups(claims: Mapping[str, Any], claim: str | None) -> set[str]:
    if claim is None:
        return set()
    value = claims.get(claim)
    if isinstance(value, str):
        return {value}
    if isinstance(value, Iterable):
        return {str(v) for v in value}
    return set()


def _entries(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None or raw == "":
        return ()
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        raise ConfigurationError(f"{where} must be a list of emails or @domains.")
    entries = tuple(str(item).strip().casefold() for item in items if str(item).strip())
    for entry in entries:
        local, _, domain = entry.rpartition("@")
        if not domain or "." not in domain or " " in entry or "@" in local:
            raise ConfigurationError(
                f"{where} has {entry!r}: write an email (alice@corp.example) or a whole "
                "domain (@corp.example)."
            )
    return entries


def _group_roles(raw: Any) -> tuple[tuple[str, Role], ...]:
    if not isinstance(raw, Mapping):
        raise ConfigurationError("[access] group_roles must map group names to roles.")
    pairs = []
    for group, role in raw.items():
        try:
            pairs.append((str(group), Role[str(role).strip().upper()]))
        except KeyError as exc:
            raise ConfigurationError(
                f"[access] group_roles gives {group!r} the role {role!r}; use viewer, "
                "editor or admin."
            ) from exc
    return tuple(pairs)


def _max_age(raw: str) -> float:
    if not raw.strip():
        return DEFAULT_SESSION_MAX_AGE
    try:
        seconds = float(raw)
    except ValueError as exc:
        raise ConfigurationError(
            f"MAILBOX_SESSION_MAX_AGE must be a number of seconds, not {raw!r}."
        ) from exc
    if not 1 <= seconds <= 90 * 24 * 3600:
        raise ConfigurationError("MAILBOX_SESSION_MAX_AGE must be between 1 s and 90 days.")
    return seconds
