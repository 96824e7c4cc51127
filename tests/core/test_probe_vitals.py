"""Vital signs through a scripted server: what is asked, in how many writes, and the parsers.

Every reply here is what a server could send, well-formed or hostile; a value the probe
cannot read is None ("unknown") and the check still passes. No test ever sees the probe
send a command that changes the mailbox.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from mailbox_core.probe import Backlog, Offer, ProbeResult, Quota, run_probe
from mailbox_core.probe import imap_vitals as parse
from mailbox_core.probe.diagnosis import Problem
from mailbox_core.tls import sessions
from tests.core.test_probe_steps import target
from tests.support.fake_transport import (
    POP3_CAPA,
    FakeServer,
    Flood,
    Reply,
    Script,
    Stall,
    imap,
    pop3,
)

SIGNED_IN = "{tag} OK [CAPABILITY IMAP4rev1 QUOTA ESEARCH WITHIN] Logged in"
EXAMINE = (
    "* FLAGS (\\Seen)\n* 5 EXISTS\n* 0 RECENT\n* OK [UNSEEN 4] First unseen.\n"
    "* OK [UIDVALIDITY 1] UIDs valid\n{tag} OK [READ-ONLY] Examine completed."
)
STATUS = "* STATUS INBOX (MESSAGES 5 UNSEEN 2)\n{tag} OK Status completed."
QUOTA = (
    '* QUOTAROOT INBOX "User quota"\n* QUOTA "User quota" (STORAGE 85 100 MESSAGE 2 10)\n'
    "{tag} OK Getquotaroot completed."
)
FETCH = '* 4 FETCH (INTERNALDATE "17-Jul-1996 02:44:25 -0700")\n{tag} OK Fetch completed.'
ESEARCH = '* ESEARCH (TAG "{tag}") COUNT 2\n{tag} OK Search completed.'
SINCE = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
ARRIVED = datetime(1996, 7, 17, 2, 44, 25, tzinfo=timezone(-timedelta(hours=7)))
#: Commands that would change the mailbox (or read bodies); the probe never sends them.
FORBIDDEN = re.compile(r"\b(SELECT|STORE|EXPUNGE|BODY|RFC822|COPY|MOVE|APPEND|RETR|DELE)\b")


@pytest.fixture(autouse=True)
def _no_shared_tls_sessions() -> Iterator[None]:
    sessions.clear()
    yield
    sessions.clear()


def full(**replies: Reply) -> Script:
    """A server with unseen mail, QUOTA and ESEARCH after login, with some replies changed."""
    defaults: dict[str, Reply] = {
        "LOGIN": SIGNED_IN,
        "STATUS": STATUS,
        "EXAMINE": EXAMINE,
        "GETQUOTAROOT": QUOTA,
        "FETCH": FETCH,
        "SEARCH": ESEARCH,
    }
    return imap(**{**defaults, **replies})


def check(script: Script, **changes: Any) -> tuple[ProbeResult, FakeServer]:
    server = FakeServer(script, tls=True)
    result = run_probe(target(script.protocol, **changes), timeout=2.0, **server.options())
    server.wait()
    assert not FORBIDDEN.search(server.received().upper()), server.received()
    return result, server


def read(script: Script, **changes: Any) -> tuple[Quota | None, Backlog]:
    """The vitals of a check that must pass whatever the vitals' replies were."""
    result, _ = check(script, **changes)
    assert result.ok, result.summary
    assert result.vitals is not None and result.vitals.backlog is not None
    return result.vitals.quota, result.vitals.backlog


# ---------------------------------------------------------------- what is asked, and when


def test_every_vital_sign_costs_one_more_write_with_logout_unawaited() -> None:
    result, server = check(full(), since=SINCE)
    assert result.ok
    assert result.vitals is not None
    assert result.vitals.quota == Quota(85, 100, 2, 10)
    assert result.vitals.backlog == Backlog(
        messages=5, unseen=2, oldest_unseen_at=ARRIVED, arrived_since=2
    )
    assert server.commands() == [
        "LOGIN", "STATUS", "EXAMINE", "GETQUOTAROOT", "FETCH", "SEARCH", "LOGOUT",
    ]  # fmt: skip
    first, second = server.connections[0].chunks
    assert first.count(b"\r\n") == 3 and b"a2 STATUS INBOX (MESSAGES UNSEEN)" in first
    assert second.startswith(b"a4 GETQUOTAROOT INBOX\r\na5 FETCH 4 (INTERNALDATE)\r\n")
    assert re.search(rb"a6 SEARCH RETURN \(COUNT\) YOUNGER \d+\r\na7 LOGOUT\r\n$", second)
    assert server.connections[0].turns == 2


#: EXAMINE of an IMAP4rev2 server (RFC 9051): no ``[UNSEEN n]``.
EXAMINE_REV2 = EXAMINE.replace("* OK [UNSEEN 4] First unseen.\n", "")


def test_without_examines_first_unseen_searchres_finds_it_in_the_same_write() -> None:
    script = full(
        LOGIN="{tag} OK [CAPABILITY IMAP4rev1 IMAP4rev2 ESEARCH SEARCHRES] Logged in",
        EXAMINE=EXAMINE_REV2,
        SEARCH='* ESEARCH (TAG "{tag}") MIN 4\n{tag} OK Search completed.',
    )
    result, server = check(script)
    assert result.ok and result.vitals is not None
    assert result.vitals.backlog == Backlog(messages=5, unseen=2, oldest_unseen_at=ARRIVED)
    second = server.connections[0].chunks[1]
    assert second == (
        b"a4 SEARCH RETURN (SAVE MIN) UNSEEN\r\na5 FETCH $ (INTERNALDATE)\r\na6 LOGOUT\r\n"
    )
    assert server.connections[0].turns == 2  # no turn more than with [UNSEEN n]


def test_without_first_unseen_or_searchres_the_oldest_unseen_stays_unknown() -> None:
    script = full(LOGIN="{tag} OK [CAPABILITY IMAP4rev1 ESEARCH] Logged in", EXAMINE=EXAMINE_REV2)
    _, backlog = read(script)
    assert backlog == Backlog(messages=5, unseen=2)  # the age unknown, never guessed
    _, backlog = read(
        full(
            LOGIN="{tag} OK [CAPABILITY IMAP4rev1 ESEARCH SEARCHRES] Logged in",
            EXAMINE=EXAMINE_REV2,
            SEARCH='* ESEARCH (TAG "{tag}")\n{tag} OK Search completed.',  # nothing unseen now
        )
    )
    assert backlog.oldest_unseen_at is None


def test_without_vitals_the_probe_asks_exactly_what_it_asked_before() -> None:
    result, server = check(full(), vitals=False, since=SINCE)
    assert result.ok and result.vitals is None
    assert server.commands() == ["LOGIN", "EXAMINE", "LOGOUT"]
    assert server.connections[0].turns == 1


def test_nothing_unseen_and_no_quota_asks_nothing_more() -> None:
    quota, backlog = read(imap(STATUS="* STATUS INBOX (MESSAGES 3 UNSEEN 0)\n{tag} OK done"))
    assert quota is None, "no QUOTA capability: unknown, never OK"
    assert backlog == Backlog(messages=3, unseen=0)


def test_quota_offered_before_login_is_asked_with_the_sign_in() -> None:
    caps = "IMAP4rev1 SASL-IR AUTH=PLAIN QUOTA"  # Gmail lists QUOTA before login
    script = full(LOGIN="{tag} OK Logged in", FETCH="{tag} OK nothing")
    script = Script("IMAP", f"* OK [CAPABILITY {caps}] Hi.", script.replies)
    result, server = check(script)
    assert result.vitals is not None and result.vitals.quota == Quota(85, 100, 2, 10)
    assert server.commands() == ["LOGIN", "STATUS", "GETQUOTAROOT", "EXAMINE", "FETCH", "LOGOUT"]


def test_without_esearch_or_within_search_since_counts_the_numbers() -> None:
    numbers = " ".join(str(n) for n in range(1, 5001))
    script = full(
        LOGIN="{tag} OK [CAPABILITY IMAP4rev1 QUOTA] Logged in",
        SEARCH=f"* SEARCH {numbers}\n{{tag}} OK Search completed.",
    )
    result, server = check(script, since=SINCE)
    assert result.vitals is not None and result.vitals.backlog is not None
    assert result.vitals.backlog.arrived_since == 5000
    assert "a6 SEARCH SINCE 1-Mar-2024\r\n" in server.received()


def test_an_answer_that_comes_under_an_earlier_command_is_still_read() -> None:
    # Dovecot sends a pipelined SEARCH's ESEARCH before the FETCH's tagged end.
    script = full(
        FETCH=FETCH.replace("{tag} OK", '* ESEARCH (TAG "a6") COUNT 7\n{tag} OK'),
        SEARCH="{tag} OK Search completed.",
    )
    _, backlog = read(script, since=SINCE)
    assert (backlog.oldest_unseen_at, backlog.arrived_since) == (ARRIVED, 7)


def test_an_empty_search_counts_zero() -> None:
    script = full(LOGIN="{tag} OK Logged in", SEARCH="* SEARCH\n{tag} OK Search completed.")
    _, backlog = read(script, since=SINCE)
    assert backlog.arrived_since == 0


def test_oauth_sign_in_reads_the_same_vitals() -> None:
    script = full(AUTHENTICATE=SIGNED_IN)
    result, server = check(script, token_source=lambda: "ya29.token")
    assert result.vitals is not None and result.vitals.quota == Quota(85, 100, 2, 10)
    assert server.commands() == [
        "AUTHENTICATE", "STATUS", "EXAMINE", "GETQUOTAROOT", "FETCH", "LOGOUT",
    ]  # fmt: skip


def test_pop3_reads_stat_only_and_knows_no_quota() -> None:
    result, server = check(pop3())
    assert result.ok and result.vitals is not None
    assert result.vitals.quota is None
    assert result.vitals.backlog == Backlog(messages=3)
    assert server.commands() == ["CAPA", "USER", "PASS", "STAT", "QUIT"]


def test_pop3_without_user_signs_in_with_auth_plain() -> None:
    result, server = check(pop3(CAPA="+OK\nPIPELINING\nSASL PLAIN\n.", AUTH="+OK Logged in."))
    assert result.ok, result.summary
    assert server.commands() == ["CAPA", "AUTH", "STAT", "QUIT"]
    assert "USER" not in server.received()


def test_imap_with_only_authenticate_login_answers_both_prompts() -> None:
    prompts = iter(["+ UGFzc3dvcmQ6", "{tag} OK Logged in"])  # "Password:", then done
    script = imap(
        greeting="* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=LOGIN] Hi.",
        AUTHENTICATE="+ VXNlcm5hbWU6",  # "Username:"
        **{"+": lambda tag: next(prompts)},
    )
    result, server = check(script)
    assert result.ok, result.summary
    assert server.commands() == ["AUTHENTICATE", "", "", "STATUS", "EXAMINE", "LOGOUT"]
    assert "YWxpY2VAZXhhbXBsZS5jb20=\r\n" in server.received()  # the account, base64


# ---------------------------------------------------------------- hostile and malformed replies


BAD_REPLIES: dict[str, tuple[str, Reply, str]] = {
    # name: (command, its reply, which value becomes unknown)
    "quota refused": ("GETQUOTAROOT", "{tag} NO Quota not available", "quota"),
    "quota without parens": ("GETQUOTAROOT", '* QUOTA "" STORAGE 85 100\n{tag} OK', "storage"),
    "quota usage too big": (
        "GETQUOTAROOT",
        '* QUOTA "" (STORAGE 9999999999999999999999 100)\n{tag} OK',
        "storage",
    ),
    "quota resource cut short": ("GETQUOTAROOT", '* QUOTA "" (STORAGE 85)\n{tag} OK', "storage"),
    "quota limit not a number": (
        "GETQUOTAROOT",
        '* QUOTA "" (STORAGE 85 lots)\n{tag} OK',
        "storage",
    ),
    "quota flood": ("GETQUOTAROOT", Flood(b"* QUOTA x (STORAGE 1 2)\r\n"), "quota"),
    "status without parens": ("STATUS", "* STATUS INBOX MESSAGES 5 UNSEEN 2\n{tag} OK", "unseen"),
    "status negative": ("STATUS", "* STATUS INBOX (MESSAGES 5 UNSEEN -2)\n{tag} OK", "unseen"),
    "status huge": (
        "STATUS",
        "* STATUS INBOX (UNSEEN 123456789012345678901234567890)\n{tag} OK",
        "unseen",
    ),
    "status refused": ("STATUS", "{tag} BAD Unknown command", "unseen"),
    "internaldate not a date": (
        "FETCH",
        '* 4 FETCH (INTERNALDATE "31-Feb-1996 02:44:25 -0700")\n{tag} OK',
        "oldest",
    ),
    "internaldate zone of a day": (
        "FETCH",
        '* 4 FETCH (INTERNALDATE "17-Jul-1996 02:44:25 +2400")\n{tag} OK',
        "oldest",
    ),
    "internaldate as a literal": (
        "FETCH",
        "* 4 FETCH (INTERNALDATE {{26}}\n17-Jul-1996 02:44:25 -0700)\n{tag} OK",
        "oldest",
    ),
    "internaldate of another message": (
        "FETCH",
        '* 1 FETCH (INTERNALDATE "17-Jul-1996 02:44:25 -0700")\n{tag} OK',
        "oldest",
    ),
    "internaldate flood": ("FETCH", Flood(b"x" * 4096, b"* 4 FETCH (INTERNALDATE "), "oldest"),
    "search not numbers": ("SEARCH", "* SEARCH 1 2 x 4\n{tag} OK", "arrived"),
    "search number too long": ("SEARCH", "* SEARCH 1 123456789012\n{tag} OK", "arrived"),
    "search flood": ("SEARCH", Flood(b"1 2 3 4 5 6 7 8 9 ", b"* SEARCH "), "arrived"),
    "esearch of another tag": ("SEARCH", '* ESEARCH (TAG "zz") COUNT 9\n{tag} OK', "arrived"),
    "stall after examine": ("FETCH", Stall(), "oldest"),
}


def unknown(quota: Quota | None, backlog: Backlog, which: str) -> bool:
    values = {
        "quota": quota,
        "storage": quota and quota.storage_used,
        "unseen": backlog.unseen,
        "oldest": backlog.oldest_unseen_at,
        "arrived": backlog.arrived_since,
    }
    return values[which] is None


@pytest.mark.parametrize("name", BAD_REPLIES)
def test_a_hostile_vitals_reply_is_unknown_and_the_check_still_passes(name: str) -> None:
    command, reply, which = BAD_REPLIES[name]
    quota, backlog = read(full(**{command: reply}), since=SINCE)
    assert unknown(quota, backlog, which), (quota, backlog)
    assert backlog.messages == 5, "what was read before stays read"


def test_a_literal_mailbox_name_in_status_and_quota_is_skipped_and_read_on() -> None:
    script = full(
        STATUS="* STATUS {{5}}\nINBOX (MESSAGES 5 UNSEEN 2)\n{tag} OK",
        GETQUOTAROOT="* QUOTA {{3}}\nabc (STORAGE 85 100)\n{tag} OK",
    )
    quota, backlog = read(script)
    assert quota == Quota(85, 100, None, None)
    assert backlog.unseen == 2


def test_a_flood_in_the_status_answer_ends_within_the_budget() -> None:
    # STATUS shares the first write with EXAMINE: its flood leaves EXAMINE unread.
    result, _ = check(full(STATUS=Flood(b"* STATUS INBOX (MESSAGES 1)\r\n")))
    assert result.failed_step is not None
    assert (result.failed_step.name, result.failed_step.problem) == ("Mailbox", "too much")


def test_of_several_quota_roots_each_resource_reads_its_fullest() -> None:
    lines = [
        b'QUOTAROOT INBOX "user" "domain"',
        b'QUOTA "user" (STORAGE 10 100 MESSAGE 9 10)',
        b'QUOTA "domain" (STORAGE 90 100 MESSAGE 1 1000)',
    ]
    assert parse.quota(lines) == Quota(90, 100, 9, 10)
    assert parse.quota([b'QUOTA "" ()']) == Quota()
    assert parse.quota([b'QUOTA "(odd" (STORAGE 1 2)']) == Quota(1, 2, None, None)


@pytest.mark.parametrize(
    "text, expected",
    [
        (b"17-Jul-1996 02:44:25 -0700", ARRIVED),
        (b" 7-jul-1996 02:44:25 +0000", datetime(1996, 7, 7, 2, 44, 25, tzinfo=UTC)),
        (b"17-Jul-1996 02:44:25", None),
        (b"17-Jly-1996 02:44:25 -0700", None),
        (b"17-Jul-1996 25:44:25 -0700", None),
        (b"00-Jul-0000 02:44:25 -0700", None),
        (b"17-Jul-1996 02:44:25 -0700 trailing", None),
    ],
)
def test_internaldate_parses_only_what_rfc_3501_writes(
    text: bytes, expected: datetime | None
) -> None:
    assert parse.parse_date(text) == expected


def test_the_search_counter_counts_across_pieces_and_keeps_no_list() -> None:
    counter = parse.Counter()
    for piece in (b" 1 2 3", b"4 5", b"6 ", b"7\r", b"\n"):
        counter.feed(piece)
    assert counter.end() == 5  # 1, 2, 34, 56, 7: numbers cut between pieces stay whole
    hostile = parse.Counter()
    hostile.feed(b" " + b"9" * 50)
    assert hostile.end() is None


# ---------------------------------------------------------------- the offer


def test_the_offer_of_an_implicit_tls_server_is_its_greeting() -> None:
    result, _ = check(imap())
    caps = frozenset(
        ["IMAP4REV1", "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE", "STARTTLS", "AUTH=PLAIN"]
    )
    assert result.offer == Offer(
        before_tls=frozenset(),
        after_tls=caps | {"AUTH=XOAUTH2"},
        mechanisms=frozenset({"PLAIN", "XOAUTH2"}),
        login_disabled=False,
        starttls=False,
        password=True,
    )


def test_the_offer_records_both_sides_of_starttls_even_when_sign_in_fails() -> None:
    inside = "* CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=XOAUTH2\n{tag} OK done"
    server = FakeServer(imap(CAPABILITY=inside), tls=False)
    result = run_probe(target("IMAP", "starttls"), timeout=2.0, **server.options())
    server.wait()
    assert result.failed_step is not None
    assert result.failed_step.problem == Problem.PASSWORD_NOT_OFFERED
    offer = result.offer
    assert offer is not None
    assert "STARTTLS" in offer.before_tls and "AUTH=PLAIN" in offer.before_tls
    assert offer.after_tls == frozenset({"IMAP4REV1", "LOGINDISABLED", "AUTH=XOAUTH2"})
    assert offer.mechanisms == frozenset({"XOAUTH2"})
    assert offer.login_disabled and offer.starttls and not offer.password
    assert offer.summary() == "XOAUTH2 · LOGINDISABLED · STARTTLS · no password sign-in"
    assert "alice-Secret-1" not in server.received()
    assert "LOGIN" not in server.commands() and "AUTHENTICATE" not in server.commands()


def test_pop3_offer_reads_capa_user_and_sasl() -> None:
    result, _ = check(pop3())
    assert result.offer is not None
    assert result.offer.mechanisms == frozenset({"PLAIN", "XOAUTH2"})
    assert {"USER", "PIPELINING", "SASL", "SASL=PLAIN"} <= result.offer.after_tls
    assert result.offer.password and not result.offer.login_disabled


def test_a_pop3_server_without_capa_is_assumed_to_take_user() -> None:
    result, _ = check(pop3(CAPA="-ERR Unknown command."))
    assert result.ok and result.offer is not None
    assert result.offer.password and result.offer.after_tls == frozenset()


def test_an_endless_capability_answer_leaves_no_offer() -> None:
    script = imap(greeting="* OK Hi.", CAPABILITY=Flood(b"* CAPABILITY " + b"X " * 1000 + b"\r\n"))
    result, _ = check(script)
    assert result.failed_step is not None and result.failed_step.name == "Greeting"
    assert result.offer is None


def test_pop3_capa_with_sasl_plain_but_no_user_offers_a_password() -> None:
    result, _ = check(pop3(CAPA=POP3_CAPA.replace("USER\n", ""), AUTH="+OK Logged in."))
    assert result.ok and result.offer is not None
    assert result.offer.login_disabled and result.offer.password
