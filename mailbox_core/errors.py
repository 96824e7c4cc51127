"""Errors raised by the core package.

Every error the core raises on purpose derives from ``MailboxCoreError``, so a page
catches that one class and shows ``str(exc)``; anything else is a bug.

    MailboxCoreError
    ├── ConfigurationError        settings or keys that cannot work
    ├── StorageError              the database could not be reached or written
    ├── MailboxNotFound           no mailbox with that ID
    ├── ValidationFailed          one or more fields are wrong; carries FieldError items
    │   └── StoredSecretRefused   a kept secret would go to a destination it was not saved for
    ├── ConcurrentEditError       someone else saved the mailbox since it was loaded
    ├── SelectionChanged          "all N matching" no longer matches N mailboxes
    ├── SecretDecryptionError     a stored secret does not open with the configured keys
    ├── AccessDenied              (access.py) the acting user's role does not allow this
    ├── EgressRefused             (egress.py) a connection test aimed where the policy forbids
    ├── TokenError                (oauth.py) no access token could be obtained; carries a hint
    ├── ConnectRefused            (connect.py) a callback that is not this user's live consent
    ├── ImportFileError           (transfer.py) an import file that cannot be read at all
    └── ImportFailed              (transfer.py) import rows break rules; nothing was written

Errors defined beside their feature are listed here too; tests/core/test_errors.py
checks that every subclass appears in this tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class MailboxCoreError(Exception):
    """Base of every error the core raises on purpose."""


class ConfigurationError(MailboxCoreError):
    """A setting or key is missing or malformed."""


class StorageError(MailboxCoreError):
    """The database could not be reached or refused the change."""


class MailboxNotFound(MailboxCoreError):
    """No mailbox has the requested ID."""

    def __init__(self, mailbox_id: int) -> None:
        self.mailbox_id = mailbox_id
        super().__init__(f"There is no mailbox with ID {mailbox_id}.")


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: ``field`` is the attribute, ``label`` what people see."""

    field: str
    label: str
    message: str

    def __str__(self) -> str:
        return f"{self.label}: {self.message}"


class ValidationFailed(MailboxCoreError):
    """The submitted values break one or more rules; nothing was saved."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(str(error) for error in self.errors))

    def by_field(self) -> dict[str, str]:
        """Map each failing field to its message (first message wins)."""
        result: dict[str, str] = {}
        for error in self.errors:
            result.setdefault(error.field, error.message)
        return result


class ConcurrentEditError(MailboxCoreError):
    """The mailbox changed since the editor loaded it; nothing was overwritten.

    ``mailbox_id`` is None for an action on several mailboxes (``what`` then names them).
    """

    def __init__(self, mailbox_id: int | None, changed_at: datetime | None, what: str = "") -> None:
        self.mailbox_id = mailbox_id
        self.changed_at = changed_at
        when = f" at {changed_at:%H:%M}" if changed_at else ""
        if what:
            text = f"Someone else got there first: {what}. Nothing was changed — try again."
        else:
            text = (
                f"This mailbox was changed by someone else{when} — reload to see their "
                "change. Your edit was not saved."
            )
        super().__init__(text)


class SelectionChanged(MailboxCoreError):
    """A bulk action on "all N matching" found another number of mailboxes; nothing was done."""

    def __init__(self, expected: int, found: int) -> None:
        self.expected = expected
        self.found = found
        super().__init__(
            f"The filter now matches {found:,} mailboxes, not the {expected:,} you confirmed "
            "(someone changed the list meanwhile). Nothing was changed — check the list and "
            "confirm again."
        )


class SecretDecryptionError(MailboxCoreError):
    """A stored secret cannot be decrypted with any configured key."""

    def __init__(self, mailbox_id: int | None, mailbox_name: str | None, secret: str) -> None:
        self.mailbox_id = mailbox_id
        self.mailbox_name = mailbox_name
        self.secret = secret
        who = f"mailbox “{mailbox_name}” (ID {mailbox_id})" if mailbox_id else "a mailbox"
        super().__init__(
            f"The {secret} of {who} cannot be decrypted with the configured encryption "
            "keys. Add the key it was saved with to MAILBOX_ENCRYPTION_KEYS (or restore "
            "data/secret.key); nothing has been changed."
        )


class StoredSecretRefused(ValidationFailed):
    """An edit moves a mailbox to another destination while keeping a stored secret.

    The stored secret is not used: it must be typed again, or (on Save only) kept on
    purpose with ``confirmed``. ``secrets`` are the kept fields, ``changed`` the
    destination fields that differ, both as field names.
    """

    def __init__(self, secrets: list[str], changed: list[str], labels: dict[str, str]) -> None:
        self.secrets = tuple(secrets)
        self.changed = tuple(changed)
        moved = ", ".join(labels.get(f, f) for f in changed)
        super().__init__(
            [
                FieldError(
                    field,
                    labels.get(field, field),
                    f"type it again: the stored {labels.get(field, field)} is only sent to the "
                    f"server it was saved for, and {moved} changed",
                )
                for field in secrets
            ]
        )
