"""Every step of the connection test and every problem's text, through a scripted server.

No network and no Dovecot: tests/support/fake_transport.py answers on a socketpair behind
the probe's connector, so each case runs the probe's real code in milliseconds. The
Dovecot matrix in test_probe.py stays the integration proof of the same verdicts.
"""

from __future__ import annotations

import errno
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from mailbox_core.egress import EgressMode, EgressPolicy
from mailbox_core.oauth import TokenError
from mailbox_core.probe import ProbeResult, ProbeTarget, StepStatus, run_probe
from mailbox_core.probe.diagnosis import Problem
from mailbox_core.schemas import MailboxType
from mailbox_core.tls import sessions
from tests.support.fake_transport import (
    HOST,
    POP3_CAPA,
    Answer,
    Close,
    FakeServer,
    Flood,
    Raw,
    Script,
    Stall,
    StartTLS,
    imap,
    pop3,
)

ACCOUNT = "alice@example.com"
SSL_PORTS = {"IMAP": 993, "POP3": 995}
PLAIN_PORTS = {"IMAP": 143, "POP3": 110}


@pytest.fixture(autouse=True)
def _no_shared_tls_sessions() -> Iterator[None]:
    sessions.clear()
    yield
    sessions.clear()


def target(kind: str = "IMAP", mode: str = "ssl", **changes: Any) -> ProbeTarget:
    """alice@ on the fake server: ``ssl`` (implicit TLS), ``starttls`` or ``plain`` (allowed)."""
    values: dict[str, Any] = {
        "mailbox_type": MailboxType(kind),
        "host": HOST,
        "port": (SSL_PORTS if mode == "ssl" else PLAIN_PORTS)[kind],
        "account": ACCOUNT,
        "password": "alice-Secret-1",
        "ssl_enabled": mode == "ssl",
        "starttls": mode == "starttls",
        "allow_plaintext": mode == "plain",
    }
    return ProbeTarget(**{**values, **changes})


def probe(
    script: Script, mode: str = "ssl", *, timeout: float = 2.0, **changes: Any
) -> tuple[ProbeResult, FakeServer]:
    server = FakeServer(script, tls=mode == "ssl")
    result = run_probe(
        target(script.protocol, mode, **changes), timeout=timeout, **server.options()
    )
    server.wait()
    return result, server


def statuses(result: ProbeResult) -> dict[str, str]:
    return {s.name: s.status.value for s in result.steps}


# ---------------------------------------------------------------- what passes


@pytest.mark.parametrize("kind", ["IMAP", "POP3"])
@pytest.mark.parametrize("mode", ["ssl", "starttls", "plain"])
def test_every_step_passes_against_a_well_behaved_server(kind: str, mode: str) -> None:
    script = imap() if kind == "IMAP" else pop3()
    result, _ = probe(script, mode)
    assert result.ok, result
    assert result.summary == "Signed in and opened INBOX; 3 messages"
    assert statuses(result) == {
        "DNS": "passed",
        "TCP": "passed",
        "TLS": "warning" if mode == "plain" else "passed",
        "Greeting": "passed",
        "Sign-in": "passed",
        "Mailbox": "passed",
    }
    details = {s.name: s.detail for s in result.steps}
    assert details["DNS"] == f"{HOST} → 192.0.2.10"
    assert details["TCP"] == f"Connected to 192.0.2.10 port {target(kind, mode).port}"
    assert details["Greeting"].startswith(("* OK [CAPABILITY", "+OK Fake ready. · capabilities:"))
    assert details["Sign-in"] == f"Signed in as {ACCOUNT} with a password"
    assert details["Mailbox"] == "INBOX has 3 messages"
    if mode != "plain":
        assert details["TLS"] == "TLSv1.3 · certificate verified"


def test_imaps_signs_in_examines_and_logs_out_in_one_turn() -> None:
    result, server = probe(imap(), vitals=False)
    assert result.ok and result.vitals is None
    assert server.commands() == ["LOGIN", "EXAMINE", "LOGOUT"], "no CAPABILITY: the greeting had it"
    [connection] = server.connections
    assert connection.turns == 1
    assert connection.chunks[0].count(b"\r\n") == 3, "LOGIN, EXAMINE and LOGOUT in one write"
    assert "SELECT" not in server.received()


def test_a_deadline_spent_while_waiting_to_sign_in_fails_the_sign_in_step() -> None:
    # The scheduler's failed-sign-in budget may wait past the deadline (a loaded machine):
    # that is the Sign-in step's timeout, never an exception out of run_probe.
    asked: list[float] = []

    def slow_admit(remaining: float) -> str:
        asked.append(remaining)
        time.sleep(remaining + 0.2)
        return ""

    server = FakeServer(imap(), tls=True)
    result = run_probe(target(), timeout=1.0, admit=slow_admit, **server.options())
    server.wait()
    assert asked and 0 < asked[0] <= 1.0
    assert result.failed_step is not None and result.failed_step.name == "Sign-in"
    assert "LOGIN" not in server.commands(), "no password sent after the deadline"


def test_imaps_with_vitals_adds_status_to_the_sign_in_write_and_logs_out_after() -> None:
    # Nothing worth a second question (no unseen mail, no QUOTA): LOGOUT alone follows,
    # unawaited. The fake counts its answer as a turn; the probe waited for one.
    result, server = probe(imap())
    assert result.ok
    assert server.commands() == ["LOGIN", "STATUS", "EXAMINE", "LOGOUT"]
    [connection] = server.connections
    assert connection.chunks[0].count(b"\r\n") == 3, "LOGIN, STATUS and EXAMINE in one write"
    assert connection.chunks[1] == b"a4 LOGOUT\r\n"
    assert connection.turns == 2


def test_imap_asks_for_capabilities_only_when_the_greeting_has_none() -> None:
    result, server = probe(imap(greeting="* OK Fake ready."))
    assert result.ok
    assert server.commands() == ["CAPABILITY", "LOGIN", "STATUS", "EXAMINE", "LOGOUT"]
    assert server.connections[0].turns == 3


def test_pop3s_with_pipelining_sends_user_pass_stat_and_quit_together() -> None:
    result, server = probe(pop3())
    assert result.ok and result.message_count == 3
    assert server.commands() == ["CAPA", "USER", "PASS", "STAT", "QUIT"]
    assert server.connections[0].turns == 2
    assert "DELE" not in server.received() and "RETR" not in server.received()


def test_pop3_without_pipelining_takes_no_more_turns_than_poplib() -> None:
    # poplib: USER, PASS, STAT, QUIT, one turn each; the probe adds CAPA and joins STAT+QUIT.
    result, server = probe(pop3(CAPA=POP3_CAPA.replace("PIPELINING\n", "")))
    assert result.ok
    assert server.commands() == ["CAPA", "USER", "PASS", "STAT", "QUIT"]
    assert server.connections[0].turns == 4


def test_pop3_without_capa_still_signs_in() -> None:
    result, server = probe(pop3(CAPA="-ERR Unknown command."))
    assert result.ok
    assert server.commands() == ["CAPA", "USER", "PASS", "STAT", "QUIT"]


def test_non_ascii_password_uses_authenticate_plain_pipelined_with_sasl_ir() -> None:
    result, server = probe(imap(), password="pässwörd-ü", vitals=False)
    assert result.ok
    assert server.commands() == ["AUTHENTICATE", "EXAMINE", "LOGOUT"]
    assert server.connections[0].turns == 1
    assert "AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHDDpHNzd8O2cmQtw7w=" in server.received()


def test_authenticate_plain_without_sasl_ir_answers_the_continuation() -> None:
    script = imap(
        greeting="* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Fake ready.",
        AUTHENTICATE="+ ",
        **{"+": "{tag} OK Logged in"},
    )
    result, server = probe(script, password="pässwörd-ü")
    assert result.ok, result.summary
    assert server.commands()[0] == "AUTHENTICATE"
    assert server.connections[0].turns == 3, "the continuation, then sign-in, then LOGOUT"


def test_login_disabled_falls_back_to_authenticate_plain() -> None:
    script = imap(greeting="* OK [CAPABILITY IMAP4rev1 SASL-IR LOGINDISABLED AUTH=PLAIN] Hi.")
    result, server = probe(script)
    assert result.ok
    assert server.commands() == ["AUTHENTICATE", "STATUS", "EXAMINE", "LOGOUT"]


def test_login_quotes_what_needs_quoting() -> None:
    result, server = probe(imap(), password='back\\slash "quoted"')
    assert result.ok
    assert f'LOGIN "{ACCOUNT}" "back\\\\slash \\"quoted\\""' in server.received()


def test_a_literal_in_an_answer_is_skipped_and_the_answer_read_on() -> None:
    examine = "* OK [ALERT] {{11}}\nhello world\n* 7 EXISTS\n{tag} OK [READ-ONLY] done"
    result, _ = probe(imap(EXAMINE=examine))
    assert result.ok and result.message_count == 7


def test_starttls_asks_for_the_capabilities_again_inside_tls() -> None:
    # Whatever a man in the middle appended to the plain answer is never read.
    forged = StartTLS("{tag} OK Begin TLS now.\n* CAPABILITY IMAP4rev1 LOGINDISABLED")
    result, server = probe(imap(STARTTLS=forged), "starttls")
    assert result.ok
    assert server.commands() == ["STARTTLS", "CAPABILITY", "LOGIN", "STATUS", "EXAMINE", "LOGOUT"]


def test_xoauth2_signs_in_then_examines() -> None:
    result, server = probe(
        imap(), token_source=lambda: "ya29.token", oauth_label="Gmail XOAUTH2", vitals=False
    )
    assert result.ok
    sign_in = next(s for s in result.steps if s.name == "Sign-in")
    assert sign_in.detail == f"Signed in as {ACCOUNT} with Gmail XOAUTH2"
    assert server.commands() == ["AUTHENTICATE", "EXAMINE", "LOGOUT"]
    assert server.connections[0].turns == 2, "XOAUTH2 waits for its answer before EXAMINE"
    assert "AUTHENTICATE XOAUTH2 dXNlcj1hbGljZUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5" in (
        server.received()
    )


def test_a_refused_token_gets_the_empty_answer_to_its_error_challenge() -> None:
    script = imap(
        AUTHENTICATE="+ eyJzdGF0dXMiOiI0MDEifQ==",
        **{"+": "{tag} NO [AUTHENTICATIONFAILED] Authentication failed."},
    )
    result, server = probe(script, token_source=lambda: "ya29.revoked")
    assert result.failed_step is not None and result.failed_step.name == "Sign-in"
    assert result.summary == f"The server refused the OAuth token for {ACCOUNT}"
    assert server.connections[0].lines[1] == "", "the empty answer to the challenge"
    assert "EXAMINE" not in server.received()


def test_the_second_handshake_to_the_same_server_is_resumed() -> None:
    first, _ = probe(imap())
    second, server = probe(imap())
    tls = [next(s for s in r.steps if s.name == "TLS").detail for r in (first, second)]
    assert tls == ["TLSv1.3 · certificate verified", "TLSv1.3 · certificate verified · resumed"]
    assert server.connections[0].resumed


def test_a_session_is_resumed_only_with_the_same_trust_setting() -> None:
    probe(imap())
    result, server = probe(imap(), allow_self_signed=True)
    assert result.ok
    assert not server.connections[0].resumed


def test_plaintext_allowed_is_a_warning_that_names_starttls() -> None:
    result, _ = probe(imap(), "plain")
    tls = next(s for s in result.steps if s.name == "TLS")
    assert tls.status is StepStatus.WARNING
    assert tls.problem == Problem.PLAINTEXT_ALLOWED
    assert tls.detail == (
        "Not encrypted: the password is sent in plain text (allowed for this mailbox)"
    )
    assert tls.hint == "The server offers STARTTLS: set STARTTLS to Yes."


# ---------------------------------------------------------------- what fails, and the hint


@dataclass
class Case:
    """A misbehaving server (or setting) and the verdict a person reads."""

    script: Script
    step: str
    problem: Problem
    summary: str
    hint: str
    mode: str = "ssl"
    changes: dict[str, Any] = field(default_factory=dict)  # to the target
    timeout: float = 2.0
    options: dict[str, Any] = field(default_factory=dict)  # to run_probe


WHERE_IMAPS = f"{HOST} port 993"
WHERE_IMAP = f"{HOST} port 143"
WHERE_POP3 = f"{HOST} port 110"
SLOW = "The server is too slow or stalled; try again or raise the timeout."
NOT_SENT = "Not encrypted: signing in would send the password in plain text, so it was not sent"
ALLOW = " Only on a network you trust: turn on 'Allow sign-in without encryption' under Advanced."
TOO_MUCH_HINT = (
    "A mail server answers this in a few kilobytes: check Host and Port, or ask the server's "
    "administrator."
)
NOT_OFFERED = (
    "This server no longer accepts password sign-in: switch the mailbox to OAuth or an app "
    "password."
)
TLS_ALERT = b"\x15\x03\x01\x00\x02\x02\x46"

CASES: dict[str, Case] = {
    "password refused": Case(
        imap(LOGIN="{tag} NO [AUTHENTICATIONFAILED] Authentication failed."),
        "Sign-in",
        Problem.PASSWORD_REFUSED,
        f"The server refused the password for {ACCOUNT}",
        "Check Account and Password.",
    ),
    "password refused, gmail": Case(
        imap(LOGIN="{tag} NO [AUTHENTICATIONFAILED] Invalid credentials"),
        "Sign-in",
        Problem.PASSWORD_REFUSED,
        "The server refused the password for someone@gmail.com",
        "Check Account and Password. This provider needs an app password (or OAuth), not the "
        "normal password.",
        changes={"account": "someone@gmail.com"},
    ),
    "pop3 password refused": Case(
        pop3(PASS="-ERR [AUTH] Authentication failed."),
        "Sign-in",
        Problem.PASSWORD_REFUSED,
        f"The server refused the password for {ACCOUNT}",
        "Check Account and Password.",
    ),
    "pop3 user refused": Case(
        pop3(USER="-ERR No such user."),
        "Sign-in",
        Problem.PASSWORD_REFUSED,
        f"The server refused the password for {ACCOUNT}",
        "Check Account and Password.",
    ),
    "pop3 lock held": Case(
        pop3(PASS="-ERR [IN-USE] Couldn't open INBOX: Mailbox is locked"),
        "Sign-in",
        Problem.MAILBOX_LOCKED,
        f"The server refused the password for {ACCOUNT}",
        "Another client holds the POP3 lock on this mailbox; try again later.",
    ),
    "no inbox": Case(
        imap(EXAMINE="{tag} NO Mailbox doesn't exist: INBOX"),
        "Mailbox",
        Problem.NO_INBOX,
        "INBOX could not be opened",
        "The account has no INBOX or is not allowed to read it.",
    ),
    "pop3 stat refused": Case(
        pop3(STAT="-ERR Mailbox unavailable"),
        "Mailbox",
        Problem.NO_INBOX,
        "INBOX could not be opened",
        "The account has no INBOX or is not allowed to read it.",
    ),
    "password no longer offered": Case(
        imap(greeting="* OK [CAPABILITY IMAP4rev1 SASL-IR LOGINDISABLED AUTH=XOAUTH2] Hi."),
        "Sign-in",
        Problem.PASSWORD_NOT_OFFERED,
        f"The server offers no password sign-in for {ACCOUNT} (it offers: XOAUTH2)",
        NOT_OFFERED + " The password was not sent.",
    ),
    "pop3 password no longer offered": Case(
        pop3(CAPA="+OK\nPIPELINING\nSASL XOAUTH2 OAUTHBEARER\n."),
        "Sign-in",
        Problem.PASSWORD_NOT_OFFERED,
        f"The server offers no password sign-in for {ACCOUNT} (it offers: OAUTHBEARER XOAUTH2)",
        NOT_OFFERED + " The password was not sent.",
    ),
    "password refused as an unsupported mechanism": Case(
        # Dovecot without plain in auth_mechanisms still lists POP3 USER; PASS tells.
        pop3(PASS="-ERR [AUTH] Unsupported authentication mechanism."),
        "Sign-in",
        Problem.PASSWORD_NOT_OFFERED,
        f"The server offers no password sign-in for {ACCOUNT} (it offers: no password sign-in)",
        NOT_OFFERED,
    ),
    "password only over tls": Case(
        imap(greeting="* OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS LOGINDISABLED] Hi."),
        "Sign-in",
        Problem.PASSWORD_NEEDS_TLS,
        "The server accepts a password only over an encrypted connection, so it was not sent",
        "The server offers STARTTLS: set STARTTLS to Yes.",
        mode="plain",
    ),
    "token refused": Case(
        imap(AUTHENTICATE="{tag} NO [AUTHENTICATIONFAILED] Authentication failed."),
        "Sign-in",
        Problem.TOKEN_REFUSED,
        f"The server refused the OAuth token for {ACCOUNT}",
        "The token is valid for another account or lacks IMAP access: check Account and the "
        "app's IMAP permission.",
        changes={"token_source": lambda: "ya29.other"},
    ),
    "token unverified": Case(
        imap(AUTHENTICATE="{tag} NO [UNAVAILABLE] Temporary authentication failure."),
        "Sign-in",
        Problem.TOKEN_UNVERIFIED,
        "The mail server could not verify the token right now",
        "The server's identity provider is unavailable; try again later.",
        changes={"token_source": lambda: "ya29.token"},
    ),
    "oauth on pop3": Case(
        pop3(),
        "Sign-in",
        Problem.OAUTH_NOT_FOR_POP3,
        "OAuth sign-in is only available for IMAP mailboxes",
        "",
        changes={"token_source": lambda: "ya29.token"},
    ),
    "unsendable password": Case(
        pop3(),
        "Sign-in",
        Problem.UNSENDABLE,
        "The password or account holds a line break or NUL, which POP3 cannot send",
        "Type Account and the password again, without control characters.",
        changes={"password": "pw\r\nDELE 1"},
    ),
    "plaintext refused, starttls offered": Case(
        imap(),
        "TLS",
        Problem.PLAINTEXT_REFUSED,
        NOT_SENT,
        "The server offers STARTTLS: set STARTTLS to Yes." + ALLOW,
        mode="plain",
        changes={"allow_plaintext": False},
    ),
    "plaintext refused, no starttls": Case(
        pop3(CAPA="+OK\nUSER\n."),
        "TLS",
        Problem.PLAINTEXT_REFUSED,
        NOT_SENT,
        "Use SSL Enabled = Yes with port 995 if the server supports it." + ALLOW,
        mode="plain",
        changes={"allow_plaintext": False},
    ),
    "starttls stripped": Case(
        imap(
            greeting="* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Fake ready.",
        ),
        "TLS",
        Problem.NO_STARTTLS,
        "The server does not offer STARTTLS",
        "Set STARTTLS to No, or use SSL Enabled = Yes with port 993.",
        mode="starttls",
    ),
    "stls stripped": Case(
        pop3(CAPA="+OK\nUSER\nPIPELINING\n."),
        "TLS",
        Problem.NO_STARTTLS,
        "The server does not offer STARTTLS",
        "Set STARTTLS to No, or use SSL Enabled = Yes with port 995.",
        mode="starttls",
    ),
    "starttls refused": Case(
        imap(STARTTLS="{tag} NO TLS is not available right now"),
        "TLS",
        Problem.STARTTLS_REFUSED,
        "The server refused to start TLS: TLS is not available right now",
        "Use SSL Enabled = Yes with port 993, or ask the server's administrator.",
        mode="starttls",
    ),
    "stls refused": Case(
        pop3(STLS="-ERR TLS not available"),
        "TLS",
        Problem.STARTTLS_REFUSED,
        "The server refused to start TLS: TLS not available",
        "Use SSL Enabled = Yes with port 995, or ask the server's administrator.",
        mode="starttls",
    ),
    "starttls accepted but no tls follows": Case(
        imap(STARTTLS=["{tag} OK Begin TLS negotiation now.", Answer(b"* OK just kidding\r\n")]),
        "TLS",
        Problem.TLS_FAILED,
        f"TLS failed with {WHERE_IMAP}: WRONG_VERSION_NUMBER",
        "",
        mode="starttls",
    ),
    "plain server on the ssl setting": Case(
        imap(),
        "TLS",
        Problem.NOT_TLS,
        f"{WHERE_IMAPS} does not speak SSL",
        "Port 993 expects a plain connection: set SSL Enabled to No (port 143), or use port 993.",
        mode="plain",
        changes={"ssl_enabled": True, "port": 993},
    ),
    "no greeting": Case(
        imap(greeting=Stall()),
        "Greeting",
        Problem.NO_GREETING,
        f"{WHERE_IMAP} sent no greeting within 0.3 s",
        "The server accepted the connection but said nothing. If it expects SSL, set SSL "
        "Enabled to Yes; otherwise check Port.",
        mode="plain",
        timeout=0.3,
    ),
    "no greeting on an ssl port": Case(
        imap(greeting=Stall()),
        "Greeting",
        Problem.NO_GREETING_SSL_PORT,
        f"{WHERE_IMAPS} sent no greeting within 0.3 s",
        "Port 993 expects SSL: set SSL Enabled to Yes.",
        mode="plain",
        changes={"port": 993},
        timeout=0.3,
    ),
    "greeting is a tls alert": Case(
        imap(greeting=[Raw(TLS_ALERT), Close()]),
        "Greeting",
        Problem.TLS_GREETING,
        f"{WHERE_IMAP} answered with TLS, not a plain IMAP greeting",
        "Port 143 expects SSL: set SSL Enabled to Yes.",
        mode="plain",
        timeout=0.3,
    ),
    "closed without greeting": Case(
        pop3(greeting=Close()),
        "Greeting",
        Problem.CLOSED_BEFORE_GREETING,
        f"{WHERE_POP3} closed the connection without a greeting",
        "Check Port and SSL Enabled.",
        mode="plain",
    ),
    "not this protocol": Case(
        pop3(greeting="* OK [CAPABILITY IMAP4rev1] an IMAP server"),
        "Greeting",
        Problem.NOT_THIS_PROTOCOL,
        f"{WHERE_POP3} did not answer like a POP3 server: * OK [CAPABILITY IMAP4rev1] an IMAP "
        "server",
        "Check Mailbox Type and Port: POP3 usually uses 110/995.",
        mode="plain",
    ),
    "greeting refused": Case(
        imap(greeting="* BYE Too many connections from your IP"),
        "Greeting",
        Problem.GREETING_REFUSED,
        f"{WHERE_IMAPS} turned the connection away: * BYE Too many connections from your IP",
        "The server is busy or does not accept this client now; try again later.",
    ),
    "pop3 greeting refused": Case(
        pop3(greeting="-ERR [SYS/TEMP] Server busy"),
        "Greeting",
        Problem.GREETING_REFUSED,
        f"{HOST} port 995 turned the connection away: -ERR [SYS/TEMP] Server busy",
        "The server is busy or does not accept this client now; try again later.",
    ),
    "closed during sign-in": Case(
        imap(LOGIN=Close()),
        "Sign-in",
        Problem.CLOSED,
        f"{WHERE_IMAPS} closed the connection during Sign-in",
        "The server or a firewall dropped the connection; check Port and SSL Enabled.",
    ),
    "no answer to capabilities": Case(
        imap(greeting="* OK Fake ready.", CAPABILITY=Stall()),
        "Greeting",
        Problem.NO_ANSWER,
        "No answer to the capabilities request within 0.5 s",
        SLOW,
        timeout=0.5,
    ),
    "no answer to starttls": Case(
        imap(STARTTLS=Stall()),
        "TLS",
        Problem.NO_ANSWER,
        "No answer to the request to start TLS within 0.5 s",
        SLOW,
        mode="starttls",
        timeout=0.5,
    ),
    "no answer to the mailbox": Case(
        imap(EXAMINE=Stall()),
        "Mailbox",
        Problem.NO_ANSWER,
        "No answer to the request to open INBOX within 0.5 s",
        SLOW,
        timeout=0.5,
    ),
    "endless capability lines": Case(
        imap(
            greeting="* OK Fake ready.", CAPABILITY=Flood(b"* CAPABILITY " + b"X" * 2048 + b"\r\n")
        ),
        "Greeting",
        Problem.TOO_MUCH,
        f"{WHERE_IMAPS} sent too much in answer to the capabilities request: more than 256 kB",
        TOO_MUCH_HINT,
    ),
    "endless pop3 capa": Case(
        pop3(CAPA=Flood(b"X" * 2046 + b"\r\n", first=b"+OK\r\n")),
        "Greeting",
        Problem.TOO_MUCH,
        f"{HOST} port 995 sent too much in answer to the capabilities request: more than 256 kB",
        TOO_MUCH_HINT,
    ),
    "huge literal in the mailbox answer": Case(
        imap(EXAMINE=Raw(b"* 1 FETCH (BODY[] {1073741824}\r\n")),
        "Mailbox",
        Problem.TOO_MUCH,
        f"{WHERE_IMAPS} sent too much in answer to the request to open INBOX: more than 256 kB",
        TOO_MUCH_HINT,
    ),
    "endless greeting line": Case(
        imap(greeting=Flood(b"x" * 2048, first=b"* OK ")),
        "Greeting",
        Problem.TOO_MUCH_GREETING,
        f"{WHERE_IMAPS} sent too much in its greeting: more than 256 kB",
        "A mail server greets in one short line: check Mailbox Type, Host and Port.",
    ),
    "certificate untrusted": Case(
        imap(),
        "TLS",
        Problem.CERT_UNTRUSTED,
        f"The certificate of {HOST} is not signed by a trusted authority (self-signed or "
        "private CA)",
        "Add the CA to MAILBOX_CA_FILE, or turn on 'Allow self-signed certificate' if you trust "
        "this server.",
        options={"ca_file": None},
    ),
}


def run_case(case: Case) -> tuple[ProbeResult, FakeServer]:
    server = FakeServer(case.script, tls=case.mode == "ssl")
    options = {**server.options(), **case.options}
    started = time.monotonic()
    result = run_probe(
        target(case.script.protocol, case.mode, **case.changes), timeout=case.timeout, **options
    )
    assert time.monotonic() - started < case.timeout + 0.5, "the probe overran its timeout"
    return result, server


@pytest.mark.parametrize("name", CASES)
def test_each_failure_reads_as_its_problem(name: str) -> None:
    case = CASES[name]
    result, server = run_case(case)
    failed = result.failed_step
    assert failed is not None, result
    assert (failed.name, failed.problem) == (case.step, case.problem)
    assert failed.detail == case.summary
    assert failed.hint == case.hint
    after = [
        s.status for s in result.steps[[s.name for s in result.steps].index(failed.name) + 1 :]
    ]
    assert after == [StepStatus.SKIPPED] * len(after)
    server.wait()


def test_a_pipelined_sign_in_that_fails_reports_the_sign_in_not_the_mailbox() -> None:
    script = imap(
        LOGIN="{tag} NO [AUTHENTICATIONFAILED] Authentication failed.",
        EXAMINE="{tag} BAD Error in IMAP command received by server.",
    )
    result, server = probe(script)
    assert result.failed_step is not None and result.failed_step.name == "Sign-in"
    assert result.summary == f"The server refused the password for {ACCOUNT}"
    assert statuses(result)["Mailbox"] == "skipped"
    assert server.commands() == ["LOGIN", "STATUS", "EXAMINE"], "STATUS, EXAMINE went ahead, unread"


def test_no_password_is_sent_when_plaintext_is_refused() -> None:
    result, server = probe(imap(), "plain", allow_plaintext=False, password="never-on-the-wire")
    assert not result.ok
    assert server.commands() == []
    assert "never-on-the-wire" not in server.received()


def test_a_hostile_starttls_answer_is_not_read_as_the_capabilities() -> None:
    # The plain answer to STARTTLS carries a forged capability; TLS then stalls.
    forged = StartTLS("{tag} OK go\n* CAPABILITY IMAP4rev1 AUTH=PLAIN")
    result, _ = probe(imap(STARTTLS=forged, CAPABILITY=Stall()), "starttls", timeout=0.5)
    assert result.failed_step is not None and result.failed_step.name == "TLS"
    assert result.summary == "No answer to the capabilities request within 0.5 s"


# ---------------------------------------------------------------- D13: stalls say where


def test_a_server_that_never_answers_the_sign_in_is_not_a_refused_password() -> None:
    result, _ = probe(imap(LOGIN=Stall()), timeout=0.5)
    failed = result.failed_step
    assert failed is not None and failed.name == "Sign-in"
    assert failed.problem == Problem.NO_ANSWER
    assert failed.detail == "No answer to the sign-in within 0.5 s"
    assert "refused" not in failed.detail
    assert failed.hint == SLOW


def test_a_stall_late_in_the_test_says_how_long_the_step_waited() -> None:
    def late_greeting(tag: str) -> str:
        time.sleep(0.3)
        return "* OK Fake ready, at last."

    result, _ = probe(imap(greeting=late_greeting, CAPABILITY=Stall()), timeout=1)
    failed = result.failed_step
    assert failed is not None and failed.name == "Greeting"
    assert re.fullmatch(
        r"No answer to the capabilities request for 0\.[5-7] s, until the test's 1 s ran out",
        failed.detail,
    ), failed.detail


def test_endless_capabilities_after_a_greeting_are_not_reported_as_no_greeting() -> None:
    flood = Flood(b"* CAPABILITY " + b"Y" * 2048 + b"\r\n")
    result, _ = probe(imap(greeting="* OK hello", CAPABILITY=flood), timeout=5)
    assert "greeting" not in result.summary
    assert result.summary == (
        f"{WHERE_IMAPS} sent too much in answer to the capabilities request: more than 256 kB"
    )


# ---------------------------------------------------------------- before the server


class FailingConnector:
    """A connector that records each address it is asked for and raises ``exc``."""

    def __init__(self, exc: OSError) -> None:
        self.exc = exc
        self.asked: list[str] = []

    def __call__(self, address: tuple[Any, ...], timeout: float) -> socket.socket:
        self.asked.append(str(address[4][0]))
        raise self.exc


@pytest.mark.parametrize(
    "exc, problem, summary, hint",
    [
        (
            ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
            Problem.CONNECTION_REFUSED,
            f"Connection refused by {WHERE_IMAPS}",
            "Nothing accepts connections on that port: check Port and Host.",
        ),
        (
            TimeoutError("timed out"),
            Problem.TCP_TIMEOUT,
            f"No answer from {WHERE_IMAPS} within 2 s",
            "A firewall may drop the connection, or Host/Port is wrong.",
        ),
        (
            OSError(errno.ENETUNREACH, "Network is unreachable"),
            Problem.NETWORK_ERROR,
            f"Could not connect to {WHERE_IMAPS}: Network is unreachable",
            "Check Host and the network path to the server.",
        ),
    ],
)
def test_tcp_failures(exc: OSError, problem: Problem, summary: str, hint: str) -> None:
    server = FakeServer(imap())
    result = run_probe(
        target(), timeout=2, **{**server.options(), "connector": FailingConnector(exc)}
    )
    assert result.failed_step is not None and result.failed_step.name == "TCP"
    assert (result.failed_step.problem, result.summary, result.failed_step.hint) == (
        problem,
        summary,
        hint,
    )


def test_every_address_is_tried_before_the_tcp_step_fails() -> None:
    server = FakeServer(imap(), answers=["192.0.2.10", "192.0.2.11"])
    connector = FailingConnector(ConnectionRefusedError(errno.ECONNREFUSED, "Refused"))
    result = run_probe(target(), timeout=2, **{**server.options(), "connector": connector})
    failed = result.failed_step
    assert failed is not None and failed.problem == Problem.CONNECTION_REFUSED
    assert server.resolved == [HOST], "resolved once"
    assert connector.asked == ["192.0.2.10", "192.0.2.11"]


def test_the_second_address_is_used_when_the_first_refuses() -> None:
    server = FakeServer(imap(), tls=True, answers=["192.0.2.10", "192.0.2.11"])

    def first_refuses(address: tuple[Any, ...], timeout: float) -> socket.socket:
        if address[4][0] == "192.0.2.10":
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        return server.connector(address, timeout)

    result = run_probe(target(), timeout=2, **{**server.options(), "connector": first_refuses})
    assert result.ok
    assert server.dialed == ["192.0.2.11"]


@pytest.mark.parametrize(
    "answers, resolver_error, problem, summary, hint",
    [
        (
            None,
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            Problem.UNKNOWN_HOST,
            f"The host name {HOST} could not be found",
            "Check Host for typos; the name does not exist in DNS.",
        ),
        (
            [],
            None,
            Problem.NO_ADDRESS,
            f"{HOST} has no address",
            "Check Host: the name exists in DNS but has no address to connect to.",
        ),
        (
            ["127.0.0.1"],
            None,
            Problem.EGRESS_REFUSED,
            "Egress refused: 127.0.0.1 is a loopback address (this server itself).",
            "An admin can allow this network with MAILBOX_EGRESS_ALLOW.",
        ),
    ],
)
def test_dns_failures(
    answers: list[str] | None,
    resolver_error: Exception | None,
    problem: Problem,
    summary: str,
    hint: str,
) -> None:
    server = FakeServer(imap(), answers=answers)

    def resolver(host: str, port: int) -> list[tuple[Any, ...]]:
        if resolver_error is not None:
            raise resolver_error
        return server.resolver(host, port)

    result = run_probe(
        target(),
        timeout=2,
        egress=EgressPolicy(EgressMode.PUBLIC),
        **{**server.options(), "resolver": resolver},
    )
    failed = result.failed_step
    assert failed is not None
    assert (failed.name, failed.problem, failed.detail, failed.hint) == (
        "DNS",
        problem,
        summary,
        hint,
    )
    assert server.dialed == []


def test_a_resolver_that_hangs_is_cut_off_at_the_deadline() -> None:
    def hanging(host: str, port: int) -> list[tuple[Any, ...]]:
        time.sleep(0.6)
        return []

    server = FakeServer(imap())
    result = run_probe(target(), timeout=0.2, **{**server.options(), "resolver": hanging})
    assert result.failed_step is not None and result.failed_step.problem == Problem.DNS_TIMEOUT
    assert result.summary == f"Looking up {HOST} took longer than 0.2 s"


# ---------------------------------------------------------------- certificates and tokens


def test_a_certificate_for_another_name_is_named_in_the_message() -> None:
    server = FakeServer(imap(), tls=True, names=("mail.other.com",))
    from tests.support.fake_transport import certificate

    options = {**server.options(), "ca_file": str(certificate("mail.other.com")[0])}
    result = run_probe(target(), timeout=2, **options)
    failed = result.failed_step
    assert failed is not None and (failed.name, failed.problem) == ("TLS", Problem.CERT_NAME)
    assert failed.detail == f"Certificate is for mail.other.com, not {HOST}"
    assert failed.hint == "Use the host name the certificate names in Host."
    assert len(server.connections) == 2, "a second, unverified look only to name the certificate"


def test_self_signed_allowed_still_checks_the_name() -> None:
    server = FakeServer(imap(), tls=True, names=("mail.other.com",))
    result = run_probe(target(allow_self_signed=True), timeout=2, **server.options())
    assert result.failed_step is not None and result.failed_step.problem == Problem.CERT_NAME
    assert result.summary == f"Certificate is for mail.other.com, not {HOST}"


def test_self_signed_allowed_with_the_right_name_passes() -> None:
    server = FakeServer(imap(), tls=True)
    options = {**server.options(), "ca_file": None}
    result = run_probe(target(allow_self_signed=True), timeout=2, **options)
    assert result.ok
    tls = next(s for s in result.steps if s.name == "TLS")
    assert tls.detail == "TLSv1.3 · self-signed allowed"


def test_a_token_error_is_the_sign_in_failure_with_its_hint() -> None:
    def token() -> str:
        raise TokenError("The identity provider refused the grant (invalid_grant)", "Re-authorise.")

    result, server = probe(imap(), token_source=token)
    failed = result.failed_step
    assert failed is not None and (failed.name, failed.problem) == ("Sign-in", Problem.NO_TOKEN)
    assert failed.detail == (
        "No access token: The identity provider refused the grant (invalid_grant)"
    )
    assert failed.hint == "Re-authorise."
    assert server.commands() == []


def test_a_bug_in_the_token_source_surfaces_instead_of_reading_as_no_token() -> None:
    def token() -> str:
        return {}["access_token"]  # type: ignore[no-any-return]

    with pytest.raises(KeyError):
        probe(imap(), token_source=token)


def test_every_problem_has_a_test() -> None:
    from tests.core.test_probe_diagnosis import CLASSIFIED

    tested = (
        {c.problem for c in CASES.values()}
        | set(CLASSIFIED)
        | {
            Problem.PLAINTEXT_ALLOWED,  # test_plaintext_allowed_is_a_warning_that_names_starttls
            Problem.CONNECTION_REFUSED,
            Problem.TCP_TIMEOUT,
            Problem.NETWORK_ERROR,  # test_tcp_failures
            Problem.UNKNOWN_HOST,
            Problem.NO_ADDRESS,
            Problem.EGRESS_REFUSED,  # test_dns_failures
            Problem.DNS_TIMEOUT,
            Problem.CERT_NAME,
            Problem.NO_TOKEN,
        }
    )
    assert tested == set(Problem)
