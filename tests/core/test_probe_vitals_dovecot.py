"""Vital signs against a real Dovecot: quota, backlog, sign-in rules, and read-only proof.

Setup and verification use imaplib (``Dovecot.client``); the checks are the probe's own.
"""

from __future__ import annotations

import imaplib
import re
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mailbox_core.probe import ProbeResult, ProbeTarget, Quota, imap_vitals, run_probe
from mailbox_core.probe.diagnosis import Problem
from mailbox_core.schemas import MailboxType
from tests.support import dovecot

pytestmark = [pytest.mark.dovecot, pytest.mark.network]

USER = "alice@example.com"


def probe(server: Any, kind: str = "IMAP", port: str = "imaps", **changes: Any) -> ProbeResult:
    options: dict[str, Any] = {"connector": changes.pop("connector", None)}
    values: dict[str, Any] = {
        "mailbox_type": MailboxType(kind),
        "host": "localhost",
        "port": server.ports[port],
        "account": USER,
        "password": server.users[USER],
        "ssl_enabled": port.endswith("s"),
        **changes,
    }
    options = {k: v for k, v in options.items() if v is not None}
    return run_probe(ProbeTarget(**values), timeout=5, ca_file=str(server.ca_file), **options)


def message(size: int, subject: str = "filler") -> bytes:
    """A message of exactly ``size`` bytes with CRLF line ends: its virtual size (RFC 822
    size), which quota_vsizes counts; Dovecot stores it with LF, so the file is smaller."""
    head = f"From: sender@example.org\r\nTo: {USER}\r\nSubject: {subject}\r\n\r\n".encode()
    body = size - len(head) - 2
    lines = b"".join(b"x" * 78 + b"\r\n" for _ in range(body // 80))
    return head + lines + b"y" * (body - len(lines)) + b"\r\n"


def stored_bytes(server: Any, user: str = USER) -> int:
    maildir = server.workdir / "mail" / user / "Maildir"
    return sum(p.stat().st_size for sub in ("new", "cur") for p in (maildir / sub).iterdir())


def append(client: imaplib.IMAP4_SSL, data: bytes, flags: str = "", age: float = 0) -> None:
    when = imaplib.Time2Internaldate(time.time() - age)
    status, answer = client.append("INBOX", flags or None, when, data)
    assert status == "OK", answer


def read_then_append(server: Any, *added: tuple[str, float, str]) -> None:
    """Mark the three fixture messages read, then append (subject, age in s, flags)."""
    client = server.client()
    try:
        client.select("INBOX")
        client.store("1:3", "+FLAGS", "\\Seen")
        client.close()
        for subject, age, flags in added:
            append(client, message(2000, subject), flags, age=age)
    finally:
        client.logout()


def flags_and_unseen(server: Any) -> tuple[list[bytes], bytes]:
    """Every message's flags and STATUS (UNSEEN), read with EXAMINE (read-only)."""
    client = server.client()
    try:
        status, unseen = client.status("INBOX", "(MESSAGES UNSEEN)")
        assert status == "OK"
        client.select("INBOX", readonly=True)
        status, flags = client.fetch("1:*", "(FLAGS)")
        assert status == "OK"
        return [f for f in flags if isinstance(f, bytes)], unseen[0]
    finally:
        client.logout()


# ---------------------------------------------------------------- capacity


def test_quota_is_read_as_it_fills(start_dovecot: Any) -> None:
    server = start_dovecot(quota=True)
    fixture = stored_bytes(server)  # the three messages, written with CRLF: their vsize
    client = server.client()
    try:
        # Dovecot reports storage in KiB rounded up: 100 bytes short of 85 KiB reads 85.
        append(client, message(85 * 1024 - 100 - fixture))
        first = probe(server)
        append(client, message(11 * 1024))
        second = probe(server)
        _, root = client.getquotaroot("INBOX")
    finally:
        client.logout()
    assert first.ok and second.ok, (first.summary, second.summary)
    assert first.vitals is not None and second.vitals is not None
    assert first.vitals.quota == Quota(85, 100, 4, 10)
    assert first.vitals.quota.ratio == pytest.approx(0.85)
    assert second.vitals.quota == Quota(96, 100, 5, 10)
    assert second.vitals.quota.ratio == pytest.approx(0.96)
    assert b'"User quota" (STORAGE 96 100 MESSAGE 5 10)' in root[1][0], "imaplib agrees"


def test_a_dovecot_without_imap_quota_has_an_unknown_quota(start_dovecot: Any) -> None:
    result = probe(start_dovecot())
    assert result.ok and result.vitals is not None
    assert result.vitals.quota is None, "unknown, never OK"
    assert result.vitals.backlog is not None and result.vitals.backlog.messages == 3


# ---------------------------------------------------------------- backlog, read-only


def test_backlog_age_and_count_and_nothing_changes(start_dovecot: Any) -> None:
    server = start_dovecot()
    read_then_append(
        server,
        ("read long ago", 3 * 3600, "(\\Seen)"),
        ("waiting 3 h", 3 * 3600, ""),
        ("waiting 2 h", 2 * 3600, ""),
    )
    before = flags_and_unseen(server)
    since = datetime.now(UTC) - timedelta(hours=1)
    results = [probe(server, since=since) for _ in range(2)]
    for result in results:
        assert result.ok, result.summary
        assert result.vitals is not None and result.vitals.backlog is not None
        backlog = result.vitals.backlog
        assert (backlog.messages, backlog.unseen, backlog.arrived_since) == (6, 2, 3)
        assert backlog.oldest_unseen_at is not None
        age = datetime.now(UTC) - backlog.oldest_unseen_at
        assert timedelta(hours=3) <= age < timedelta(hours=3, minutes=1)
    assert flags_and_unseen(server) == before
    assert b"(MESSAGES 6 UNSEEN 2)" in before[1]
    log = server.log()
    assert "Login: user=<alice@example.com>" in log
    assert not re.search(r"imap\(alice@example.com\).*(expunged|deleted)=[1-9]", log)


def test_a_server_without_examines_first_unseen_still_gives_its_age(
    start_dovecot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IMAP4rev2 (RFC 9051) drops EXAMINE's ``[UNSEEN n]``: here as if Dovecot had not sent
    it, so the probe asks Dovecot's SEARCHRES for the first unseen message instead."""
    server = start_dovecot()
    read_then_append(server, ("waiting 3 h", 3 * 3600, ""), ("waiting 1 h", 3600, ""))
    before = flags_and_unseen(server)
    monkeypatch.setattr(imap_vitals, "first_unseen", lambda untagged: None)
    result = probe(server)
    assert result.ok, result.summary
    assert result.vitals is not None and result.vitals.backlog is not None
    backlog = result.vitals.backlog
    assert backlog.oldest_unseen_at is not None and backlog.unseen == 2
    age = datetime.now(UTC) - backlog.oldest_unseen_at
    assert timedelta(hours=3) <= age < timedelta(hours=3, minutes=1)
    assert flags_and_unseen(server) == before, "SEARCH and FETCH INTERNALDATE mark nothing"


def names_and_flags(maildir: Any) -> list[tuple[str, str]]:
    """Each message file's unique name and maildir flags (POP3 moves new/ to cur/ as ":2,")."""
    files = [p.name for sub in ("new", "cur") for p in (maildir / sub).iterdir()]
    return sorted((name.split(":")[0], name.partition(":2,")[2]) for name in files)


def test_pop3_reads_stat_only_and_leaves_the_mailbox_as_it_was(start_dovecot: Any) -> None:
    server = start_dovecot()
    maildir = server.workdir / "mail" / USER / "Maildir"
    before = names_and_flags(maildir)
    result = probe(server, "POP3", "pop3s")
    assert result.ok and result.vitals is not None
    assert result.vitals.quota is None and result.vitals.backlog is not None
    assert result.vitals.backlog.messages == 3
    time.sleep(0.2)  # the QUIT is not waited for; let Dovecot log the session's end
    assert names_and_flags(maildir) == before, "the same messages, no flag set"
    assert re.search(r"pop3\(alice@example.com\).*top=0/0, retr=0/0, del=0/3", server.log())


# ---------------------------------------------------------------- sign-in rules


def unsecured(address: tuple[Any, ...], timeout: float) -> socket.socket:
    """Connect from 127.0.0.2: Dovecot then treats the plain connection as unencrypted."""
    return socket.create_connection(
        address[4][:2], timeout=timeout, source_address=(dovecot.SOURCE_UNSECURED, 0)
    )


RULES = {
    # name: (the change, protocol, port, target changes, verdict, password sent?)
    "auth_mechanisms without plain, imaps": (
        "auth_mechanisms = xoauth2 oauthbearer", "IMAP", "imaps", {},
        Problem.PASSWORD_NOT_OFFERED, False,
    ),
    "disable_plaintext_auth, plain imap": (
        "disable_plaintext_auth = yes", "IMAP", "imap",
        {"allow_plaintext": True, "connector": unsecured},
        Problem.PASSWORD_NEEDS_TLS, False,
    ),
    "disable_plaintext_auth, plain pop3": (
        "disable_plaintext_auth = yes", "POP3", "pop3",
        {"allow_plaintext": True, "connector": unsecured},
        Problem.PASSWORD_NEEDS_TLS, False,
    ),
    "auth_mechanisms without plain, pop3s": (
        # Dovecot keeps USER in CAPA: only PASS's refusal tells (the password went out).
        "auth_mechanisms = xoauth2 oauthbearer", "POP3", "pop3s", {},
        Problem.PASSWORD_NOT_OFFERED, True,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", RULES)
def test_a_server_that_stops_offering_passwords_gets_its_own_verdict(
    start_dovecot: Any, name: str
) -> None:
    change, kind, port, changes, verdict, sent = RULES[name]
    server = start_dovecot()
    before = probe(server, kind, port, **changes)
    assert before.ok, before.summary
    server.reload(change)
    after = probe(server, kind, port, **changes)
    failed = after.failed_step
    assert failed is not None and (failed.name, failed.problem) == ("Sign-in", verdict.value)
    assert before.offer is not None and after.offer is not None
    assert before.offer.password and not (after.offer.password and not sent)
    assert before.offer.summary() != after.offer.summary()
    if verdict is Problem.PASSWORD_NOT_OFFERED:
        assert "no longer accepts password sign-in: switch the mailbox to OAuth" in failed.hint
    else:
        assert failed.hint == "The server offers STARTTLS: set STARTTLS to Yes."
    time.sleep(0.2)
    last = server.log().strip().splitlines()[-1]
    assert ("no auth attempts" in last) != sent, last
    assert server.users[USER] not in server.log()
