"""OAuth grant health (issue 15): what the token endpoint showed of a mailbox's grant.

A check's token requests report to a ``GrantWatch``: a token fetched (the refresh token
used, rotated or not, the ID token's subject) or a ``TokenError`` with its class. The
recorder folds those facts into the mailbox's ``mailbox_grant`` row
(mailbox_core/monitoring/grants.py) and ``GrantPublic`` is what people read: last used,
rotated, whether the subject is the Account ("not known" without an ID token — never a
guess), the last classified failure with its hint, and the warning Google's six-month
rule calls for. No token is ever held here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailbox_core.oauth import GrantProblem, GrantUse, TokenError

#: Google revokes a refresh token left unused for six months: warn a month before.
UNUSED_WARN_AFTER = timedelta(days=150)
UNUSED_WARNING = (
    "The refresh token has not been used for {days} days; Google revokes refresh tokens "
    "unused for six months. Test the connection (or activate the mailbox) to keep it, or "
    "re-authorise the mailbox when it has been revoked."
)
MATCHES, DIFFERS, NOT_KNOWN = "matches", "differs", "not known"


@dataclass(frozen=True)
class GrantFacts:
    """What one check learnt of the grant: a use, or a failure (classified when known)."""

    use: GrantUse | None = None
    failed: bool = False
    problem: GrantProblem | None = None
    message: str = ""
    hint: str = ""


class GrantWatch:
    """Collects one check's token facts (one check runs in one thread)."""

    def __init__(self) -> None:
        self.use: GrantUse | None = None
        self.error: TokenError | None = None

    def used(self, use: GrantUse) -> None:
        self.use, self.error = use, None

    def failed(self, error: TokenError) -> None:
        self.error = error

    @property
    def problem(self) -> GrantProblem | None:
        return self.error.problem if self.error is not None else None

    def facts(self) -> GrantFacts | None:
        """The facts to record; None when no token was asked for (cached, or not that far)."""
        if self.error is not None:
            error = self.error
            return GrantFacts(
                failed=True, problem=error.problem, message=str(error)[:500], hint=error.hint[:500]
            )
        return GrantFacts(use=self.use) if self.use is not None else None


@dataclass(frozen=True)
class GrantPublic:
    """A mailbox's grant as the Edit page and ``health --json`` show it (no secrets)."""

    provider: str
    account: str
    last_used_at: datetime | None = None
    rotated_at: datetime | None = None
    subject: str | None = None
    failure: str | None = None
    failure_message: str | None = None
    failure_hint: str | None = None
    failure_at: datetime | None = None
    now: datetime | None = None

    @property
    def subject_match(self) -> str:
        """ "matches", "differs" or "not known": the subject against the Account, any case."""
        if not self.subject:
            return NOT_KNOWN
        return MATCHES if self.subject.casefold() == self.account.strip().casefold() else DIFFERS

    @property
    def unused_days(self) -> int | None:
        if self.last_used_at is None or self.now is None:
            return None
        return max(0, (self.now - self.last_used_at).days)

    @property
    def warning(self) -> str | None:
        """The six-month warning for Gmail, once the token went unused UNUSED_WARN_AFTER."""
        days = self.unused_days
        if self.provider != "Gmail" or days is None or days < UNUSED_WARN_AFTER.days:
            return None
        return UNUSED_WARNING.format(days=days)

    def as_json(self) -> dict[str, object]:
        """The fields of ``health --json``."""

        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment is not None else None

        return {
            "last_used_at": iso(self.last_used_at),
            "rotated_at": iso(self.rotated_at),
            "subject": self.subject,
            "subject_match": self.subject_match,
            "failure": self.failure,
            "failure_message": self.failure_message,
            "failure_hint": self.failure_hint,
            "failure_at": iso(self.failure_at),
            "unused_days": self.unused_days,
            "warning": self.warning,
        }
