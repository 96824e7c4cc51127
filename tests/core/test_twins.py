"""Same mailbox twice: flagged on save and in the list, by host name and, where both
resolved, by address — through an injected resolver, never real DNS (SQLite, PostgreSQL)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from sqlalchemy import Engine

from mailbox_core.crypto import SecretBox
from mailbox_core.egress import EgressMode, EgressPolicy
from mailbox_core.listing import MailboxFilter, MailboxQuery
from mailbox_core.service import MailboxService
from mailbox_core.twins import Twin
from tests.conftest import ACTOR, mailbox_data

#: What the injected resolver knows: two names of one server, and another server.
ZONE = {
    "imap.a.example": ["203.0.113.25"],
    "mail.a.example": ["203.0.113.25"],
    "pop.b.example": ["198.51.100.9"],
}


class Resolver:
    """``getaddrinfo`` in shape, answered from ZONE; a name it does not know fails as DNS."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.down = False

    def __call__(self, host: str, port: int) -> list[tuple[Any, ...]]:
        self.asked.append(host)
        if self.down or host not in ZONE:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in ZONE[host]]


@pytest.fixture
def resolver() -> Resolver:
    return Resolver()


@pytest.fixture
def service(engine: Engine, key: str, resolver: Resolver) -> MailboxService:
    return MailboxService(engine, SecretBox([key]), resolver=resolver)


def save(service: MailboxService, name: str, host: str, account: str, **extra: Any) -> int:
    values = mailbox_data(name=name, host=host, account=account, **extra)
    return service.create_mailbox(values, actor=ACTOR).id


def test_two_names_of_one_server_are_the_same_mailbox(
    service: MailboxService, resolver: Resolver
) -> None:
    first = save(service, "IMAP desk", "imap.a.example", "Desk@a.example", mailbox_type="IMAP")
    second = save(service, "POP3 desk", "mail.a.example", "desk@A.example")
    assert resolver.asked == ["imap.a.example", "mail.a.example"]
    assert service.twins_of(second) == [Twin(first, "IMAP desk")]
    assert service.twins_of(first) == [Twin(second, "POP3 desk")]


def test_host_names_match_in_any_case_and_with_a_trailing_dot(service: MailboxService) -> None:
    first = save(service, "One", "mx.unknown.example", "desk@a.example")  # resolves to nothing
    second = save(service, "Two", "MX.Unknown.Example.", "DESK@a.example", port=995)
    assert service.twins_of(second) == [Twin(first, "One")]


def test_other_accounts_and_other_servers_are_not_the_same(service: MailboxService) -> None:
    save(service, "Desk", "imap.a.example", "desk@a.example")
    other_account = save(service, "Sales", "imap.a.example", "sales@a.example")
    other_server = save(service, "Desk B", "pop.b.example", "desk@a.example")
    assert service.twins_of(other_account) == []
    assert service.twins_of(other_server) == []


def test_dns_down_never_fails_a_save_and_compares_by_name(
    service: MailboxService, resolver: Resolver
) -> None:
    first = save(service, "One", "imap.a.example", "desk@a.example")
    resolver.down = True
    second = save(service, "Two", "mail.a.example", "desk@a.example")  # saved all the same
    assert service.twins_of(second) == []  # two names, addresses not known: not flagged
    third = save(service, "Three", "imap.a.example", "desk@a.example")
    assert service.twins_of(third) == [Twin(first, "One")]


def test_an_edit_looks_the_new_host_up_and_flags_it(
    service: MailboxService, resolver: Resolver
) -> None:
    first = save(service, "One", "imap.a.example", "desk@a.example")
    second = save(service, "Two", "pop.b.example", "desk@a.example")
    assert service.twins_of(second) == []
    version = service.get_mailbox(second).version
    values = {**mailbox_data(name="Two", account="desk@a.example"), "host": "mail.a.example"}
    service.update_mailbox(second, values, expected_version=version, actor=ACTOR)
    assert resolver.asked[-1] == "mail.a.example"
    assert service.twins_of(second) == [Twin(first, "One")]


def test_the_egress_guard_s_refusal_stores_no_address(engine: Engine, key: str) -> None:
    def private(host: str, port: int) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    guarded = MailboxService(
        engine, SecretBox([key]), resolver=private, egress=EgressPolicy(EgressMode.PUBLIC)
    )
    save(guarded, "One", "imap.a.example", "desk@a.example")
    second = save(guarded, "Two", "mail.a.example", "desk@a.example")
    assert guarded.twins_of(second) == []  # both "resolved" to 10.1.2.3, but it was refused


def test_the_form_asks_before_saving_without_a_lookup(
    service: MailboxService, resolver: Resolver
) -> None:
    first = save(service, "One", "imap.a.example", "desk@a.example")
    asked = len(resolver.asked)
    assert service.same_mailbox(host="IMAP.a.example", account="Desk@a.example") == [
        Twin(first, "One")
    ]
    assert service.same_mailbox(host="imap.a.example", account="other@a.example") == []
    assert service.same_mailbox(host="", account="desk@a.example") == []
    # Editing the mailbox itself: it is not its own twin.
    assert (
        service.same_mailbox(host="imap.a.example", account="desk@a.example", mailbox_id=first)
        == []
    )
    second = save(service, "Two", "mail.a.example", "desk@a.example")
    # The edited mailbox's stored addresses count while its Host is unchanged.
    assert service.same_mailbox(
        host="mail.a.example", account="desk@a.example", mailbox_id=second
    ) == [Twin(first, "One")]
    assert len(resolver.asked) == asked + 1  # only the save of "Two" looked anything up


def test_the_list_flags_and_filters_twins_in_sql(service: MailboxService) -> None:
    first = save(service, "One", "imap.a.example", "desk@a.example")
    alone = save(service, "Alone", "imap.a.example", "sales@a.example")
    second = save(service, "Two", "mail.a.example", "desk@a.example")
    third = save(service, "Three", "IMAP.A.EXAMPLE", "desk@a.example")
    rows = {r.id: r.twin_of for r in service.list_view(MailboxQuery()).page.rows}
    assert rows == {first: second, alone: None, second: first, third: first}
    flagged = service.list_view(MailboxQuery(filter=MailboxFilter(twins=True)))
    assert [r.id for r in flagged.page.rows] == [first, second, third]
    assert flagged.page.matching == 3
    assert service.matching_ids(MailboxFilter(twins=True, search="three")) == [third]
