"""Vital-sign tests without a mail server: the real checker with a scripted probe.

``ScriptedChecker`` is the production ``MailboxChecker`` whose only network call, the probe,
is replaced: each check answers the next scripted ``ProbeResult`` and keeps the target it
was given (without its secret), so tests see what the checker asked for (``since``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mailbox_core.bootstrap import Services
from mailbox_core.checks import MailboxChecker
from mailbox_core.probe import (
    Backlog,
    Offer,
    ProbeResult,
    ProbeTarget,
    Quota,
    Step,
    StepStatus,
    Vitals,
)
from tests.support.monitoring import Clock, monitor_env, open_monitored

PASSWORD_OFFER = Offer(mechanisms=frozenset({"PLAIN", "LOGIN"}))
OAUTH_ONLY_OFFER = Offer(mechanisms=frozenset({"XOAUTH2"}), login_disabled=True, password=False)


@dataclass(frozen=True)
class Asked:
    """What one check asked the probe for (no secret)."""

    host: str
    vitals: bool
    since: datetime | None


class ScriptedChecker(MailboxChecker):
    """The checker, with ``answer`` (a function of the target) in place of the probe."""

    answer: Callable[[ProbeTarget], ProbeResult]
    asked: list[Asked]

    def _probe(
        self, target: ProbeTarget, admit: Callable[[float], str] | None = None
    ) -> ProbeResult:
        self.asked.append(Asked(target.host, target.vitals, target.since))
        return self.answer(target)


def scripted(tmp_path: Path, clock: Clock, **settings: str) -> tuple[Services, ScriptedChecker]:
    """Services on a fresh SQLite file and a scripted checker over them."""
    services = open_monitored(monitor_env(tmp_path, **settings), clock)
    checker = ScriptedChecker(services.mailboxes, monitor=services.monitor)
    checker.asked = []
    checker.answer = lambda target: passed()
    return services, checker


def passed(
    *,
    quota: Quota | None = None,
    backlog: Backlog | None = None,
    offer: Offer | None = PASSWORD_OFFER,
) -> ProbeResult:
    """A passing check that read these vital signs."""
    steps = tuple(Step(name, StepStatus.PASSED) for name in ("DNS", "TCP", "Greeting"))
    steps += (Step("Sign-in", StepStatus.PASSED), Step("Mailbox", StepStatus.PASSED))
    messages = backlog.messages if backlog else None
    return ProbeResult(
        steps=steps,
        message_count=messages,
        offer=offer,
        vitals=Vitals(quota=quota, backlog=backlog),
    )


def failed(problem: str, detail: str, hint: str = "", offer: Offer | None = None) -> ProbeResult:
    """A check whose sign-in failed with ``problem`` (a diagnosis code)."""
    steps = (
        Step("DNS", StepStatus.PASSED),
        Step("TCP", StepStatus.PASSED),
        Step("Greeting", StepStatus.PASSED),
        Step("Sign-in", StepStatus.FAILED, detail=detail, hint=hint, problem=problem),
    )
    return ProbeResult(steps=steps, offer=offer)


def used(percent: float, limit: int = 100_000) -> Quota:
    """A storage quota ``percent`` full (KiB)."""
    return Quota(storage_used=round(limit * percent / 100), storage_limit=limit)


def kinds(services: Services, mailbox_id: int) -> list[str]:
    """The kinds of the mailbox's alerts, oldest first."""
    return [a.kind for a in reversed(services.monitor.alerts_of(mailbox_id))]


def subjects(services: Services, mailbox_id: int) -> list[str]:
    return [a.subject for a in reversed(services.monitor.alerts_of(mailbox_id))]


def imap_values(name: str = "Helpdesk", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "mailbox_type": "IMAP",
        "host": "imap.example.com",
        "port": 993,
        "ssl_enabled": "Yes",
        "account": "helpdesk@example.com",
        "password": "imap-password-3K",
        **extra,
    }
