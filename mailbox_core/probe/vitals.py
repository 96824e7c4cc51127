"""Vital signs (issue 15): what a check reads on the signed-in session besides "it works".

The types here are the contract between the probe, which fills them (read-only: EXAMINE,
STATUS, GETQUOTAROOT, SEARCH, FETCH INTERNALDATE; POP3 STAT), and the monitor, which stores
them, compares them with thresholds and the last check, and alerts. ``None`` always means
"not known" (the server does not say, or the check did not get that far), never "OK".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Quota:
    """IMAP QUOTA (RFC 2087/9208) of INBOX's quota root: usage against the limits.

    Storage in KiB (the RFC's unit), messages in messages; a resource the server does not
    limit is ``None`` on both sides.
    """

    storage_used: int | None = None
    storage_limit: int | None = None
    messages_used: int | None = None
    messages_limit: int | None = None

    @property
    def ratio(self) -> float | None:
        """The fullest resource's use, 0.0–1.0+ (over 1 when past the limit); None: no limit."""
        ratios = [
            used / limit
            for used, limit in (
                (self.storage_used, self.storage_limit),
                (self.messages_used, self.messages_limit),
            )
            if used is not None and limit
        ]
        return max(ratios) if ratios else None


@dataclass(frozen=True)
class Backlog:
    """What waits in INBOX: total, unseen, and when the oldest unseen message arrived.

    ``arrived_since`` answers "how many arrived while the mailbox was failing" when the
    check was asked for it (``ProbeTarget.since``); POP3 knows only ``messages``.
    """

    messages: int | None = None
    unseen: int | None = None
    oldest_unseen_at: datetime | None = None  # INTERNALDATE, timezone-aware
    arrived_since: int | None = None


@dataclass(frozen=True)
class Offer:
    """What the server offers for signing in, as capabilities before and after TLS.

    ``mechanisms`` are the SASL mechanisms offered where the sign-in happens (after TLS
    when TLS was started): IMAP ``AUTH=…``, POP3 ``SASL …``. ``password`` says whether a
    password sign-in is possible there at all (IMAP: LOGIN not disabled or AUTH=PLAIN/LOGIN;
    POP3: USER or SASL PLAIN/LOGIN).
    """

    before_tls: frozenset[str] = frozenset()
    after_tls: frozenset[str] = frozenset()
    mechanisms: frozenset[str] = frozenset()
    login_disabled: bool = False
    starttls: bool = False
    password: bool = True

    def summary(self) -> str:
        """One stable line to store and compare: "AUTH=PLAIN XOAUTH2 · STARTTLS"."""
        parts = [" ".join(sorted(self.mechanisms)) or "no SASL"]
        if self.login_disabled:
            parts.append("LOGINDISABLED")
        if self.starttls:
            parts.append("STARTTLS")
        if not self.password:
            parts.append("no password sign-in")
        return " · ".join(parts)


@dataclass(frozen=True)
class Vitals:
    """Everything one check read besides its steps; ``quota`` None: unknown (POP3, or no
    QUOTA capability, or the server refused GETQUOTAROOT)."""

    quota: Quota | None = None
    backlog: Backlog | None = None
