"""Issue 11 D4, D7 and D11: hostile import files, CSV injection, invisible names, Yes/No."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mailbox_core.crypto import SecretBox
from mailbox_core.db import init_db, make_engine
from mailbox_core.errors import ValidationFailed
from mailbox_core.repository import name_key
from mailbox_core.schemas import (
    BOOL_FIELDS,
    SECRET_FIELDS,
    parse_create,
    visible_fields,
)
from mailbox_core.service import MailboxService
from mailbox_core.transfer import (
    ImportFailed,
    ImportFileError,
    export_rows,
    plan_import,
    read_rows,
    to_csv,
)
from tests.conftest import ACTOR, SIGN_IN_PATHS, mailbox_data, run_cli

# ---------------------------------------------------------------- D4: hostile import files


def _json(rows: list[dict[str, Any]]) -> bytes:
    # ensure_ascii writes a lone surrogate as the escape "\ud800", as a hostile file would.
    return json.dumps(rows).encode("ascii")


def _deep_in_a_row() -> bytes:
    head = json.dumps([mailbox_data("password")])[:-2]
    return (head + ', "comments": ' + "[" * 10_000 + "]" * 10_000 + "}]").encode()


#: (case, file content, what must be named): a str is words of the ImportFileError, a
#: tuple is (row, field) of the row problem.
HOSTILE_FILES: list[tuple[str, bytes, str | tuple[int, str]]] = [
    ("nested 10,000 deep", b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
    ("nested inside a row", _deep_in_a_row(), "nested too deeply"),
    (
        "a 5,000-digit number",
        _json([mailbox_data("password")]).replace(b'"port": 110', b'"port": ' + b"9" * 5000),
        "too many digits",
    ),
    ("surrogate in Name", _json([mailbox_data("password", name="Support \ud800")]), (1, "name")),
    ("surrogate in Password", _json([mailbox_data(password="pw\ud800")]), (1, "password")),
    (
        "surrogate in Client Secret",
        _json([mailbox_data("password"), mailbox_data("gmail", client_secret="s\udfff")]),
        (2, "client_secret"),
    ),
    (
        "surrogate in a column name",
        _json([{**mailbox_data("password"), "\ud800": "x"}]),
        (1, "\\ud800"),
    ),
]
HOSTILE_IDS = [case[0] for case in HOSTILE_FILES]


@pytest.mark.parametrize(("case", "content", "named"), HOSTILE_FILES, ids=HOSTILE_IDS)
def test_hostile_import_file_is_explained_not_a_crash(
    service: MailboxService, case: str, content: bytes, named: str | tuple[int, str]
) -> None:
    if isinstance(named, str):
        with pytest.raises(ImportFileError) as caught:
            read_rows(content, "hostile.json")
        assert named in str(caught.value)
        assert str(caught.value).startswith("hostile.json ")
        return
    rows = read_rows(content, "hostile.json")
    with pytest.raises(ImportFailed) as failed:
        service.import_mailboxes(rows, actor=ACTOR)
    assert [(p.row, p.error.field) for p in failed.value.problems] == [named]
    str(failed.value).encode("utf-8")  # printable: the CLI and the page show it
    assert service.count_mailboxes() == 0


@pytest.mark.parametrize(("case", "content", "named"), HOSTILE_FILES, ids=HOSTILE_IDS)
def test_cli_import_of_a_hostile_file_exits_cleanly_and_writes_nothing(
    tmp_path: Path, case: str, content: bytes, named: str | tuple[int, str]
) -> None:
    source = tmp_path / "hostile.json"
    source.write_bytes(content)
    data = tmp_path / "data"
    result = run_cli(
        {"PATH": "/usr/bin:/bin", "MAILBOX_DATA_DIR": str(data)}, "import", str(source)
    )
    assert "Traceback" not in result.stderr, result.stderr
    if isinstance(named, str):
        assert result.returncode == 2
        assert named in result.stderr
    else:
        assert result.returncode == 1
        assert f"Row {named[0]}: " in result.stdout
    database = data / "mailboxes.db"
    if database.exists():
        with sqlite3.connect(database) as conn:
            assert conn.execute("SELECT count(*) FROM mailbox").fetchone()[0] == 0


def _text_and_secret_fields(path: str) -> list[str]:
    values = mailbox_data(path)
    shown = visible_fields(values)
    text = {"name", "host", "account", "comments", "client_id", "tenant_id", *SECRET_FIELDS}
    return [f for f in shown if f in text]


UNENCODABLE = [
    (path, field)
    for path in SIGN_IN_PATHS
    for field in _text_and_secret_fields(path)
    if field != "host" or path == "password"  # one host case is enough
]


@pytest.mark.parametrize(("path", "field"), UNENCODABLE)
@pytest.mark.parametrize("value", ["\ud800", "ok \udfff ok"])
def test_lone_surrogate_is_a_field_error(path: str, field: str, value: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_create(mailbox_data(path, **{field: value}))
    assert field in caught.value.by_field()


@pytest.mark.parametrize("field", ["name", "comments", "password"])
def test_lone_surrogate_is_refused_on_create_and_update(
    service: MailboxService, field: str
) -> None:
    with pytest.raises(ValidationFailed) as created:
        service.create_mailbox(mailbox_data("password", **{field: "x\ud800"}), actor=ACTOR)
    assert "not text" in created.value.by_field()[field]
    saved = service.create_mailbox(mailbox_data("password"), actor=ACTOR)
    with pytest.raises(ValidationFailed) as updated:
        service.update_mailbox(
            saved.id,
            mailbox_data("password", **{field: "x\ud800"}),
            expected_version=saved.version,
            actor=ACTOR,
        )
    assert field in updated.value.by_field()


# ---------------------------------------------------------------- D7: CSV export


TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: Names and comments a spreadsheet would run, and some that only look like it.
HOSTILE_CELLS = [
    ("=1+1", '=HYPERLINK("http://evil.example","click")'),
    ("+SUM(A1:A9)", "+41 22 555 0100"),
    ("-2+3", "-- not a formula, a dash"),
    ("@SUM(1)", "@here please"),
    ("'=already quoted", "'+looks neutralised"),
    ("''=twice", "''"),
    ("'plain apostrophe", "'"),
    ("it's fine", "\r=cmd|' /C calc'!A0"),
    ("CR inside", "line one\rline two\r\nline three\n"),
    ("tab inside", "col\tcol"),
]


@pytest.fixture
def hostile(service: MailboxService) -> MailboxService:
    for n, (name, comments) in enumerate(HOSTILE_CELLS):
        service.create_mailbox(
            mailbox_data(
                "gmail",
                name=name,
                comments=comments,
                account=f"{'=+-'[n % 3]}x{n}@example.com",
                client_id=f"=cmd{n}",
            ),
            actor=ACTOR,
        )
    return service


def test_csv_export_neutralises_formulas_and_quotes_every_cell(hostile: MailboxService) -> None:
    text = to_csv(hostile.list_mailboxes())
    header, *lines = list(csv.reader(io.StringIO(text)))
    assert header[:4] == ["name", "mailbox_type", "host", "port"]
    cells = [cell for line in lines for cell in line]
    assert not [c for c in cells if c.startswith(TRIGGERS)]
    by_name = {line[0]: dict(zip(header, line, strict=True)) for line in lines}
    assert {"'=1+1", "''=already quoted", "'''=twice", "'plain apostrophe"} <= set(by_name)
    assert by_name["it's fine"]["comments"] == "'\r=cmd|' /C calc'!A0"
    # Every data cell is quoted, so the CR of a comment cannot end the row.
    assert text.startswith("name,mailbox_type,host,port,")
    assert '\n"CR inside","IMAP","imap.gmail.com","993",' in text
    assert '"line one\rline two\r\nline three\n"' in text


def test_csv_export_round_trips_exactly_into_a_fresh_database(
    hostile: MailboxService, tmp_path: Path, key: str
) -> None:
    empty = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    init_db(empty)
    target = MailboxService(empty, SecretBox([key]))
    rows = read_rows(to_csv(hostile.list_mailboxes()).encode(), "mailboxes.csv")
    for row in rows:
        row.update({f: SIGN_IN_PATHS["gmail"][f] for f in ("client_secret", "refresh_token")})
    target.import_mailboxes(rows, actor=ACTOR)
    assert export_rows(target.list_mailboxes()) == export_rows(hostile.list_mailboxes())
    empty.dispose()


@pytest.mark.parametrize(
    ("cell", "read"),
    [
        ("'=x", "=x"),  # the prefix export adds (or a spreadsheet's own) is removed
        ("''=x", "'=x"),  # exactly one apostrophe: the rest is the value
        ("'-5", "-5"),
        ("'hello", "'hello"),  # not before a trigger: a person's apostrophe, kept
        ("''", "''"),
        ("=x", "=x"),
    ],
)
def test_csv_import_removes_only_the_prefix_export_adds(cell: str, read: str) -> None:
    text = f'name,comments,password\n"Box","{cell}","{cell}"\n'
    (row,) = read_rows(text.encode(), "hand-written.csv")
    assert row["comments"] == read
    assert row["password"] == cell  # secrets are never exported, so never prefixed


# ---------------------------------------------------------------- D11: invisible names


BLANK_NAMES = [
    "\u00a0\u00a0",  # no-break spaces
    "\u2003\u3000",  # em space, ideographic space
    "\u200b",  # zero-width space
    "\ufeff",  # byte-order mark
    "\u2060\u200d\u00ad",  # word joiner, zero-width joiner, soft hyphen
    "\u3164",  # Hangul filler
    " \u00a0\t\u200b ",
]


@pytest.mark.parametrize("name", BLANK_NAMES, ids=[ascii(n) for n in BLANK_NAMES])
def test_name_of_invisible_characters_is_required(service: MailboxService, name: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        service.create_mailbox(mailbox_data("password", name=name), actor=ACTOR)
    assert caught.value.by_field()["name"] == "is required"
    assert service.count_mailboxes() == 0


def test_name_is_trimmed_of_invisible_characters() -> None:
    assert parse_create(mailbox_data(name="\u200b\u00a0Support POP3\ufeff\u3000")).name == (
        "Support POP3"
    )


@pytest.mark.parametrize(
    "twin",
    ["support pop3", "Support\u00a0POP3", "Sup\u200bport POP3", "\ufeffSupport POP3\u2060"],
)
def test_names_differing_only_by_invisible_characters_collide(
    service: MailboxService, twin: str
) -> None:
    assert name_key(twin) == name_key("Support POP3")
    service.create_mailbox(mailbox_data("password", name="Support POP3"), actor=ACTOR)
    with pytest.raises(ValidationFailed) as caught:
        service.create_mailbox(mailbox_data("password", name=twin), actor=ACTOR)
    assert "already exists" in caught.value.by_field()["name"]
    assert plan_import([mailbox_data("password", name=twin)], {name_key("Support POP3")}).problems


def test_visible_characters_still_make_names_differ() -> None:
    assert name_key("Support POP3") != name_key("Support POP4")
    assert name_key("Support  POP3") != name_key("Support POP3")


# ---------------------------------------------------------------- D11: one Yes/No rule


YES = [True, 1, "Yes", "yes", "TRUE", "1", "on", " On "]
NO = [False, 0, "No", "false", "0", "off", ""]
NOT_YES_NO = [2, -1, 1.0, "y", "t", "maybe"]


@pytest.mark.parametrize("field", BOOL_FIELDS)
@pytest.mark.parametrize(("value", "expected"), [(v, True) for v in YES] + [(v, False) for v in NO])
def test_every_yes_no_field_reads_answers_alike(field: str, value: Any, expected: bool) -> None:
    # Password sign-in either way, so every answer is a valid mailbox.
    path = "unknown_provider" if field == "oauth_enabled" else "password"
    created = parse_create(mailbox_data(path, **{field: value}))
    assert getattr(created, field) is expected


@pytest.mark.parametrize("field", ["ssl_enabled", "allow_self_signed", "allow_plaintext_password"])
@pytest.mark.parametrize("value", NOT_YES_NO, ids=repr)
def test_other_answers_to_a_yes_no_field_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_create(mailbox_data("password", **{field: value}))
    assert field in caught.value.by_field()


@pytest.mark.parametrize("ssl", [1, True, "Yes", "1"], ids=repr)
def test_ssl_as_any_yes_drops_starttls_and_plaintext(ssl: Any) -> None:
    created = parse_create(
        mailbox_data("password", ssl_enabled=ssl, starttls="Yes", allow_plaintext_password=1)
    )
    assert (created.ssl_enabled, created.starttls, created.allow_plaintext_password) == (
        True,
        False,
        False,
    )


def test_int_yes_no_from_json_import(service: MailboxService) -> None:
    rows = [
        mailbox_data("password", ssl_enabled=1, starttls="Yes"),
        mailbox_data("gmail", ssl_enabled=1, oauth_enabled=1, allow_self_signed=0),
        mailbox_data("unknown_provider", name="Plain", starttls=0, allow_plaintext_password=1),
    ]
    created = service.import_mailboxes(read_rows(_json(rows), "ints.json"), actor=ACTOR)
    support, gmail, plain = created
    assert (support.ssl_enabled, support.starttls) == (True, False)
    assert (gmail.oauth_enabled, gmail.oauth_provider, gmail.has_refresh_token) == (
        True,
        "Gmail",
        True,
    )
    assert (plain.starttls, plain.allow_plaintext_password) == (False, True)


def test_yes_no_rule_is_shared_by_visibility_and_saving() -> None:
    values = mailbox_data("gmail", ssl_enabled=1, oauth_enabled=1)
    assert "starttls" not in visible_fields(values)
    assert "refresh_token" in visible_fields(values)
