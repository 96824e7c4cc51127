"""What a connection test reports: its steps, each with a status, a detail and a hint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from mailbox_core.probe.vitals import Offer, Vitals
from mailbox_core.schemas import MailboxType

TokenSource = Callable[[], str]

#: Every step, in the order a person reads them (a probe without SSL runs TLS after Greeting).
STEPS = ("DNS", "TCP", "TLS", "Greeting", "Sign-in", "Mailbox")
DEFAULT_TIMEOUT = 10.0


class StepStatus(StrEnum):
    PASSED = "passed"
    WARNING = "warning"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Step:
    """One step of a connection test."""

    name: str
    status: StepStatus
    elapsed_ms: float = 0.0
    detail: str = ""
    hint: str = ""
    problem: str = ""  # what went wrong, as a stable code (diagnosis.Problem); "" when passed


@dataclass(frozen=True)
class Certificate:
    """The server's TLS certificate as a check saw it (verified or not): for expiry warnings."""

    not_after: datetime
    issuer: str
    subject: str


@dataclass(frozen=True)
class ProbeResult:
    """What a connection test found; ``ok`` when every step passed (warnings allowed).

    ``skipped`` says why a test was not run at all (the scheduler's never-harm rules);
    a skipped test is not ``ok`` and is never recorded as a check. ``offer`` is what the
    server offered for signing in (known once greeted, even when the sign-in fails);
    ``vitals`` what was read after it (issue 15).
    """

    steps: tuple[Step, ...]
    message_count: int | None = None
    certificate: Certificate | None = None
    skipped: str = ""
    offer: Offer | None = None
    vitals: Vitals | None = None

    @property
    def ok(self) -> bool:
        return not self.skipped and all(s.status is not StepStatus.FAILED for s in self.steps)

    @property
    def failed_step(self) -> Step | None:
        return next((s for s in self.steps if s.status is StepStatus.FAILED), None)

    @property
    def elapsed_ms(self) -> float:
        return sum(s.elapsed_ms for s in self.steps)

    @property
    def warnings(self) -> list[Step]:
        return [s for s in self.steps if s.status is StepStatus.WARNING]

    @property
    def summary(self) -> str:
        if self.skipped:
            return self.skipped
        failed = self.failed_step
        if failed:
            return failed.detail
        count = "" if self.message_count is None else f"; {self.message_count} messages"
        return f"Signed in and opened INBOX{count}"


@dataclass(frozen=True, repr=False)
class ProbeTarget:
    """Where and how to sign in. Holds a plaintext secret: never log or store it."""

    mailbox_type: MailboxType
    host: str
    port: int
    account: str
    password: str | None = None
    ssl_enabled: bool = False
    starttls: bool = False
    allow_self_signed: bool = False
    allow_plaintext: bool = False
    token_source: TokenSource | None = field(default=None, compare=False)
    oauth_label: str = ""
    #: Read vital signs after opening INBOX (False: the bare connection test).
    vitals: bool = True
    #: Also count the messages that arrived since then (after an outage), when set.
    since: datetime | None = None

    def __repr__(self) -> str:
        return f"ProbeTarget({self.mailbox_type.value} {self.host}:{self.port} {self.account})"

    @property
    def secret(self) -> str:
        """What signing in sends, as a message names it."""
        return "access token" if self.token_source is not None else "password"


def with_skipped(steps: list[Step]) -> tuple[Step, ...]:
    """The steps that ran, then every step not reached, marked skipped."""
    done = {s.name for s in steps}
    skipped = [Step(n, StepStatus.SKIPPED, detail="not reached") for n in STEPS if n not in done]
    return (*steps, *skipped)
