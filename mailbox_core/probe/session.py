"""The one interface every protocol's session implements; the runner calls it in order.

greet → (start_tls → after_tls) → sign in with a password or a token → open_inbox → leave.
A session may send a later command early (pipelining) and read its answer in the later
step, so every step still reports its own verdict.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from mailbox_core.probe.diagnosis import Problem, ProtocolInfo, StepFailed
from mailbox_core.probe.wire import Wire


class Session(ABC):
    """One protocol's half of a connection test, over a connected ``Wire``."""

    info: ClassVar[ProtocolInfo]

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.capabilities: frozenset[str] = frozenset()

    def offers_starttls(self) -> bool:
        """Whether the capabilities offer STARTTLS (IMAP) or STLS (POP3)."""
        return self.info.starttls in self.capabilities

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
