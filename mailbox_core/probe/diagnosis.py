"""Diagnosis: a failed step as the sentence and the hint a person reads.

Steps raise either the probe's own ``StepFailed`` / ``StepWarning`` (a ``Problem`` and the
facts its text needs) or whatever the socket, ssl, DNS and egress layers raise.
``classify`` turns both into a ``Problem``; ``TEXT`` is the one table of what each problem
says and what to do about it. Both are pure: tests feed them plain exception objects.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mailbox_core.egress import EgressRefused
from mailbox_core.probe.results import ProbeTarget


class Problem(StrEnum):
    EGRESS_REFUSED = "egress refused"
    DNS_TIMEOUT = "dns timeout"
    UNKNOWN_HOST = "unknown host"
    NO_ADDRESS = "no address"
    TCP_TIMEOUT = "tcp timeout"
    CONNECTION_REFUSED = "connection refused"
    NETWORK_ERROR = "network error"
    NOT_TLS = "not tls"
    TLS_FAILED = "tls failed"
    CERT_NAME = "certificate name"
    CERT_EXPIRED = "certificate expired"
    CERT_UNTRUSTED = "certificate untrusted"
    CERT_REFUSED = "certificate refused"
    NO_GREETING = "no greeting"
    NO_GREETING_SSL_PORT = "no greeting on an ssl port"
    TLS_GREETING = "tls greeting"
    CLOSED_BEFORE_GREETING = "closed before greeting"
    NOT_THIS_PROTOCOL = "not this protocol"
    GREETING_REFUSED = "greeting refused"
    CLOSED = "closed"
    NO_ANSWER = "no answer"
    TOO_MUCH = "too much"
    TOO_MUCH_GREETING = "too much greeting"
    NO_STARTTLS = "no starttls"
    STARTTLS_REFUSED = "starttls refused"
    PLAINTEXT_REFUSED = "plaintext refused"
    PLAINTEXT_ALLOWED = "plaintext allowed"
    UNSENDABLE = "unsendable"
    PASSWORD_REFUSED = "password refused"
    PASSWORD_NOT_OFFERED = "password not offered"
    PASSWORD_NEEDS_TLS = "password needs tls"
    MAILBOX_LOCKED = "mailbox locked"
    NO_TOKEN = "no token"
    OAUTH_NOT_FOR_POP3 = "oauth not for pop3"
    TOKEN_UNVERIFIED = "token unverified"
    TOKEN_REFUSED = "token refused"
    NO_INBOX = "no inbox"
    UNEXPECTED = "unexpected"


_SLOW = "The server is too slow or stalled; try again or raise the timeout."
_TO_SSL = "Port {port} expects SSL: set SSL Enabled to Yes."

#: Problem → (what happened, what to do). Placeholders: see ``Situation.facts`` and the
#: facts each ``StepFailed`` carries.
TEXT: dict[Problem, tuple[str, str]] = {
    Problem.EGRESS_REFUSED: ("{error}", "{error_hint}"),
    Problem.DNS_TIMEOUT: (
        "Looking up {host} took longer than {timeout}",
        "The DNS server does not answer; check the machine's network and resolver.",
    ),
    Problem.UNKNOWN_HOST: (
        "The host name {host} could not be found",
        "Check Host for typos; the name does not exist in DNS.",
    ),
    Problem.NO_ADDRESS: (
        "{host} has no address",
        "Check Host: the name exists in DNS but has no address to connect to.",
    ),
    Problem.TCP_TIMEOUT: (
        "No answer from {where} within {timeout}",
        "A firewall may drop the connection, or Host/Port is wrong.",
    ),
    Problem.CONNECTION_REFUSED: (
        "Connection refused by {where}",
        "Nothing accepts connections on that port: check Port and Host.",
    ),
    Problem.NETWORK_ERROR: (
        "Could not connect to {where}: {strerror}",
        "Check Host and the network path to the server.",
    ),
    Problem.NOT_TLS: (
        "{where} does not speak SSL",
        "Port {port} expects a plain connection: set SSL Enabled to No (port {plain_port}), "
        "or use port {ssl_port}.",
    ),
    Problem.TLS_FAILED: ("TLS failed with {where}: {reason}", ""),
    Problem.CERT_NAME: (
        "Certificate is for {names}, not {host}",
        "Use the host name the certificate names in Host.",
    ),
    Problem.CERT_EXPIRED: (
        "The certificate of {host} has expired",
        "The server's administrator must renew it.",
    ),
    Problem.CERT_UNTRUSTED: (
        "The certificate of {host} is not signed by a trusted authority "
        "(self-signed or private CA)",
        "Add the CA to MAILBOX_CA_FILE, or turn on 'Allow self-signed certificate' if you "
        "trust this server.",
    ),
    Problem.CERT_REFUSED: ("The certificate of {host} was refused: {reason}", ""),
    Problem.NO_GREETING: (
        "{where} sent no greeting {within}",
        "The server accepted the connection but said nothing. If it expects SSL, set SSL "
        "Enabled to Yes; otherwise check Port.",
    ),
    Problem.NO_GREETING_SSL_PORT: ("{where} sent no greeting {within}", _TO_SSL),
    Problem.TLS_GREETING: ("{where} answered with TLS, not a plain {protocol} greeting", _TO_SSL),
    Problem.CLOSED_BEFORE_GREETING: (
        "{where} closed the connection without a greeting",
        "Check Port and SSL Enabled.",
    ),
    Problem.NOT_THIS_PROTOCOL: (
        "{where} did not answer like a {protocol} server: {text}",
        "Check Mailbox Type and Port: {protocol} usually uses {ports}.",
    ),
    Problem.GREETING_REFUSED: (
        "{where} turned the connection away: {text}",
        "The server is busy or does not accept this client now; try again later.",
    ),
    Problem.CLOSED: (
        "{where} closed the connection during {step}",
        "The server or a firewall dropped the connection; check Port and SSL Enabled.",
    ),
    Problem.NO_ANSWER: ("No answer to {waiting} {within}", _SLOW),
    Problem.TOO_MUCH: (
        "{where} sent too much in answer to {waiting}: more than {limit}",
        "A mail server answers this in a few kilobytes: check Host and Port, or ask the "
        "server's administrator.",
    ),
    Problem.TOO_MUCH_GREETING: (
        "{where} sent too much in its greeting: more than {limit}",
        "A mail server greets in one short line: check Mailbox Type, Host and Port.",
    ),
    Problem.NO_STARTTLS: (
        "The server does not offer STARTTLS",
        "Set STARTTLS to No, or use SSL Enabled = Yes with port {ssl_port}.",
    ),
    Problem.STARTTLS_REFUSED: (
        "The server refused to start TLS: {text}",
        "Use SSL Enabled = Yes with port {ssl_port}, or ask the server's administrator.",
    ),
    Problem.PLAINTEXT_REFUSED: (
        "Not encrypted: signing in would send the {secret} in plain text, so it was not sent",
        "{secure} Only on a network you trust: turn on 'Allow sign-in without encryption' "
        "under Advanced.",
    ),
    Problem.PLAINTEXT_ALLOWED: (
        "Not encrypted: the {secret} is sent in plain text (allowed for this mailbox)",
        "{secure}",
    ),
    Problem.UNSENDABLE: (
        "The {secret} or account holds a line break or NUL, which {protocol} cannot send",
        "Type Account and the {secret} again, without control characters.",
    ),
    Problem.PASSWORD_REFUSED: (
        "The server refused the password for {account}",
        "Check Account and Password.{app_password}",
    ),
    Problem.PASSWORD_NOT_OFFERED: (
        "The server offers no password sign-in for {account} (it offers: {offer})",
        "This server no longer accepts password sign-in: switch the mailbox to OAuth or an "
        "app password.{sent}",
    ),
    Problem.PASSWORD_NEEDS_TLS: (
        "The server accepts a password only over an encrypted connection, so it was not sent",
        "{secure}",
    ),
    Problem.MAILBOX_LOCKED: (
        "The server refused the password for {account}",
        "Another client holds the POP3 lock on this mailbox; try again later.",
    ),
    Problem.NO_TOKEN: ("No access token: {error}", "{error_hint}"),
    Problem.OAUTH_NOT_FOR_POP3: ("OAuth sign-in is only available for IMAP mailboxes", ""),
    Problem.TOKEN_UNVERIFIED: (
        "The mail server could not verify the token right now",
        "The server's identity provider is unavailable; try again later.",
    ),
    Problem.TOKEN_REFUSED: (
        "The server refused the OAuth token for {account}",
        "The token is valid for another account or lacks IMAP access: check Account and "
        "the app's IMAP permission.",
    ),
    Problem.NO_INBOX: (
        "INBOX could not be opened",
        "The account has no INBOX or is not allowed to read it.",
    ),
    Problem.UNEXPECTED: ("{step} failed: {error}", ""),
}

Found = tuple[Problem, dict[str, Any]]  # a problem and the facts its text needs

_SECURE = {
    True: "The server offers STARTTLS: set STARTTLS to Yes.",
    False: "Use SSL Enabled = Yes with port {ssl_port} if the server supports it.",
}
_APP_PASSWORD_DOMAINS = {"gmail.com", "googlemail.com", "yahoo.com", "icloud.com", "me.com"}
_APP_PASSWORD = " This provider needs an app password (or OAuth), not the normal password."


class Waiting(StrEnum):
    """What a step was waiting for, as a message names it."""

    CONNECTION = "the connection"
    TLS = "the TLS handshake"
    GREETING = "the greeting"
    CAPABILITIES = "the capabilities request"
    STARTTLS = "the request to start TLS"
    SIGN_IN = "the sign-in"
    MAILBOX = "the request to open INBOX"
    VITALS = "the request for vital signs"


#: What a step waits for when the failure itself does not say.
_STEP_WAITS = {
    "DNS": Waiting.CONNECTION,
    "TCP": Waiting.CONNECTION,
    "TLS": Waiting.TLS,
    "Greeting": Waiting.GREETING,
    "Sign-in": Waiting.SIGN_IN,
    "Mailbox": Waiting.MAILBOX,
}


class Outcome(Exception):
    """A step's end with a known problem; ``facts`` fill the problem's text."""

    def __init__(self, problem: Problem, **facts: Any) -> None:
        super().__init__(problem.value)
        self.problem = problem
        self.facts = facts


class StepFailed(Outcome):
    """Ends the probe at the current step."""


class StepWarning(Outcome):
    """The step worked, with a caveat the person should see (e.g. no encryption)."""


@dataclass(frozen=True)
class ProtocolInfo:
    """What messages say about a protocol: its name and usual ports."""

    name: str
    plain_port: int
    ssl_port: int
    starttls: str  # the capability that offers it


@dataclass(frozen=True)
class Situation:
    """Where a step failed: the target, its protocol and the step's timing."""

    target: ProbeTarget
    protocol: ProtocolInfo
    step: str
    timeout: float
    waited: float = 0.0
    expired: bool = False
    #: Names on the server's certificate, read without trusting it (only for a hint).
    peer_names: Callable[[], list[str]] = field(default=lambda: [], compare=False)

    def facts(self) -> dict[str, Any]:
        t, p = self.target, self.protocol
        return {
            "host": t.host,
            "port": t.port,
            "where": f"{t.host} port {t.port}",
            "account": t.account,
            "secret": t.secret,
            "protocol": p.name,
            "plain_port": p.plain_port,
            "ssl_port": p.ssl_port,
            "ports": f"{p.plain_port}/{p.ssl_port}",
            "step": self.step,
            "timeout": seconds(self.timeout),
            "waiting": _STEP_WAITS.get(self.step, self.step),
            "waited": self.waited,
        }


@dataclass(frozen=True)
class Diagnosis:
    """A step's outcome as a person reads it."""

    problem: str
    detail: str
    hint: str


def diagnose(exc: BaseException, situation: Situation) -> Diagnosis:
    """The problem ``exc`` raised in ``situation`` means, with its detail and hint."""
    problem, facts = classify(exc, situation)
    values = {**situation.facts(), **facts}
    values["within"] = _within(values["waited"], situation.timeout)
    return Diagnosis(problem.value, *render(problem, values))


def _within(waited: float, timeout: float) -> str:
    # A wait that began late in the test did not last the whole timeout: say both, when
    # the difference is worth reading (a fifth of the timeout, and a quarter second).
    if timeout - waited <= max(0.2 * timeout, 0.25):
        return f"within {seconds(timeout)}"
    return f"for {seconds(waited)}, until the test's {seconds(timeout)} ran out"


def render(problem: Problem, facts: Mapping[str, Any]) -> tuple[str, str]:
    """``problem``'s detail and hint, filled in with ``facts``."""
    detail, hint = TEXT[problem]
    values = {**facts, "secure": _SECURE[bool(facts.get("offered"))].format_map(facts)}
    return detail.format_map(values), hint.format_map(values)


def classify(exc: BaseException, s: Situation) -> Found:
    """The problem ``exc`` means in situation ``s``, and the facts its text needs."""
    if isinstance(exc, Outcome):
        return _refine(exc.problem, exc.facts, s)
    if isinstance(exc, EgressRefused):
        return Problem.EGRESS_REFUSED, {"error": str(exc), "error_hint": exc.hint}
    if s.expired or isinstance(exc, TimeoutError):
        return _timeout(s)
    if isinstance(exc, socket.gaierror):
        return Problem.UNKNOWN_HOST, {}
    if isinstance(exc, ConnectionRefusedError):
        return Problem.CONNECTION_REFUSED, {}
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _certificate(exc, s)
    if isinstance(exc, ssl.SSLError) and s.step == "TLS" and s.target.ssl_enabled:
        return Problem.NOT_TLS, {}
    if isinstance(exc, ssl.SSLEOFError | ConnectionResetError | BrokenPipeError | EOFError):
        return _refine(Problem.CLOSED, {}, s)
    if isinstance(exc, ssl.SSLError):
        return Problem.TLS_FAILED, {"reason": getattr(exc, "reason", None) or str(exc)}
    if isinstance(exc, OSError) and exc.errno is not None:
        return Problem.NETWORK_ERROR, {"strerror": exc.strerror}
    return Problem.UNEXPECTED, {"error": str(exc)}


def _refine(problem: Problem, facts: dict[str, Any], s: Situation) -> Found:
    """Greeting failures and a password refusal read differently by what the facts show."""
    greeting = facts.get("waiting", _STEP_WAITS.get(s.step)) is Waiting.GREETING
    if problem is Problem.NO_ANSWER:
        if s.step == "DNS":
            return Problem.DNS_TIMEOUT, {}
        if s.step == "TCP":
            return Problem.TCP_TIMEOUT, {}
        if greeting:
            ssl_port = not s.target.ssl_enabled and s.target.port in (993, 995)
            return (Problem.NO_GREETING_SSL_PORT if ssl_port else Problem.NO_GREETING), facts
    if problem in (Problem.CLOSED, Problem.NOT_THIS_PROTOCOL) and greeting:
        if _looks_like_tls(facts.get("raw", b"")):
            return Problem.TLS_GREETING, facts
        if problem is Problem.CLOSED:
            return Problem.CLOSED_BEFORE_GREETING, facts
    if problem is Problem.TOO_MUCH and greeting:
        return Problem.TOO_MUCH_GREETING, facts
    if problem is Problem.PASSWORD_REFUSED:
        return _refused(facts.get("text", ""), s.target.account, facts)
    if problem is Problem.PASSWORD_NOT_OFFERED:
        encrypted = s.target.ssl_enabled or s.target.starttls
        if not encrypted and facts.get("offered"):
            return Problem.PASSWORD_NEEDS_TLS, facts
        return problem, {"offer": "nothing", "sent": " The password was not sent.", **facts}
    return problem, facts


def _timeout(s: Situation) -> Found:
    return _refine(Problem.NO_ANSWER, {"waiting": _STEP_WAITS.get(s.step, Waiting.CONNECTION)}, s)


def _refused(text: str, account: str, facts: dict[str, Any]) -> Found:
    said = text.upper()
    if "IN-USE" in said or "IN USE" in said or "LOCK" in said:
        return Problem.MAILBOX_LOCKED, facts
    if "UNSUPPORTED AUTHENTICATION MECHANISM" in said:
        # Dovecot whose auth_mechanisms lost plain/login still offers POP3 USER, and on an
        # unencrypted connection from another address no IMAP LOGINDISABLED: only its
        # refusal tells, after the password went out.
        offer = {"offer": "no password sign-in", "sent": ""}
        return Problem.PASSWORD_NOT_OFFERED, {**facts, **offer}
    domain = account.rsplit("@", 1)[-1].lower()
    note = _APP_PASSWORD if domain in _APP_PASSWORD_DOMAINS else ""
    return Problem.PASSWORD_REFUSED, {**facts, "app_password": note}


def _certificate(exc: ssl.SSLCertVerificationError, s: Situation) -> Found:
    code, message = getattr(exc, "verify_code", None), getattr(exc, "verify_message", str(exc))
    if code == 62 or "mismatch" in str(message).lower():
        return Problem.CERT_NAME, {"names": ", ".join(s.peer_names()) or "another name"}
    if code == 10:
        return Problem.CERT_EXPIRED, {}
    if code in (18, 19, 20, 21):  # self-signed, or no path to a trusted root
        return Problem.CERT_UNTRUSTED, {}
    return Problem.CERT_REFUSED, {"reason": message}


def _looks_like_tls(raw: bytes) -> bool:
    # A TLS record header: alert (0x15) or handshake (0x16), then major version 3.
    return raw[:1] in (b"\x15", b"\x16") and raw[1:2] == b"\x03"


def seconds(value: float) -> str:
    """A duration as messages write it: "3 s", "2.5 s"."""
    return f"{round(value, 1):g} s"


def said(line: bytes) -> str:
    """A server's words, safe to show: decoded, printable, at most 120 characters."""
    text = line.decode(errors="replace")
    return "".join(ch if ch.isprintable() else "?" for ch in text).strip()[:120]
