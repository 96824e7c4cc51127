"""The monitor's rules as pure functions: what a failure means, when a mailbox is checked
next, when its alert opens and closes, which expiry warning is due, maintenance windows.

Every rule takes the moment it decides for, so tests need no clock and no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailbox_core.errors import FieldError, ValidationFailed
from mailbox_core.oauth import GrantProblem
from mailbox_core.probe.diagnosis import Problem

#: A refused sign-in pauses scheduled sign-ins: 1 h, doubling, at most 24 h.
PAUSE_FIRST = timedelta(hours=1)
PAUSE_MAX = timedelta(hours=24)
#: Failures that are not the account's fault: interval × 2^k, at most 1 h (or the interval).
BACKOFF_MAX = timedelta(hours=1)
#: Jitter added to every next-check time: at most this share of the wait.
JITTER = 0.1
SECRET_THRESHOLDS = (30, 7)
CERT_THRESHOLDS = (30, 14, 3)


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive UTC, PostgreSQL aware datetimes: always aware here."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Fault(StrEnum):
    """Whose fault a failed check is, which decides what the scheduler does next."""

    NONE = "none"  # passed
    ACCOUNT = "account"  # a refused sign-in: pause, count against the server's budget
    OTHER = "other"  # DNS, port, TLS, timeout, settings: back off, resume on its own


#: What the mail server's refusal looks like; and the identity provider's, in the detail.
#: A server that no longer offers password sign-in (issue 15) pauses too: the account's
#: settings must change before a check can pass.
PASSWORD_NOT_OFFERED = Problem.PASSWORD_NOT_OFFERED.value
_REFUSED = {Problem.PASSWORD_REFUSED.value, Problem.TOKEN_REFUSED.value, PASSWORD_NOT_OFFERED}
_GRANT_REFUSED = (
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "AADSTS50126",  # wrong account password (password grant)
    "AADSTS7000222",  # client secret expired
    "AADSTS7000215",  # client secret wrong
)


#: The token endpoint's classified refusals (oauth.GrantProblem): a person must act. An
#: unreachable endpoint (GrantProblem.UNREACHABLE) is nobody's fault and is not here.
_GRANT_PROBLEMS = {
    GrantProblem.REVOKED.value,
    GrantProblem.CONSENT.value,
    GrantProblem.CLIENT.value,
}


def fault_of(ok: bool, problem: str | None, detail: str) -> Fault:
    """The fault of a check: passed, the account's (refused sign-in), or not the account's."""
    if ok:
        return Fault.NONE
    if problem in _REFUSED or problem in _GRANT_PROBLEMS:
        return Fault.ACCOUNT
    if problem == Problem.NO_TOKEN.value and any(code in detail for code in _GRANT_REFUSED):
        return Fault.ACCOUNT
    return Fault.OTHER


def needs_reauthorising(problem: str | None, detail: str) -> bool:
    """The provider refused the refresh token (invalid_grant): a person must re-authorise."""
    if problem == GrantProblem.REVOKED.value:
        return True
    return problem == Problem.NO_TOKEN.value and "invalid_grant" in detail


@dataclass(frozen=True)
class Schedule:
    """Where a mailbox stands after a check: its next check and its pause or backoff."""

    next_check_at: datetime | None
    backoff_level: int = 0
    pause_level: int = 0
    paused_until: datetime | None = None
    pause_reason: str | None = None


def after_check(
    current: Schedule,
    *,
    at: datetime,
    interval_minutes: int,
    fault: Fault,
    reason: str,
    jitter: float,
) -> Schedule:
    """The schedule after a check that started ``at`` (``jitter`` in [0, 1))."""
    interval = timedelta(minutes=interval_minutes)
    spread = 1 + JITTER * jitter
    if fault is Fault.NONE:
        return Schedule(next_check_at=at + interval * spread)
    if fault is Fault.ACCOUNT:
        level = current.pause_level + 1
        wait = min(PAUSE_FIRST * 2 ** (level - 1), PAUSE_MAX)
        until = at + wait
        return Schedule(
            next_check_at=until, pause_level=level, paused_until=until, pause_reason=reason[:500]
        )
    level = current.backoff_level + 1
    # The first failure keeps the interval (a blip); then it doubles, up to an hour.
    wait = min(interval * 2 ** (level - 1), max(BACKOFF_MAX, interval))
    return replace(current, next_check_at=at + wait * spread, backoff_level=level)


# ---------------------------------------------------------------- alerts


class AlertKind(StrEnum):
    DOWN = "down"
    RECOVERED = "recovered"
    REAUTHORISE = "reauthorise"
    SECRET_EXPIRY = "secret expiry"
    CERT_EXPIRY = "certificate expiry"
    CERT_ISSUER = "certificate issuer"  # recorded, not sent: intermediates rotate often
    QUOTA = "quota"  # past a quota warning threshold (the highest one crossed)
    QUOTA_NORMAL = "quota normal"  # back under every quota threshold
    BACKLOG = "backlog"  # the oldest unseen message is older than the threshold
    BACKLOG_NORMAL = "backlog normal"
    SIGNIN_RULES = "sign-in rules"  # the server's sign-in offer changed
    GRANT_UNUSED = "grant unused"  # a Gmail refresh token unused for 5 months (issue 15)


@dataclass(frozen=True)
class AlertState:
    """A mailbox's alert: open after N failures in a row, ``sent`` once someone was told."""

    open: bool = False
    sent: bool = False
    since: datetime | None = None


def alert_step(
    state: AlertState,
    *,
    ok: bool,
    failures: int,
    failing_since: datetime | None,
    fault: Fault,
    alert_after: int,
    quiet: bool,
) -> tuple[AlertState, AlertKind | None]:
    """The alert after a check, and the message it sends (one "down", one "recovered").

    A refused sign-in opens the alert at once: it is no blip, and its pause would hold the
    second failure back for an hour. While ``quiet`` (snoozed, or in the maintenance
    window) nothing is sent; an alert still open afterwards is sent by the next failure.
    """
    if ok:
        if state.open:
            return AlertState(), AlertKind.RECOVERED if state.sent else None
        return state, None
    if not state.open and (failures >= alert_after or fault is Fault.ACCOUNT):
        state = AlertState(open=True, sent=False, since=failing_since)
    if state.open and not state.sent and not quiet:
        return replace(state, sent=True), AlertKind.DOWN
    return state, None


def expiry_warning(days_left: float, thresholds: tuple[int, ...], warned: int | None) -> int | None:
    """The threshold (days) to warn about now, or None: once per threshold, the nearest one.

    A mailbox first seen 5 days before expiry gets one warning (7 days), not two.
    """
    crossed = [t for t in thresholds if days_left <= t]
    if not crossed:
        return None
    due = min(crossed)
    if warned is not None and warned <= due:
        return None
    return due


def days_until(moment: datetime | date, now: datetime) -> float:
    """Days from ``now`` to ``moment`` (a date counts from the start of its day, UTC)."""
    if isinstance(moment, datetime):
        return (aware(moment) - now).total_seconds() / 86400
    return float((moment - now.astimezone(UTC).date()).days)


# ---------------------------------------------------------------- vital signs (issue 15)

#: Quota warnings by default, in percent of the fullest resource (settable per mailbox).
QUOTA_THRESHOLDS = (80, 90, 95)


def quota_level(ratio: float | None, thresholds: tuple[int, ...]) -> int | None:
    """The highest threshold (percent) ``ratio`` reaches, or None (under all, or unknown)."""
    if ratio is None:
        return None
    crossed = [t for t in thresholds if ratio * 100 >= t]
    return max(crossed) if crossed else None


def quota_step(
    alerted: int | None, level: int | None, *, quiet: bool
) -> tuple[int | None, AlertKind | None]:
    """The quota alert after a check: one per threshold crossed upward, for the highest one
    crossed (85 % → 96 % alerts 95 % once, not 90 % and 95 %), and one "back to normal"
    when it falls under every threshold after an alert was sent.

    Falling to a lower threshold alerts nothing but remembers it, so rising past the higher
    one again alerts again. While ``quiet`` nothing new is sent; a threshold still crossed
    afterwards is alerted by the next check. Returns (threshold alerted now, alert).
    """
    if level is None:
        return None, AlertKind.QUOTA_NORMAL if alerted is not None else None
    if alerted is not None and level <= alerted:
        return level, None
    if quiet:
        return alerted, None
    return level, AlertKind.QUOTA


def backlog_age(
    oldest_unseen_at: datetime | None, unseen: int | None, at: datetime
) -> timedelta | None:
    """How long the oldest unseen message has waited at ``at``; None: nothing waits, or unknown."""
    if oldest_unseen_at is None or not unseen:
        return None
    return max(timedelta(0), at - aware(oldest_unseen_at))


def short_age(age: timedelta) -> str:
    """An age for a badge or a note: "40 min", "3 h", "2 d"."""
    minutes = max(0, int(age.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} d"


def backlog_step(alerted: bool, over: bool, *, quiet: bool) -> tuple[bool, AlertKind | None]:
    """The backlog alert after a check: one when the threshold is passed, one "back to
    normal" when it clears (after an alert was sent); nothing new while ``quiet``."""
    if not over:
        return False, AlertKind.BACKLOG_NORMAL if alerted else None
    if alerted or quiet:
        return alerted, None
    return True, AlertKind.BACKLOG


def signs_in_with_password(oauth_enabled: bool, oauth_provider: str | None) -> bool:
    """Whether the mail server sees a password sign-in (not XOAUTH2 with a token)."""
    return not (oauth_enabled and oauth_provider in OAUTH_PROVIDERS)


#: Providers whose mailboxes sign in with an access token (checks.MailboxChecker._target).
OAUTH_PROVIDERS = ("Gmail", "Office365")


def parse_thresholds(text: str | None) -> tuple[int, ...]:
    """Stored quota thresholds ("80,90,95") as numbers; "" is none (no quota warnings)."""
    return tuple(sorted({int(p) for p in (text or "").split(",") if p.strip().isdigit()}))


# ---------------------------------------------------------------- maintenance windows

_WINDOW = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*[-–]\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")


@dataclass(frozen=True)
class Window:
    """A daily maintenance window, e.g. 02:00–03:00 in Europe/Berlin (may cross midnight)."""

    start: time
    end: time
    zone: str = "UTC"

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M} {self.zone}"

    def contains(self, moment: datetime) -> bool:
        local = aware(moment).astimezone(ZoneInfo(self.zone)).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def parse_window(text: str, zone: str = "UTC") -> Window:
    """Read "HH:MM–HH:MM" and an IANA time zone; raises ValidationFailed naming the field."""
    found = _WINDOW.match(text or "")
    if not found:
        raise _invalid("window", "Maintenance window", "enter a time range such as 02:00–03:00")
    hours1, minutes1, hours2, minutes2 = (int(g) for g in found.groups())
    start, end = time(hours1, minutes1), time(hours2, minutes2)
    if start == end:
        raise _invalid("window", "Maintenance window", "must end at another time than it starts")
    try:
        ZoneInfo(zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _invalid("zone", "Time zone", "enter a time zone such as Europe/Berlin") from exc
    return Window(start, end, zone or "UTC")


def in_window(start: str | None, end: str | None, zone: str | None, moment: datetime) -> bool:
    """Whether ``moment`` falls in the window a monitor row stores (columns ``window_*``)."""
    if not (start and end):
        return False
    return parse_window(f"{start}-{end}", zone or "UTC").contains(moment)


def _invalid(field: str, label: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field, label, message)])
