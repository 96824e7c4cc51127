"""The connection test against hostile servers on real sockets (no Dovecot needed).

Moved from test_probe.py unchanged; the same verdicts also run through the scripted fake
in test_probe_steps.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailbox_core.probe import ProbeResult, ProbeTarget, run_probe
from mailbox_core.schemas import MailboxType
from tests.support import hostile
from tests.support.dovecot import free_port
from tests.support.tls import make_certificate

pytestmark = [pytest.mark.network]


def hostile_closed_port() -> int:
    return free_port()


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    return {
        "localhost": make_certificate(tmp_path, "local", ["localhost", "127.0.0.1"]),
        "other": make_certificate(tmp_path, "other", ["mail.other.com"]),
    }


@pytest.fixture
def serve() -> Iterator[Any]:
    servers = hostile.Servers()
    yield servers.start
    servers.stop()


TIMEOUT = 1.0


def probe(
    port: int,
    *,
    ssl_enabled: bool = False,
    host: str = "localhost",
    ca_file: str | None = None,
    kind: MailboxType = MailboxType.IMAP,
) -> ProbeResult:
    target = ProbeTarget(kind, host, port, "alice@example.com", "pw", ssl_enabled)
    started = time.monotonic()
    result = run_probe(target, timeout=TIMEOUT, ca_file=ca_file)
    assert time.monotonic() - started < TIMEOUT + 1, "the probe overran its timeout"
    assert not result.ok
    return result


def test_silent_server(serve: Any) -> None:
    port = serve(hostile.silent)
    assert probe(port).summary == f"localhost port {port} sent no greeting within 1 s"


def test_greeting_after_the_timeout(serve: Any) -> None:
    port = serve(hostile.late(TIMEOUT + 0.5))
    assert probe(port).summary == f"localhost port {port} sent no greeting within 1 s"


def test_dribbling_server_is_cut_off_at_the_deadline(serve: Any) -> None:
    assert "within 1 s" in probe(serve(hostile.dribble)).summary


def test_garbage_greeting(serve: Any) -> None:
    port = serve(hostile.garbage)
    result = probe(port)
    assert result.summary.startswith(f"localhost port {port} did not answer like a IMAP server")
    assert "Check Mailbox Type and Port" in (result.failed_step.hint if result.failed_step else "")


def test_plain_server_on_an_ssl_setting(serve: Any) -> None:
    port = serve(hostile.imap_greeting)
    result = probe(port, ssl_enabled=True)
    assert result.summary == f"localhost port {port} does not speak SSL"
    assert result.failed_step is not None and "set SSL Enabled to No" in result.failed_step.hint


def test_ssl_server_with_ssl_disabled(serve: Any, certs: dict[str, Any]) -> None:
    port = serve(hostile.imap_greeting, tls=certs["localhost"])
    result = probe(port)
    assert result.failed_step is not None and result.failed_step.name == "Greeting"
    assert "set SSL Enabled to Yes" in result.failed_step.hint


def test_untrusted_certificate(serve: Any, certs: dict[str, Any]) -> None:
    port = serve(hostile.imap_greeting, tls=certs["localhost"])
    result = probe(port, ssl_enabled=True)
    assert result.summary == (
        "The certificate of localhost is not signed by a trusted "
        "authority (self-signed or private CA)"
    )


def test_hostname_mismatch_names_the_certificate(serve: Any, certs: dict[str, Any]) -> None:
    port = serve(hostile.imap_greeting, tls=certs["other"])
    result = probe(port, ssl_enabled=True, ca_file=str(certs["other"][0]))
    assert result.summary == "Certificate is for mail.other.com, not localhost"


def test_self_signed_allowed_still_checks_the_name(serve: Any, certs: dict[str, Any]) -> None:
    port = serve(hostile.imap_greeting, tls=certs["other"])
    target = ProbeTarget(
        MailboxType.IMAP, "localhost", port, "a@b.co", "pw", True, allow_self_signed=True
    )
    result = run_probe(target, timeout=TIMEOUT)
    assert result.summary == "Certificate is for mail.other.com, not localhost"


def test_connection_refused() -> None:
    port = hostile_closed_port()
    assert probe(port).summary == f"Connection refused by localhost port {port}"


def test_unknown_host() -> None:
    result = probe(993, host="mailbox-manager-test.invalid", ssl_enabled=True)
    assert result.summary == "The host name mailbox-manager-test.invalid could not be found"
    assert [s.status for s in result.steps][1:] == ["skipped"] * 5


def test_a_server_that_never_answers_the_sign_in_is_not_a_refused_password(serve: Any) -> None:
    # Issue 11, D13: the watchdog's abort used to read as "The server refused the password".
    port = serve(hostile.imap_mute_after_greeting)
    target = ProbeTarget(
        MailboxType.IMAP, "localhost", port, "alice@example.com", "pw", allow_plaintext=True
    )
    result = run_probe(target, timeout=TIMEOUT)
    assert result.failed_step is not None and result.failed_step.name == "Sign-in"
    assert result.summary == "No answer to the sign-in within 1 s"
