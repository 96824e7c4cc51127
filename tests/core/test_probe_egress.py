"""The egress guard inside the connection test: refused before anything is dialed.

Addresses off this machine are fed through fake resolvers and connectors that record
what they are asked and never open a socket (the suite's network fence would stop them).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailbox_core.bootstrap import open_services
from mailbox_core.checks import MailboxChecker
from mailbox_core.config import CheckSettings, load_settings
from mailbox_core.crypto import SecretBox
from mailbox_core.egress import EgressMode, EgressPolicy
from mailbox_core.probe import ProbeTarget, StepStatus, run_probe
from mailbox_core.schemas import MailboxType
from mailbox_core.service import MailboxService
from tests.conftest import ACTOR, dovecot_imaps, run_cli

PUBLIC = EgressPolicy(EgressMode.PUBLIC)


class Listener:
    """A listening socket on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.stop()


def target(host: str, port: int) -> ProbeTarget:
    return ProbeTarget(MailboxType.IMAP, host, port, "a@example.com", "pw", ssl_enabled=True)


def answer(address: str, port: int) -> tuple[Any, ...]:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
    return (family, socket.SOCK_STREAM, 6, "", sockaddr)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::ffff:127.0.0.1"])
def test_public_mode_connects_to_nothing_on_this_machine(listener: Listener, host: str) -> None:
    result = run_probe(target(host, listener.port), timeout=2, egress=PUBLIC)
    assert not result.ok
    assert result.failed_step is not None and result.failed_step.name == "DNS"
    assert result.summary.startswith("Egress refused: ")
    assert "is a loopback address (this server itself)" in result.summary
    assert result.failed_step.hint == "An admin can allow this network with MAILBOX_EGRESS_ALLOW."
    assert [s.status for s in result.steps][1:] == [StepStatus.SKIPPED] * 5
    assert listener.accepted == 0


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "127.1", "0177.0.0.1"])
def test_numeric_spellings_are_refused_even_in_local_mode(listener: Listener, host: str) -> None:
    result = run_probe(target(host, listener.port), timeout=2)
    assert (
        result.summary == f"Egress refused: {host} is a numeric address in a non-standard spelling."
    )
    assert listener.accepted == 0


def test_the_probe_dials_only_the_address_it_checked() -> None:
    calls: list[str] = []
    dialed: list[str] = []

    def rebinding(host: str, port: int) -> list[tuple[Any, ...]]:
        # A first, public answer that passes the guard, then this machine's loopback.
        calls.append(host)
        return [answer("93.184.215.14" if len(calls) == 1 else "127.0.0.1", port)]

    def connector(address: tuple[Any, ...], timeout: float) -> socket.socket:
        dialed.append(address[4][0])
        raise ConnectionRefusedError(111, "refused by the fake connector")

    result = run_probe(
        target("rebind.example.com", 993),
        timeout=2,
        egress=PUBLIC,
        resolver=rebinding,
        connector=connector,
    )
    assert calls == ["rebind.example.com"], "resolved exactly once"
    assert dialed == ["93.184.215.14"], "only the checked address is dialed"
    assert result.failed_step is not None and result.failed_step.name == "TCP"


@pytest.mark.parametrize(
    "answers, refused",
    [
        (["93.184.215.14", "10.0.0.5"], "10.0.0.5 is a private address"),
        (["169.254.169.254"], "169.254.169.254 is the cloud metadata address"),
        (["fd00:ec2::254"], "fd00:ec2::254 is the cloud metadata address"),
        (["100.64.0.1"], "100.64.0.1 is a private address"),
    ],
)
def test_one_refused_answer_refuses_the_host_before_any_dial(
    answers: list[str], refused: str
) -> None:
    dialed: list[Any] = []

    def resolver(host: str, port: int) -> list[tuple[Any, ...]]:
        return [answer(a, port) for a in answers]

    def connector(address: tuple[Any, ...], timeout: float) -> socket.socket:
        dialed.append(address)
        raise AssertionError("the connector must not be called")

    result = run_probe(
        target("mail.example.com", 993),
        timeout=2,
        egress=PUBLIC,
        resolver=resolver,
        connector=connector,
    )
    assert result.summary == f"Egress refused: {refused}."
    assert dialed == []


# ---------------------------------------------------------------- against Dovecot


@pytest.fixture
def dovecot_mailbox(
    sqlite_engine: Any, key: str, dovecot_server: Any
) -> tuple[MailboxService, int]:
    service = MailboxService(sqlite_engine, SecretBox([key]))
    values = dovecot_imaps(dovecot_server, "Private Dovecot", "alice-Secret-1")
    return service, service.create_mailbox(values, actor=ACTOR).id


@pytest.mark.dovecot
@pytest.mark.parametrize(
    "mode, allow, reached",
    [
        ("public", "", False),
        ("private", "", False),
        ("public", "127.0.0.0/8", True),
        ("private", "127.0.0.1/32,::1/128", True),
        ("off", "", True),
    ],
)
def test_the_private_dovecot_is_reached_only_when_allowed(
    dovecot_mailbox: tuple[MailboxService, int],
    dovecot_server: Any,
    mode: str,
    allow: str,
    reached: bool,
) -> None:
    service, mailbox_id = dovecot_mailbox
    settings = CheckSettings(
        timeout=3, ca_file=str(dovecot_server.ca_file), egress=EgressPolicy.parse(mode, allow)
    )
    result = MailboxChecker(service, settings).check_mailbox(mailbox_id, actor=ACTOR)
    assert result.ok is reached, result.summary
    if not reached:
        assert result.summary.startswith("Egress refused: ")
        assert service.health()[mailbox_id].last_failed_step == "DNS"


@pytest.mark.dovecot
def test_the_command_line_uses_the_egress_setting(tmp_path: Path, dovecot_server: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOX_")}
    env.update(
        MAILBOX_DATA_DIR=str(tmp_path / "data"),
        MAILBOX_CA_FILE=str(dovecot_server.ca_file),
        MAILBOX_EGRESS="public",
    )
    services = open_services(load_settings(env))
    services.mailboxes.create_mailbox(
        dovecot_imaps(dovecot_server, "CLI", "alice-Secret-1"), actor=ACTOR
    )
    refused = run_cli(env, "check", "--all", "--json")
    assert refused.returncode == 1, refused.stderr
    [row] = json.loads(refused.stdout)
    assert row["failed_step"] == "DNS"
    assert row["message"].startswith("Egress refused: ")
    allowed = run_cli({**env, "MAILBOX_EGRESS_ALLOW": "127.0.0.0/8,::1/128"}, "check", "--all")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr


@pytest.mark.dovecot
def test_a_secrets_file_with_sign_in_turns_the_guard_on_for_the_command_line(
    tmp_path: Path, dovecot_server: Any
) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        '[auth]\nredirect_uri = "https://mbx.example.com/oauth2callback"\n'
        'cookie_secret = "0123456789abcdef0123"\n'
        f'[mailbox]\ndata_dir = "{tmp_path / "data"}"\nca_file = "{dovecot_server.ca_file}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOX_")}
    env["MAILBOX_SECRETS_FILE"] = str(secrets)
    services = open_services(load_settings(env, {"mailbox": {"data_dir": str(tmp_path / "data")}}))
    services.mailboxes.create_mailbox(
        dovecot_imaps(dovecot_server, "Hosted", "alice-Secret-1"), actor=ACTOR
    )
    done = run_cli(env, "check", "--all", "--json")
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)[0]["message"].startswith("Egress refused: ")
