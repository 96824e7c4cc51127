"""The runner: a connection test's steps in order, each recorded as it ends."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests
from authlib.integrations.base_client import OAuthError

from mailbox_core.egress import UNGUARDED, EgressPolicy, EgressRefused, Resolver
from mailbox_core.oauth import TokenError
from mailbox_core.probe.deadline import Deadline, watched
from mailbox_core.probe.diagnosis import (
    Diagnosis,
    Problem,
    Situation,
    StepFailed,
    StepWarning,
    diagnose,
)
from mailbox_core.probe.imap import ImapSession
from mailbox_core.probe.pop3 import Pop3Session
from mailbox_core.probe.results import (
    DEFAULT_TIMEOUT,
    ProbeResult,
    ProbeTarget,
    Step,
    StepStatus,
    with_skipped,
)
from mailbox_core.probe.session import Session
from mailbox_core.probe.transport import Connector, Transport, default_connector, default_resolver
from mailbox_core.probe.vitals import Offer, Vitals
from mailbox_core.schemas import MailboxType

_SESSIONS: dict[MailboxType, type[Session]] = {
    MailboxType.IMAP: ImapSession,
    MailboxType.POP3: Pop3Session,
}


def session_for(mailbox_type: MailboxType) -> type[Session]:
    """The session class that speaks ``mailbox_type``."""
    return _SESSIONS[mailbox_type]


def run_probe(
    target: ProbeTarget,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    ca_file: str | None = None,
    connector: Connector = default_connector,
    resolver: Resolver = default_resolver,
    egress: EgressPolicy = UNGUARDED,
    admit: Callable[[float], str] | None = None,
) -> ProbeResult:
    """Test one mailbox connection; never raises for a failure of the outside world.

    ``admit`` is asked right before signing in, with the seconds left: a non-empty answer
    ends the test there, unsigned-in and marked ``skipped`` with that reason (the
    scheduler's failed-sign-in budget; failures before sign-in cost no account anything).
    """
    deadline = Deadline(timeout)
    transport = Transport(
        target, deadline, ca_file=ca_file, connector=connector, resolver=resolver, egress=egress
    )
    probe = _Probe(target, transport, session_for(target.mailbox_type))
    steps: list[Step] = []
    skipped = ""
    with transport, watched(deadline, transport.abort):
        for name, action in probe.plan():
            # left(), not remaining(): a deadline spent before the sign-in fails that step
            # (its TimeoutError is the step's), it must not escape from the runner.
            if name == "Sign-in" and admit is not None and (skipped := admit(deadline.left())):
                break
            steps.append(probe.step(name, action))
            if steps[-1].status is StepStatus.FAILED:
                break
    return ProbeResult(
        steps=with_skipped(steps),
        message_count=probe.message_count,
        certificate=transport.certificate,
        skipped=skipped,
        offer=probe.offer(),
        vitals=probe.vitals,
    )


class _Probe:
    """The steps of one test, over one transport and one protocol session."""

    def __init__(self, target: ProbeTarget, transport: Transport, kind: type[Session]) -> None:
        self.target = target
        self.transport = transport
        self.kind = kind
        self.session: Session | None = None
        self.message_count: int | None = None
        self.vitals: Vitals | None = None

    def plan(self) -> list[tuple[str, Callable[[], str]]]:
        if self.target.ssl_enabled:
            secure = [("TLS", self.transport.start_tls), ("Greeting", self._greet)]
        else:
            secure = [("Greeting", self._greet), ("TLS", self._starttls)]
        connect = [("DNS", self.transport.resolve), ("TCP", self.transport.connect)]
        return [*connect, *secure, ("Sign-in", self._sign_in), ("Mailbox", self._open_inbox)]

    def step(self, name: str, action: Callable[[], str]) -> Step:
        """Run one step; what the outside world did wrong becomes its detail and hint."""
        started = time.monotonic()
        try:
            status, why = StepStatus.PASSED, Diagnosis("", action(), "")
        except StepWarning as warning:
            status, why = StepStatus.WARNING, self._why(name, warning, started)
        except (StepFailed, OSError, EgressRefused) as failure:
            status, why = StepStatus.FAILED, self._why(name, failure, started)
        elapsed = round((time.monotonic() - started) * 1000, 1)
        return Step(name, status, elapsed, why.detail, why.hint, why.problem)

    def _why(self, step: str, exc: BaseException, started: float) -> Diagnosis:
        situation = Situation(
            self.target,
            self.kind.info,
            step,
            self.transport.deadline.timeout,
            waited=time.monotonic() - started,
            expired=self.transport.deadline.expired,
            peer_names=self.transport.peer_names,
        )
        return diagnose(exc, situation)

    def offer(self) -> Offer | None:
        """What the server offered for signing in; None when no greeting was read."""
        if self.session is None:
            return None
        return self.session.offer(implicit_tls=self.target.ssl_enabled)

    def _greet(self) -> str:
        assert self.transport.wire is not None
        session = self.kind(self.transport.wire, vitals=self.target.vitals)
        detail = session.greet()
        self.session = session  # only a session that was greeted has an offer
        return detail

    def _starttls(self) -> str:
        session = self._session()
        offered = session.offers_starttls()
        if not self.target.starttls:  # no TLS asked for: no credential unless allowed
            if self.target.allow_plaintext:
                raise StepWarning(Problem.PLAINTEXT_ALLOWED, offered=offered)
            raise StepFailed(Problem.PLAINTEXT_REFUSED, offered=offered)
        if not offered:
            raise StepFailed(Problem.NO_STARTTLS)
        session.start_tls()
        detail = self.transport.start_tls()
        session.after_tls()
        return detail

    def _sign_in(self) -> str:
        session, account = self._session(), self.target.account
        if self.target.token_source is None:
            session.sign_in_with_password(account, self.target.password or "")
            return f"Signed in as {account} with a password"
        session.sign_in_with_token(account, self._token())
        return f"Signed in as {account} with {self.target.oauth_label or 'OAuth'}"

    def _token(self) -> str:
        assert self.target.token_source is not None
        try:
            return self.target.token_source()
        except (TokenError, requests.RequestException, OAuthError) as exc:
            hint = getattr(exc, "hint", "")
            raise StepFailed(Problem.NO_TOKEN, error=str(exc), error_hint=hint) from exc

    def _open_inbox(self) -> str:
        session = self._session()
        self.message_count = session.open_inbox()
        if self.target.vitals:
            self.vitals = session.vitals(self.target.since)
        session.leave()
        return f"INBOX has {self.message_count} messages"

    def _session(self) -> Session:
        assert self.session is not None, "the greeting comes first"
        return self.session
