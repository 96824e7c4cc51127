"""The one table of failure texts, fed plain exception objects (no server at all)."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import pytest

from mailbox_core.egress import ALLOW_HINT, EgressRefused
from mailbox_core.probe import ProbeTarget
from mailbox_core.probe.diagnosis import (
    TEXT,
    Problem,
    Situation,
    StepFailed,
    Waiting,
    classify,
    diagnose,
    said,
    seconds,
)
from mailbox_core.probe.imap import ImapSession
from mailbox_core.probe.pop3 import Pop3Session
from mailbox_core.schemas import MailboxType

IMAPS = ProbeTarget(MailboxType.IMAP, "mail.example.com", 993, "a@example.com", ssl_enabled=True)
POP3 = ProbeTarget(MailboxType.POP3, "mail.example.com", 110, "a@example.com")


def situation(step: str, target: ProbeTarget = IMAPS, **changes: Any) -> Situation:
    protocol = (ImapSession if target.mailbox_type is MailboxType.IMAP else Pop3Session).info
    values: dict[str, Any] = {"waited": 3.0, "timeout": 3.0, **changes}
    return Situation(target, protocol, step, **values)


def cert_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    exc.verify_code, exc.verify_message = code, message
    return exc


def ssl_error(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    exc.reason = reason
    return exc


WHERE = "mail.example.com port 993"

#: Problem → (exception, step, situation changes, detail, hint).
CLASSIFIED: dict[Problem, tuple[BaseException, str, dict[str, Any], str, str]] = {
    Problem.EGRESS_REFUSED: (
        EgressRefused("mail.example.com", "10.0.0.5", "a private address", ALLOW_HINT),
        "DNS",
        {},
        "Egress refused: 10.0.0.5 is a private address.",
        ALLOW_HINT,
    ),
    Problem.DNS_TIMEOUT: (
        TimeoutError(),
        "DNS",
        {},
        "Looking up mail.example.com took longer than 3 s",
        "The DNS server does not answer; check the machine's network and resolver.",
    ),
    Problem.UNKNOWN_HOST: (
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        "DNS",
        {},
        "The host name mail.example.com could not be found",
        "Check Host for typos; the name does not exist in DNS.",
    ),
    Problem.TCP_TIMEOUT: (
        TimeoutError(),
        "TCP",
        {},
        f"No answer from {WHERE} within 3 s",
        "A firewall may drop the connection, or Host/Port is wrong.",
    ),
    Problem.CONNECTION_REFUSED: (
        ConnectionRefusedError(111, "Connection refused"),
        "TCP",
        {},
        f"Connection refused by {WHERE}",
        "Nothing accepts connections on that port: check Port and Host.",
    ),
    Problem.NETWORK_ERROR: (
        OSError(113, "No route to host"),
        "TCP",
        {},
        f"Could not connect to {WHERE}: No route to host",
        "Check Host and the network path to the server.",
    ),
    Problem.NOT_TLS: (
        ssl_error("WRONG_VERSION_NUMBER"),
        "TLS",
        {},
        f"{WHERE} does not speak SSL",
        "Port 993 expects a plain connection: set SSL Enabled to No (port 143), or use port 993.",
    ),
    Problem.TLS_FAILED: (
        ssl_error("UNSUPPORTED_PROTOCOL"),
        "Sign-in",
        {},
        f"TLS failed with {WHERE}: UNSUPPORTED_PROTOCOL",
        "",
    ),
    Problem.CERT_NAME: (
        cert_error(62, "Hostname mismatch, certificate is not valid for 'mail.example.com'."),
        "TLS",
        {"peer_names": lambda: ["mx.other.net", "*.other.net"]},
        "Certificate is for mx.other.net, *.other.net, not mail.example.com",
        "Use the host name the certificate names in Host.",
    ),
    Problem.CERT_EXPIRED: (
        cert_error(10, "certificate has expired"),
        "TLS",
        {},
        "The certificate of mail.example.com has expired",
        "The server's administrator must renew it.",
    ),
    Problem.CERT_UNTRUSTED: (
        cert_error(19, "self-signed certificate in certificate chain"),
        "TLS",
        {},
        "The certificate of mail.example.com is not signed by a trusted authority "
        "(self-signed or private CA)",
        "Add the CA to MAILBOX_CA_FILE, or turn on 'Allow self-signed certificate' if you trust "
        "this server.",
    ),
    Problem.CERT_REFUSED: (
        cert_error(23, "certificate revoked"),
        "TLS",
        {},
        "The certificate of mail.example.com was refused: certificate revoked",
        "",
    ),
    Problem.NO_GREETING: (
        TimeoutError(),
        "Greeting",
        {},
        f"{WHERE} sent no greeting within 3 s",
        "The server accepted the connection but said nothing. If it expects SSL, set SSL "
        "Enabled to Yes; otherwise check Port.",
    ),
    Problem.CLOSED_BEFORE_GREETING: (
        ConnectionResetError(104, "Connection reset by peer"),
        "Greeting",
        {},
        f"{WHERE} closed the connection without a greeting",
        "Check Port and SSL Enabled.",
    ),
    Problem.CLOSED: (
        BrokenPipeError(32, "Broken pipe"),
        "Mailbox",
        {},
        f"{WHERE} closed the connection during Mailbox",
        "The server or a firewall dropped the connection; check Port and SSL Enabled.",
    ),
    Problem.NO_ANSWER: (
        OSError(9, "Bad file descriptor"),  # what a read on the watchdog's shut socket gives
        "Sign-in",
        {"expired": True},
        "No answer to the sign-in within 3 s",
        "The server is too slow or stalled; try again or raise the timeout.",
    ),
    Problem.UNEXPECTED: (
        OSError("a connector's own error"),
        "TCP",
        {},
        "TCP failed: a connector's own error",
        "",
    ),
}


@pytest.mark.parametrize("problem", CLASSIFIED)
def test_a_plain_exception_reads_as_its_problem(problem: Problem) -> None:
    exc, step, changes, detail, hint = CLASSIFIED[problem]
    found = diagnose(exc, situation(step, **changes))
    assert (found.problem, found.detail, found.hint) == (problem.value, detail, hint)


def test_anything_after_the_deadline_is_the_deadline_not_the_server() -> None:
    for exc in (ConnectionResetError(), EOFError(), ssl_error("SSLV3_ALERT_BAD_RECORD_MAC")):
        found = diagnose(exc, situation("Sign-in", expired=True))
        assert found.detail == "No answer to the sign-in within 3 s"


def test_a_greeting_timeout_on_an_ssl_port_without_ssl_says_to_turn_ssl_on() -> None:
    plain_993 = ProbeTarget(MailboxType.IMAP, "mail.example.com", 993, "a@example.com")
    found = diagnose(TimeoutError(), situation("Greeting", plain_993))
    assert found.problem == Problem.NO_GREETING_SSL_PORT
    assert found.hint == "Port 993 expects SSL: set SSL Enabled to Yes."


@pytest.mark.parametrize(
    "waited, timeout, said_",
    [
        (1.24, 3, "for 1.2 s, until the test's 3 s ran out"),
        (2.3, 3, "for 2.3 s, until the test's 3 s ran out"),
        (2.5, 3, "within 3 s"),  # within a fifth of the timeout: the whole test, really
        (0.3, 0.5, "within 0.5 s"),  # within a quarter second
        (7.0, 10, "for 7 s, until the test's 10 s ran out"),
    ],
)
def test_a_wait_that_began_late_says_how_long_it_lasted(
    waited: float, timeout: float, said_: str
) -> None:
    failed = StepFailed(Problem.NO_ANSWER, waiting=Waiting.MAILBOX, waited=waited)
    found = diagnose(failed, situation("Mailbox", waited=timeout, timeout=timeout))
    assert found.detail == f"No answer to the request to open INBOX {said_}"


@pytest.mark.parametrize(
    "raw, problem",
    [(b"\x15\x03\x01\x00\x02", Problem.TLS_GREETING), (b"HTTP/1.1", Problem.NOT_THIS_PROTOCOL)],
)
def test_tls_bytes_instead_of_a_greeting_say_ssl_is_expected(raw: bytes, problem: Problem) -> None:
    failed = StepFailed(Problem.NOT_THIS_PROTOCOL, raw=raw, text=said(raw))
    assert classify(failed, situation("Greeting", POP3))[0] is problem


def test_too_much_before_the_greeting_ended_is_a_greeting_problem_and_after_it_is_not() -> None:
    during = StepFailed(Problem.TOO_MUCH, waiting=Waiting.GREETING, limit="256 kB")
    after = StepFailed(Problem.TOO_MUCH, waiting=Waiting.CAPABILITIES, limit="256 kB")
    assert diagnose(during, situation("Greeting")).problem == Problem.TOO_MUCH_GREETING
    assert diagnose(after, situation("Greeting")).detail == (
        f"{WHERE} sent too much in answer to the capabilities request: more than 256 kB"
    )


@pytest.mark.parametrize(
    "text, problem",
    [
        ("[IN-USE] Mailbox is locked by another POP3 session", Problem.MAILBOX_LOCKED),
        ("Unable to lock maildrop", Problem.MAILBOX_LOCKED),
        ("[AUTH] Authentication failed.", Problem.PASSWORD_REFUSED),
    ],
)
def test_a_refused_password_tells_a_lock_apart(text: str, problem: Problem) -> None:
    refused = StepFailed(Problem.PASSWORD_REFUSED, text=text)
    assert diagnose(refused, situation("Sign-in", POP3)).problem == problem.value


def test_every_problem_has_a_text() -> None:
    assert set(TEXT) == set(Problem)


@pytest.mark.parametrize("value, text", [(3, "3 s"), (2.5, "2.5 s"), (0.04, "0 s"), (10.0, "10 s")])
def test_seconds(value: float, text: str) -> None:
    assert seconds(value) == text


def test_a_servers_words_are_trimmed_and_made_printable() -> None:
    assert said(b"  -ERR \x1b[31mred\x00 " + b"x" * 200) == "-ERR ?[31mred? " + "x" * 105
