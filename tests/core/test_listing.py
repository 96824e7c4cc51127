"""The list in SQL: search, filters, sort and paging as a table of cases, on SQLite and
PostgreSQL; counts by aggregate; unreadable secrets by key ID; "all matching" exactly."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from mailbox_core import service as service_module
from mailbox_core.access import AccessDenied, Actor, Role
from mailbox_core.crypto import SecretBox, generate_key
from mailbox_core.db import upgrade
from mailbox_core.errors import SelectionChanged
from mailbox_core.listing import (
    AuditFilter,
    HealthFilter,
    ListSummary,
    MailboxFilter,
    MailboxQuery,
    OAuthFilter,
    SortKey,
    VitalFilter,
)
from mailbox_core.models import MailboxCheck
from mailbox_core.schemas import MailboxType, Status
from mailbox_core.service import MailboxService
from tests.conftest import ACTOR, mailbox_data

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

#: name -> (form values, last check: (minutes ago, ok, message count) or None)
FLEET: dict[str, tuple[dict[str, Any], tuple[int, bool, int | None] | None]] = {
    "Alpha Support": (
        mailbox_data(
            "password",
            name="Alpha Support",
            host="pop.acme.example",
            account="alpha@acme.example",
            comments="Ärger im Büro",
        ),
        (10, True, 5),
    ),
    "beta helpdesk": (
        mailbox_data("gmail", name="beta helpdesk", account="beta@gmail.com"),
        (5, False, None),
    ),
    "Gamma 100%_done": (
        mailbox_data(
            "password",
            name="Gamma 100%_done",
            mailbox_type="IMAP",
            host="mail.gamma.example",
            port=143,
            status="Not Active",
        ),
        (20, True, 7),
    ),
    "delta": (
        mailbox_data("password", name="delta", host="pop.delta.example", comments="Escalations"),
        None,
    ),
    "Epsilon": (mailbox_data("office365_secret", name="Epsilon"), (1, False, None)),
    "zeta": (
        mailbox_data(
            "unknown_provider", name="zeta", host="mail.zeta.example", status="Not Active"
        ),
        None,
    ),
}
A, B, G, D, E, Z = FLEET  # in ID order: 1..6


@pytest.fixture
def fleet(service: MailboxService) -> dict[str, int]:
    ids = {name: service.create_mailbox(v, actor=ACTOR).id for name, (v, _) in FLEET.items()}
    checks = [
        MailboxCheck(
            mailbox_id=ids[name],
            started_at=NOW - timedelta(minutes=ago),
            ok=ok,
            failed_step=None if ok else "Sign-in",
            message="Signed in" if ok else "The server refused the password",
            latency_ms=10,
            message_count=count,
        )
        for name, (_, health) in FLEET.items()
        if health is not None
        for ago, ok, count in [health]
    ]
    service.record_checks(checks)
    return ids


def names(service: MailboxService, query: MailboxQuery) -> list[str]:
    return [row.name for row in service.list_view(query).page.rows]


F = MailboxFilter
Q = MailboxQuery
CASES: list[tuple[str, MailboxQuery, list[str]]] = [
    ("everything, by ID", Q(), [A, B, G, D, E, Z]),
    ("search a name, any case", Q(F(search="ALPHA SUPP")), [A]),
    ("search a host", Q(F(search="acme.EXAMPLE")), [A]),
    ("search an account", Q(F(search="gmail.com")), [B]),
    ("search comments, Unicode case", Q(F(search="ÄRGER")), [A]),
    ("search with spaces around", Q(F(search="  escalations ")), [D]),
    ("% is a character, not a wildcard", Q(F(search="%")), [G]),
    ("_ is a character, not a wildcard", Q(F(search="0%_d")), [G]),
    ("search matching nothing", Q(F(search="no such thing")), []),
    ("a match never spans two fields", Q(F(search="supportpop")), []),
    ("status Active", Q(F(status=Status.ACTIVE)), [A, B, D, E]),
    ("status Not Active", Q(F(status=Status.NOT_ACTIVE)), [G, Z]),
    ("type POP3", Q(F(mailbox_type=MailboxType.POP3)), [A, D]),
    ("no OAuth", Q(F(oauth=OAuthFilter.NONE)), [A, G, D]),
    ("OAuth Gmail", Q(F(oauth=OAuthFilter.GMAIL)), [B]),
    ("OAuth Office365", Q(F(oauth=OAuthFilter.OFFICE365)), [E]),
    ("OAuth Unknown", Q(F(oauth=OAuthFilter.UNKNOWN)), [Z]),
    ("health OK", Q(F(health=HealthFilter.OK)), [A, G]),
    ("health failing", Q(F(health=HealthFilter.FAILING)), [B, E]),
    ("never checked", Q(F(health=HealthFilter.NOT_CHECKED)), [D, Z]),
    ("active and failing", Q(F(status=Status.ACTIVE, health=HealthFilter.FAILING)), [B, E]),
    ("IMAP and a search", Q(F(mailbox_type=MailboxType.IMAP, search=".example")), [G, Z]),
    ("by name, casefolded", Q(sort=SortKey.NAME), [A, B, D, E, G, Z]),
    ("by name, descending", Q(sort=SortKey.NAME, descending=True), [Z, G, E, D, B, A]),
    ("by state: failing first", Q(sort=SortKey.STATE), [B, E, D, A, G, Z]),
    ("by last check, never last", Q(sort=SortKey.LAST_CHECK), [G, A, B, E, D, Z]),
    (
        "by last check desc, never last",
        Q(sort=SortKey.LAST_CHECK, descending=True),
        [E, B, A, G, Z, D],
    ),
    (
        "by messages desc, empty last",
        Q(sort=SortKey.MESSAGES, descending=True),
        [G, A, Z, E, D, B],
    ),
    ("by port, ties by ID", Q(sort=SortKey.PORT), [A, D, G, Z, B, E]),
    ("by OAuth label", Q(sort=SortKey.OAUTH), [B, A, G, D, E, Z]),
    ("page 2 of 2-row pages", Q(page=2, page_size=2), [G, D]),
    ("last page", Q(page=3, page_size=2), [E, Z]),
    ("past the end: the last page", Q(page=9, page_size=2), [E, Z]),
    ("a page of a sorted filter", Q(F(status=Status.ACTIVE), SortKey.NAME, True, 2, 2), [B, A]),
]


@pytest.mark.parametrize(("case", "query", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_list_finds_filters_sorts_and_pages_in_sql(
    service: MailboxService,
    fleet: dict[str, int],
    case: str,
    query: MailboxQuery,
    expected: list[str],
) -> None:
    assert names(service, query) == expected


def test_the_page_says_how_many_match_and_which_page_it_is(
    service: MailboxService, fleet: dict[str, int]
) -> None:
    view = service.list_view(Q(F(status=Status.ACTIVE), page=7, page_size=3))
    assert (view.page.matching, view.page.pages, view.page.page) == (4, 2, 2)
    assert [r.name for r in view.page.rows] == [E]


def test_the_summary_counts_by_aggregate(service: MailboxService, fleet: dict[str, int]) -> None:
    summary = service.list_view(Q(F(search="nothing matches this"))).summary
    assert summary == ListSummary(
        total=6, active=4, healthy=1, failing=2, not_checked=1, unreadable=0
    )
    assert summary.inactive == 2


def test_the_summary_counts_each_sign_as_its_filter_finds_it(
    service: MailboxService, fleet: dict[str, int], engine: Engine
) -> None:
    monitor = [  # (mailbox, quota_level, backlog_over, offer changed, password offered)
        (A, 90, True, None, False),  # a password mailbox the server stopped taking passwords for
        (B, 80, False, NOW, False),  # Gmail signs in with a token: no password lost
        (G, None, True, None, None),  # inactive still shows its badges
        (D, None, False, NOW, True),
        (Z, None, False, None, None),
    ]
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM mailbox_monitor"))  # the checks' rows, made anew
        for name, level, over, changed, offered in monitor:
            connection.execute(
                text(
                    "INSERT INTO mailbox_monitor (mailbox_id, signin_ok, backoff_level,"
                    " pause_level, alert_open, alert_sent, backlog_alerted, vitals_at,"
                    " quota_level, backlog_over, offer_changed_at, password_offered)"
                    " VALUES (:id, false, 0, 0, false, false, false, :at, :level, :over,"
                    " :changed, :offered)"
                ),
                {"id": fleet[name], "at": NOW, "level": level, "over": over,
                 "changed": changed, "offered": offered},
            )  # fmt: skip
    summary = service.list_view(Q()).summary
    assert summary.signs == {
        VitalFilter.NEAR_FULL: 2,
        VitalFilter.BACKLOG: 2,
        VitalFilter.RULES_CHANGED: 2,
        VitalFilter.NO_PASSWORD: 1,
    }
    for sign, number in summary.signs.items():  # the summary's link shows what it counted
        assert service.list_view(Q(F(vital=sign))).page.matching == number, sign
    with engine.begin() as connection:
        connection.execute(text("UPDATE mailbox_monitor SET password_offered = true"))
    assert VitalFilter.NO_PASSWORD not in service.list_view(Q()).summary.signs  # none: not shown


def test_rows_carry_health_and_no_secret(service: MailboxService, fleet: dict[str, int]) -> None:
    [row] = service.list_view(Q(F(search="beta"))).page.rows
    assert (row.state.value, row.oauth, row.last_failed_step) == ("Failing", "Gmail", "Sign-in")
    assert row.last_message == "The server refused the password"
    assert not [f for f in row._fields if "secret" in f or "password" in f or "token" in f]
    assert "gAAAA" not in repr(row), "a Fernet token in a row"


def test_a_stored_secret_always_names_its_key(service: MailboxService, engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError

    service.create_mailbox(mailbox_data("password"), actor=ACTOR)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE mailbox SET password_key_id = NULL"))


def test_the_list_decrypts_nothing(
    service: MailboxService, fleet: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the list opened a secret")

    for name in ("decrypt", "decrypt_or_none", "can_decrypt", "key_id_of", "rotate"):
        monkeypatch.setattr(SecretBox, name, refuse)
    view = service.list_view(Q(F(unreadable=True)))
    assert view.summary.total == 6 and view.page.rows == []


# ---------------------------------------------------------------- unreadable, by key ID


def test_secrets_of_another_key_are_counted_and_named_without_decrypting(
    engine: Engine, key: str
) -> None:
    MailboxService(engine, SecretBox([key])).create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    MailboxService(engine, SecretBox([key])).create_mailbox(
        mailbox_data("password", name="Password one", password="pw"), actor=ACTOR
    )
    other = generate_key()
    stranger = MailboxService(engine, SecretBox([other]))
    stranger.create_mailbox(mailbox_data("office365_secret"), actor=ACTOR)
    assert stranger.list_view(Q()).summary.unreadable == 2
    assert stranger.unreadable_names() == [(1, "Gmail helpdesk"), (2, "Password one")]
    assert names(stranger, Q(F(unreadable=True))) == ["Gmail helpdesk", "Password one"]
    assert MailboxService(engine, SecretBox([key])).list_view(Q()).summary.unreadable == 1
    both = MailboxService(engine, SecretBox([other, key]))
    assert both.list_view(Q()).summary.unreadable == 0
    both.rotate_keys(actor=ACTOR)  # every secret now under `other`: the key IDs follow
    assert MailboxService(engine, SecretBox([other])).list_view(Q()).summary.unreadable == 0
    assert MailboxService(engine, SecretBox([key])).list_view(Q()).summary.unreadable == 3


def test_a_secret_of_unknown_key_counts_until_a_configured_key_opens_it(
    engine: Engine, key: str
) -> None:
    service = MailboxService(engine, SecretBox([key]))
    service.create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    with engine.begin() as connection:  # as migration 0007 leaves a mailbox saved before it
        connection.execute(
            text("UPDATE mailbox SET client_secret_key_id = '?', refresh_token_key_id = '?'")
        )
    assert service.list_view(Q()).summary.unreadable == 1, "unknown is not known to be readable"
    assert MailboxService(engine, SecretBox([generate_key()])).identify_keys() == 0
    assert service.list_view(Q()).summary.unreadable == 1
    assert service.identify_keys() == 2
    assert service.list_view(Q()).summary.unreadable == 0
    assert service.identify_keys() == 0, "identified once"


def test_a_rotated_refresh_token_records_the_key_that_made_it(engine: Engine, key: str) -> None:
    from mailbox_core.crypto import key_id

    mailbox = MailboxService(engine, SecretBox([key])).create_mailbox(
        mailbox_data("gmail"), actor=ACTOR
    )
    newer = generate_key()
    rotating = MailboxService(engine, SecretBox([newer, key]))
    old = mailbox_data("gmail")["refresh_token"]
    assert rotating.replace_refresh_token(mailbox.id, "1//rotated", replaces=old)
    with engine.connect() as connection:
        ids = connection.execute(
            text("SELECT client_secret_key_id, refresh_token_key_id FROM mailbox")
        ).one()
    assert tuple(ids) == (key_id(key), key_id(newer))
    assert MailboxService(engine, SecretBox([newer])).list_view(Q()).summary.unreadable == 1


# ---------------------------------------------------------------- all matching


def test_all_matching_changes_exactly_the_filtered_set(
    service: MailboxService, fleet: dict[str, int]
) -> None:
    failing = F(status=Status.ACTIVE, health=HealthFilter.FAILING)
    assert service.matching_ids(failing) == [fleet[B], fleet[E]]
    assert service.set_status_matching(failing, Status.NOT_ACTIVE, expected=2, actor=ACTOR) == 2
    statuses = {m.name: m.status for m in service.list_mailboxes()}
    assert [n for n, s in statuses.items() if s is Status.ACTIVE] == [A, D]
    assert service.delete_matching(F(status=Status.NOT_ACTIVE), expected=4, actor=ACTOR) == 4
    assert [m.name for m in service.list_mailboxes()] == [A, D]
    assert {e.action for e in service.list_audit()[:4]} == {"deleted"}


def test_all_matching_refuses_when_the_count_moved_on(
    service: MailboxService, fleet: dict[str, int]
) -> None:
    where = F(search="example")
    confirmed = len(service.matching_ids(where))
    service.create_mailbox(mailbox_data("password", name="Late arrival"), actor=ACTOR)
    with pytest.raises(SelectionChanged) as caught:
        service.delete_matching(where, expected=confirmed, actor=ACTOR)
    assert (caught.value.expected, caught.value.found) == (confirmed, confirmed + 1)
    assert service.count_mailboxes() == 7


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR])
def test_deleting_all_matching_needs_an_admin(
    service: MailboxService, fleet: dict[str, int], role: Role
) -> None:
    with pytest.raises(AccessDenied):
        service.delete_matching(F(), expected=6, actor=Actor("someone@corp.example", role))
    assert service.count_mailboxes() == 6


def test_bulk_changes_work_in_chunks_all_or_nothing(
    service: MailboxService, fleet: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "CHUNK", 2)
    ids = list(fleet.values())
    assert service.set_status(ids, Status.NOT_ACTIVE, actor=ACTOR) == 4
    assert service.delete_mailboxes(ids[:5], actor=ACTOR) == 5
    assert [m.name for m in service.list_mailboxes()] == [Z]


# ---------------------------------------------------------------- activity


def test_activity_pages_and_filters_in_sql(service: MailboxService) -> None:
    ann, bob = Actor.local("ann"), Actor.local("bob")
    first = service.create_mailbox(mailbox_data("password"), actor=ann)
    second = service.create_mailbox(mailbox_data("gmail"), actor=bob)
    service.set_status([first.id, second.id], Status.NOT_ACTIVE, actor=bob)
    events, matching = service.audit_page(AuditFilter(), page=1, page_size=3)
    assert matching == 4 and len(events) == 3
    assert [e.action for e in service.audit_page(AuditFilter(), page=2, page_size=3)[0]] == [
        "created"
    ]
    assert service.audit_actors() == ["ann", "bob"]
    by_bob, count = service.audit_page(AuditFilter(actor="bob"), page=1, page_size=50)
    assert count == 3 and {e.actor for e in by_bob} == {"bob"}
    named, _ = service.audit_page(AuditFilter(mailbox="GMAIL"), page=1, page_size=50)
    assert {e.mailbox_id for e in named} == {second.id}
    by_id, _ = service.audit_page(AuditFilter(mailbox=str(first.id)), page=1, page_size=50)
    assert {e.mailbox_id for e in by_id} == {first.id}
    today = datetime.now(UTC).date()
    assert service.audit_page(AuditFilter(since=today, until=today), page=1, page_size=50)[1] == 4
    later = today + timedelta(days=1)
    assert service.audit_page(AuditFilter(since=later), page=1, page_size=50)[1] == 0
    earlier = date(2000, 1, 1)
    assert service.audit_page(AuditFilter(until=earlier), page=1, page_size=50)[1] == 0


# ---------------------------------------------------------------- migration 0007


def test_migration_0007_fills_search_text_and_leaves_key_ids_to_the_keys(
    engine: Engine, key: str
) -> None:
    from tests.conftest import reset_database

    reset_database(engine)
    upgrade(engine, "0004")
    box = SecretBox([key])
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO mailbox (name, name_key, mailbox_type, host, port, account, "
                "ssl_enabled, starttls, allow_self_signed, allow_plaintext_password, status, "
                "comments, oauth_enabled, password_encrypted, created_at, updated_at, version) "
                "VALUES ('Old One', 'old one', 'POP3', 'pop.old.example', 110, 'Old@Example.org', "
                ":f, :f, :f, :f, 'Active', 'Größe', :f, :token, :now, :now, 1)"
            ),
            {"f": False, "token": box.encrypt("old-pw"), "now": NOW},
        )
    upgrade(engine)
    service = MailboxService(engine, box)
    assert names(service, Q(F(search="GRÖSSE"))) == ["Old One"]
    assert names(service, Q(F(search="old@example"))) == ["Old One"]
    assert service.list_view(Q()).summary.unreadable == 1
    assert service.identify_keys() == 1
    assert service.list_view(Q()).summary.unreadable == 0


def test_an_edit_keeps_the_search_text_current(service: MailboxService) -> None:
    mailbox = service.create_mailbox(mailbox_data("password"), actor=ACTOR)
    values = {**mailbox_data("password"), "comments": "Night shift", "password": ""}
    service.update_mailbox(mailbox.id, values, expected_version=mailbox.version, actor=ACTOR)
    assert names(service, Q(F(search="night"))) == ["Support POP3"]
    assert names(service, replace(Q(), filter=F(search="pop.example.com"))) == ["Support POP3"]
