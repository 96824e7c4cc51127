"""Validation rules of SPEC §2, §3 and §5, and which fields apply when."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbox_core.errors import ValidationFailed
from mailbox_core.schemas import (
    LABELS,
    AuthMethod,
    MailboxCreate,
    OAuthProvider,
    default_port,
    needs_password,
    parse_create,
    parse_host,
    required_fields,
    secrets_used,
    visible_fields,
)
from tests.conftest import SIGN_IN_PATHS, mailbox_data


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_create(data)
    return caught.value.by_field()


@pytest.mark.parametrize("path", SIGN_IN_PATHS)
def test_every_sign_in_path_validates(path: str) -> None:
    created = parse_create(mailbox_data(path))
    assert created.name == SIGN_IN_PATHS[path]["name"]


# (case, overrides, field that must be named, words the message must contain)
BAD_VALUES = [
    ("port zero", {"port": 0}, "port", "1 to 65535"),
    ("port too high", {"port": 65536}, "port", "1 to 65535"),
    ("port not a number", {"port": "pop"}, "port", "whole number"),
    ("account not an email", {"account": "support"}, "account", "email address"),
    ("account with newline", {"account": "a@b.co\r\nA1 LOGOUT"}, "account", ""),
    ("host with space", {"host": "pop example.com"}, "host", "spaces"),
    ("host with control char", {"host": "pop.exa\x07mple.com"}, "host", "control"),
    ("host ftp scheme", {"host": "ftp://pop.example.com"}, "host", "imaps://"),
    ("host http scheme", {"host": "https://pop.example.com"}, "host", "pop3://"),
    ("host with path", {"host": "pop3://pop.example.com/inbox"}, "host", "path"),
    ("host with credentials", {"host": "pop3://u:p@pop.example.com"}, "host", "password"),
    ("host bad label", {"host": "-pop.example.com"}, "host", "host name"),
    ("host as one number", {"host": "2130706433"}, "host", "four decimal numbers"),
    ("host in hex", {"host": "0x7f000001"}, "host", "four decimal numbers"),
    ("host short dotted", {"host": "127.1"}, "host", "four decimal numbers"),
    ("host octal", {"host": "0177.0.0.1"}, "host", "four decimal numbers"),
    ("name with CR", {"name": "Support\rX"}, "name", "one line"),
    ("name with LF", {"name": "Support\nX"}, "name", "one line"),
    ("name with NUL", {"name": "Support\x00"}, "name", "one line"),
    ("name too long", {"name": "n" * 101}, "name", "100"),
    ("password with CRLF", {"password": "pw\r\nQUIT"}, "password", "one line"),
    ("comments with NUL", {"comments": "a\x00b"}, "comments", "NUL"),
    ("missing name", {"name": ""}, "name", "required"),
    ("missing host", {"host": "   "}, "host", "required"),
    ("missing account", {"account": None}, "account", "required"),
    ("missing password", {"password": ""}, "password", "required"),
    ("unknown mailbox type", {"mailbox_type": "SMTP"}, "mailbox_type", "POP3 or IMAP"),
    ("unknown status", {"status": "Paused"}, "status", "Active or Not Active"),
]


@pytest.mark.parametrize(
    ("case", "overrides", "field", "words"), BAD_VALUES, ids=[c[0] for c in BAD_VALUES]
)
def test_bad_value_names_the_field(
    case: str, overrides: dict[str, Any], field: str, words: str
) -> None:
    errors = errors_of(mailbox_data("password", **overrides))
    assert field in errors, errors
    assert words in errors[field]


SIGN_IN_RULES = [
    ("gmail", "client_id", "required for Gmail"),
    ("gmail", "client_secret", "required for Gmail"),
    ("gmail", "refresh_token", "required for Gmail"),
    ("office365_password", "password", "required for Office365"),
    ("office365_password", "client_id", "required for Office365"),
    ("office365_password", "tenant_id", "required for Office365"),
    ("office365_secret", "client_secret", "required for Office365"),
    ("unknown_provider", "password", "required"),
]


@pytest.mark.parametrize(("path", "field", "words"), SIGN_IN_RULES)
def test_sign_in_path_requires_its_fields(path: str, field: str, words: str) -> None:
    errors = errors_of(mailbox_data(path, **{field: ""}))
    assert words in errors[field]


@pytest.mark.parametrize("path", ["gmail", "office365_secret"])
def test_password_is_optional_where_the_token_signs_in(path: str) -> None:
    assert parse_create(mailbox_data(path, password="")).password is None


@pytest.mark.parametrize("tenant", ["not a domain", "contoso", "1234-5678", "contoso.com\n"])
def test_tenant_id_must_be_guid_or_domain(tenant: str) -> None:
    assert "tenant_id" in errors_of(mailbox_data("office365_secret", tenant_id=tenant))


@pytest.mark.parametrize(
    "tenant", ["AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE", "contoso.onmicrosoft.com"]
)
def test_tenant_id_accepts_guid_and_domain(tenant: str) -> None:
    assert parse_create(mailbox_data("office365_secret", tenant_id=tenant)).tenant_id


def test_office365_client_id_must_be_a_guid() -> None:
    errors = errors_of(mailbox_data("office365_secret", client_id="my-app"))
    assert "GUID" in errors["client_id"]


def test_every_problem_is_reported_at_once() -> None:
    errors = errors_of(mailbox_data("gmail", name="", port=0, client_id="", refresh_token=""))
    assert {"name", "port", "client_id", "refresh_token"} <= set(errors)


def test_error_text_names_fields_by_their_labels() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_create(mailbox_data("password", port=0, account="x"))
    assert "Port:" in str(caught.value)
    assert "Account:" in str(caught.value)
    assert {e.label for e in caught.value.errors} == {"Port", "Account"}


def test_error_never_echoes_a_secret() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_create(mailbox_data("password", password="secret\nvalue-9"))
    assert "secret" not in str(caught.value).replace("Client Secret", "")


# ------------------------------------------------------------------ hidden fields


def test_switching_to_pop3_drops_oauth_fields() -> None:
    data = mailbox_data("gmail", mailbox_type="POP3", port=995, password="pw")
    created = parse_create(data)
    assert created.oauth_enabled is False
    assert created.oauth_provider is None
    assert created.client_id is None
    assert created.client_secret is None
    assert created.refresh_token is None


def test_gmail_drops_office365_fields() -> None:
    created = parse_create(
        mailbox_data("gmail", tenant_id="contoso.com", auth_method="Client Secret")
    )
    assert created.tenant_id is None
    assert created.auth_method is None


def test_office365_password_method_drops_client_secret() -> None:
    created = parse_create(mailbox_data("office365_password", client_secret="left-over"))
    assert created.client_secret is None


def test_ssl_drops_starttls() -> None:
    assert (
        parse_create(mailbox_data("password", ssl_enabled="Yes", starttls="Yes")).starttls is False
    )


VISIBILITY = [
    ({"mailbox_type": "POP3"}, set(), {"oauth_enabled", "oauth_provider"}),
    ({"mailbox_type": "IMAP", "oauth_enabled": "No"}, {"oauth_enabled"}, {"oauth_provider"}),
    ({"mailbox_type": "IMAP", "oauth_enabled": "Yes"}, {"oauth_provider"}, {"client_id"}),
    (
        {"mailbox_type": "IMAP", "oauth_enabled": "Yes", "oauth_provider": "Gmail"},
        {"client_id", "client_secret", "refresh_token"},
        {"tenant_id", "auth_method"},
    ),
    (
        {
            "mailbox_type": "IMAP",
            "oauth_enabled": "Yes",
            "oauth_provider": "Office365",
            "auth_method": "API Username/Password",
        },
        {"auth_method", "client_id", "tenant_id"},
        {"client_secret", "refresh_token"},
    ),
    (
        {
            "mailbox_type": "IMAP",
            "oauth_enabled": "Yes",
            "oauth_provider": "Office365",
            "auth_method": "Client Secret",
        },
        {"auth_method", "client_id", "tenant_id", "client_secret"},
        {"refresh_token"},
    ),
    (
        {
            "mailbox_type": "IMAP",
            "oauth_enabled": "Yes",
            "oauth_provider": "Office365",
            "auth_method": "Connect account (delegated)",
        },
        {"auth_method", "client_id", "tenant_id", "client_secret", "refresh_token"},
        set(),
    ),
    ({"ssl_enabled": "No"}, {"starttls"}, set()),
    ({"ssl_enabled": "Yes"}, set(), {"starttls"}),
]


@pytest.mark.parametrize(("answers", "shown", "hidden"), VISIBILITY)
def test_visible_fields_follow_the_answers(
    answers: dict[str, str], shown: set[str], hidden: set[str]
) -> None:
    fields = visible_fields(answers)
    assert shown <= set(fields)
    assert not hidden & set(fields)
    assert fields == [f for f in LABELS if f in fields], "form order must follow LABELS"


# ------------------------------------------------------------------ ports and hosts


@pytest.mark.parametrize(
    ("kind", "ssl", "port"),
    [("POP3", False, 110), ("POP3", True, 995), ("IMAP", False, 143), ("IMAP", True, 993)],
)
def test_default_port(kind: str, ssl: bool, port: int) -> None:
    assert default_port(kind, ssl) == port


def test_missing_port_takes_the_default_for_type_and_ssl() -> None:
    data = mailbox_data("password", mailbox_type="IMAP", ssl_enabled="Yes")
    del data["port"]
    assert parse_create(data).port == 993


@pytest.mark.parametrize(
    ("raw", "host", "port", "kind", "ssl"),
    [
        ("imaps://imap.gmail.com:993", "imap.gmail.com", 993, "IMAP", True),
        ("pop3://pop.example.com", "pop.example.com", None, "POP3", False),
        ("POP3S://POP.Example.COM:9995/", "pop.example.com", 9995, "POP3", True),
        ("mail.example.com:1143", "mail.example.com", 1143, None, None),
        ("192.0.2.10", "192.0.2.10", None, None, None),
        ("2001:db8::1", "2001:db8::1", None, None, None),
        ("imap://[2001:db8::1]:143", "2001:db8::1", 143, "IMAP", False),
        ("bücher.example", "bücher.example", None, None, None),
    ],
)
def test_parse_host_understands_urls(
    raw: str, host: str, port: int | None, kind: str | None, ssl: bool | None
) -> None:
    spec = parse_host(raw)
    assert (spec.host, spec.port, spec.mailbox_type, spec.ssl_enabled) == (host, port, kind, ssl)


def test_pasted_url_fills_type_ssl_and_port() -> None:
    data = mailbox_data("password", host="imaps://imap.gmail.com:993")
    for field in ("mailbox_type", "port", "ssl_enabled"):
        data.pop(field, None)
    created = parse_create(data)
    assert (created.host, created.mailbox_type, created.port, created.ssl_enabled) == (
        "imap.gmail.com",
        "IMAP",
        993,
        True,
    )


def test_url_that_contradicts_mailbox_type_is_refused() -> None:
    errors = errors_of(mailbox_data("password", host="imaps://imap.gmail.com"))
    assert "imaps:// URL" in errors["host"]


# ------------------------------------------------------------------ property


ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(),
    st.binary(max_size=20),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    st.sampled_from(
        [
            "POP3",
            "IMAP",
            "Yes",
            "No",
            "Gmail",
            "Office365",
            "Unknown",
            "Client Secret",
            "API Username/Password",
            "Active",
            "a@b.co",
            "imaps://imap.gmail.com:993",
            "pop.example.com",
        ]
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(sorted(SIGN_IN_PATHS)),
    changes=st.dictionaries(st.sampled_from(sorted(LABELS)), ANY_VALUE, max_size=6),
)
def test_random_input_validates_or_raises_validation_failed(
    base: str, changes: dict[str, Any]
) -> None:
    try:
        created = parse_create({**SIGN_IN_PATHS[base], **changes})
    except ValidationFailed as exc:
        assert exc.errors and all(e.field in LABELS or e.field == "form" for e in exc.errors)
    else:
        assert isinstance(created, MailboxCreate)
        assert 1 <= created.port <= 65535


def test_an_edit_keeps_a_stored_secret_by_leaving_it_unset() -> None:
    from mailbox_core.schemas import parse_update

    gmail = {**SIGN_IN_PATHS["gmail"], "client_secret": "", "refresh_token": "", "password": ""}
    update = parse_update(gmail, {"client_secret", "refresh_token", "password"})
    # Gmail shows no Password (issue 8), so a stored one is not kept but removed.
    assert update.kept_secrets == {"client_secret", "refresh_token"}
    assert (update.client_secret, update.refresh_token) == (None, None)
    assert "client_secret" not in update.model_fields_set
    typed = parse_update({**gmail, "refresh_token": "1//new"}, {"client_secret", "refresh_token"})
    assert typed.kept_secrets == {"client_secret"}
    assert typed.refresh_token is not None
    assert typed.refresh_token.get_secret_value() == "1//new"
    as_pop3 = parse_update(
        {**gmail, "mailbox_type": "POP3", "port": 995}, {"refresh_token", "password"}
    )
    assert as_pop3.kept_secrets == {"password"}, "a secret the form no longer shows is not kept"


DELEGATED = {
    "mailbox_type": "IMAP",
    "oauth_enabled": "Yes",
    "oauth_provider": "Office365",
    "auth_method": "Connect account (delegated)",
}


def test_delegated_office365_signs_in_with_a_refresh_token_not_a_password() -> None:
    assert needs_password(DELEGATED) is False
    required = set(required_fields(DELEGATED))
    assert {"client_id", "tenant_id", "refresh_token"} <= required
    assert not {"password", "client_secret"} & required  # a public client has no secret
    created = parse_create(
        mailbox_data(
            "office365_password",
            auth_method="Connect account (delegated)",
            password="",
            refresh_token="ms-refresh-1",
        )
    )
    assert created.auth_method is AuthMethod.DELEGATED
    assert created.refresh_token is not None and created.password is None
    assert secrets_used(created) == ["client_secret", "refresh_token"]


@pytest.mark.parametrize(
    ("values", "provider"),
    [
        ({**DELEGATED}, OAuthProvider.OFFICE365),
        ({**DELEGATED, "oauth_provider": "Gmail"}, OAuthProvider.GMAIL),
    ],
)
def test_an_operator_app_makes_blank_client_fields_optional(
    values: dict[str, str], provider: OAuthProvider
) -> None:
    assert "client_id" in required_fields(values)
    assert not {"client_id", "client_secret"} & set(required_fields(values, {provider}))
    typed = {**values, "client_id": "00000000-0000-0000-0000-000000000001"}
    needed = set(required_fields(typed, {provider}))
    assert ("client_secret" in needed) is (provider is OAuthProvider.GMAIL)
    other = OAuthProvider.GMAIL if provider is OAuthProvider.OFFICE365 else OAuthProvider.OFFICE365
    assert "client_id" in required_fields(values, {other})
