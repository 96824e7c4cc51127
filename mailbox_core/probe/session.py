"""The one interface every protocol's session implements; the runner calls it in order.

greet → (start_tls → after_tls) → sign in with a password or a token → open_inbox →
(vitals) → leave. A session may send a later command early (pipelining) and read its answer
in the later step, so every step still reports its own verdict.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import ClassVar

from mailbox_core.probe.diagnosis import Problem, ProtocolInfo, StepFailed
from mailbox_core.probe.vitals import Offer, Vitals
from mailbox_core.probe.wire import Wire


class Session(ABC):
    """One protocol's half of a connection test, over a connected ``Wire``."""

    info: ClassVar[ProtocolInfo]

    def __init__(self, wire: Wire, *, vitals: bool = False) -> None:
        self.wire = wire
        self.vitals_wanted = vitals  # read vital signs after opening INBOX
        self.capabilities: frozenset[str] = frozenset()
        self.greeted: frozenset[str] | None = None  # the capabilities the greeting brought
        self.tls_started = False  # STARTTLS: the capabilities now are those inside TLS

    def offers_starttls(self) -> bool:
        """Whether the capabilities offer STARTTLS (IMAP) or STLS (POP3)."""
        return self.info.starttls in self.capabilities

    def offer(self, *, implicit_tls: bool) -> Offer | None:
        """What the server offers for signing in; None before the greeting was read."""
        if self.greeted is None:
            return None
        plain = not implicit_tls
        before = self.greeted if plain else frozenset()
        after = self.capabilities if implicit_tls or self.tls_started else frozenset()
        return Offer(
            before_tls=before,
            after_tls=after,
            mechanisms=self.mechanisms(),
            login_disabled=self.login_disabled(),
            starttls=plain and self.info.starttls in self.greeted,
            password=self.password_offered(),
        )

    def refuse_unless_password_offered(self) -> None:
        """Fail the sign-in before the password is sent when the server takes none."""
        if not self.password_offered():
            offer = " ".join(sorted(self.mechanisms())) or "no SASL mechanism"
            raise StepFailed(
                Problem.PASSWORD_NOT_OFFERED, offer=offer, offered=self.offers_starttls()
            )

    @abstractmethod
    def mechanisms(self) -> frozenset[str]:
        """The SASL mechanisms offered now (IMAP AUTH=…, POP3 SASL …), by name."""

    @abstractmethod
    def login_disabled(self) -> bool:
        """Whether the protocol's own password command is refused (LOGINDISABLED, no USER)."""

    @abstractmethod
    def password_offered(self) -> bool:
        """Whether a password sign-in is possible now."""

    def vitals(self, since: datetime | None = None) -> Vitals:
        """What was read besides the steps, after open_inbox; never raises, unknowns None."""
        return Vitals()

    @abstractmethod
    def greet(self) -> str:
        """Read the greeting and learn the capabilities; the Greeting step's detail."""

    @abstractmethod
    def start_tls(self) -> None:
        """Ask the server to start TLS; the transport then does the handshake."""

    @abstractmethod
    def after_tls(self) -> None:
        """Learn the capabilities again: those sent before TLS may have been forged."""

    @abstractmethod
    def sign_in_with_password(self, account: str, password: str) -> None:
        """Sign in; raises StepFailed when the server refuses."""

    @abstractmethod
    def sign_in_with_token(self, account: str, token: str) -> None:
        """Sign in with an OAuth access token (XOAUTH2)."""

    @abstractmethod
    def open_inbox(self) -> int:
        """Open INBOX read-only and count its messages."""

    @abstractmethod
    def leave(self) -> None:
        """Say goodbye without waiting for the answer; the mailbox is left unchanged."""


def command(*parts: str) -> bytes:
    """One command line; refuses text that would end the line early and inject another."""
    text = " ".join(parts)
    if any(ch in text for ch in "\r\n\0"):
        raise StepFailed(Problem.UNSENDABLE)
    return text.encode() + b"\r\n"
