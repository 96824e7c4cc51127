"""Non-table models: every rule of the New Mailbox form lives here.

Validation happens in four layers (STYLE.md point 2): field constraints on
``MailboxBase``; normalisation and cross-field rules on ``MailboxCreate``; the duplicate
name in the service; database constraints last.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum, StrEnum
from typing import Annotated, Any, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    EmailStr,
    PrivateAttr,
    SecretStr,
    Strict,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic import Field as Rule
from pydantic_core import PydanticCustomError
from sqlmodel import Field, SQLModel

from mailbox_core.egress import NUMERIC_SPELLING, EgressRefused, normalise_host
from mailbox_core.errors import FieldError, ValidationFailed


class MailboxType(StrEnum):
    POP3 = "POP3"
    IMAP = "IMAP"


class Status(StrEnum):
    ACTIVE = "Active"
    NOT_ACTIVE = "Not Active"


class OAuthProvider(StrEnum):
    UNKNOWN = "Unknown"
    GMAIL = "Gmail"
    OFFICE365 = "Office365"


class AuthMethod(StrEnum):
    PASSWORD = "API Username/Password"
    CLIENT_SECRET = "Client Secret"
    #: Authorization code flow through Microsoft's consent page (Connect account); the
    #: refresh token it returns signs in, the way Microsoft recommends for IMAP and POP.
    DELEGATED = "Connect account (delegated)"


#: Field -> label people see, in form order. Tests and pages look fields up by label.
LABELS: dict[str, str] = {
    "name": "Name",
    "mailbox_type": "Mailbox Type",
    "host": "Host",
    "port": "Port",
    "account": "Account",
    "password": "Password",
    "ssl_enabled": "SSL Enabled",
    "starttls": "STARTTLS",
    "status": "Status",
    "comments": "Comments",
    "oauth_enabled": "Oauth Enabled",
    "oauth_provider": "Oauth Provider",
    "auth_method": "Authentication Method",
    "client_id": "Client ID",
    "tenant_id": "Tenant ID",
    "client_secret": "Client Secret",
    "refresh_token": "Refresh Token",
    "allow_self_signed": "Allow self-signed certificate",
    "allow_plaintext_password": "Allow sign-in without encryption",
    "check_interval": "Check every (minutes)",
    "client_secret_expires": "Client Secret expires",
    "quota_warnings": "Quota warnings (%)",
    "backlog_minutes": "Backlog alert after (minutes)",
}

SECRET_FIELDS = ("password", "client_secret", "refresh_token")
#: Settings people edit, i.e. every field of the form except the secrets, in form order.
SETTING_FIELDS = tuple(f for f in LABELS if f not in SECRET_FIELDS)
#: Where a stored secret goes (SPEC §4, issue 11 D1): a stored secret is used only while
#: every one of these is what it was saved with, so an edit cannot aim it at another host.
DESTINATION_FIELDS = (
    "mailbox_type",
    "host",
    "port",
    "ssl_enabled",
    "starttls",
    "account",
    "oauth_enabled",
    "oauth_provider",
    "auth_method",
    "tenant_id",
    "client_id",
)
#: Advanced options, drawn in the form's "Advanced" section.
ADVANCED_FIELDS = (
    "allow_self_signed",
    "allow_plaintext_password",
    "check_interval",
    "client_secret_expires",
    "quota_warnings",
    "backlog_minutes",
)
#: Scheduled checks (issue 13): how often a mailbox is checked when nothing is wrong.
DEFAULT_CHECK_INTERVAL = 5
MAX_CHECK_INTERVAL = 24 * 60
#: Vital signs (issue 15): quota warnings in percent, stored as "80,90,95" ("" is none);
#: the backlog threshold in minutes (None: off), at most a week.
DEFAULT_QUOTA_WARNINGS = "80,90,95"
MAX_QUOTA_WARNINGS = 5
MAX_BACKLOG_MINUTES = 7 * 24 * 60
#: The backlog threshold the form suggests: this many check intervals.
BACKLOG_SUGGESTION = 3
#: Yes/No fields: one coercion rule (``_yes_no``) reads them all, before any cross-field rule.
BOOL_FIELDS = (
    "ssl_enabled",
    "starttls",
    "oauth_enabled",
    "allow_self_signed",
    "allow_plaintext_password",
)
OAUTH_FIELDS = (
    "oauth_provider",
    "auth_method",
    "client_id",
    "tenant_id",
    "client_secret",
    "refresh_token",
    "client_secret_expires",
)

#: Messages for pydantic's own error types, per field; our validators supply their own.
_FIELD_HINTS: dict[str, str] = {
    "name": "enter a name of at most 100 characters",
    "mailbox_type": "choose POP3 or IMAP",
    "host": "enter a host name or IP address, e.g. pop.gmail.com",
    "port": "enter a whole number from 1 to 65535",
    "account": "enter the mailbox's email address, e.g. JDoe@gmail.com",
    "password": "enter the password as text of at most 4096 characters",
    "ssl_enabled": "choose Yes or No",
    "starttls": "choose Yes or No",
    "status": "choose Active or Not Active",
    "comments": "enter at most 2000 characters of text",
    "oauth_enabled": "choose Yes or No",
    "oauth_provider": "choose Unknown, Gmail or Office365",
    "auth_method": "choose API Username/Password, Client Secret or Connect account (delegated)",
    "client_id": "enter the client ID as text of at most 255 characters",
    "tenant_id": "enter a GUID or a domain such as contoso.onmicrosoft.com",
    "client_secret": "enter the client secret as text of at most 4096 characters",
    "refresh_token": "enter the refresh token as text of at most 4096 characters",
    "allow_self_signed": "choose Yes or No",
    "allow_plaintext_password": "choose Yes or No",
    "check_interval": f"enter a whole number of minutes from 1 to {24 * 60}",
    "client_secret_expires": "enter a date such as 2027-03-31",
    "quota_warnings": "enter whole percentages from 1 to 100, such as 80, 90, 95",
    "backlog_minutes": f"enter a whole number of minutes from 1 to {7 * 24 * 60}, or nothing",
}

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_URL_SCHEMES = {
    "pop3": (MailboxType.POP3, False),
    "pop3s": (MailboxType.POP3, True),
    "imap": (MailboxType.IMAP, False),
    "imaps": (MailboxType.IMAP, True),
}


def plain(value: Any) -> Any:
    """An enum setting as its text, a date as ISO text (JSON- and CSV-friendly)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return value.value if isinstance(value, Enum) else value


def default_port(mailbox_type: MailboxType | str, ssl_enabled: bool) -> int:
    """The standard port: POP3 110/995, IMAP 143/993 (STARTTLS keeps the plain one)."""
    if MailboxType(mailbox_type) is MailboxType.IMAP:
        return 993 if ssl_enabled else 143
    return 995 if ssl_enabled else 110


# ---------------------------------------------------------------- single values


def _single_line(value: str) -> str:
    # CR, LF and NUL would let a value inject IMAP/POP3 commands.
    if any(ch in value for ch in "\r\n\x00"):
        raise PydanticCustomError("single_line", "must be one line, without line breaks")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise PydanticCustomError("control_chars", "must not contain control characters")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("nul", "must not contain NUL characters")
    return value


def _encodable(value: Any) -> Any:
    # A JSON "\ud800" escape gives a lone surrogate: Python keeps it, but it cannot be
    # encoded, stored or encrypted, so it is a field error here rather than a crash later.
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if isinstance(text, str):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise PydanticCustomError(
                "unencodable",
                "holds characters that are not text (a lone surrogate such as \\ud800)",
            ) from exc
    return value


#: Letters and marks that Unicode draws as nothing (Hangul fillers, the braille blank…);
#: the categories Zs and Cf cover the rest of what a person cannot see.
_BLANK_LOOKING = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0")


def _is_blank_space(ch: str) -> bool:
    # Controls other than TAB are refused by their fields, never trimmed away.
    if unicodedata.category(ch) == "Cc":
        return ch == "\t"
    return ch.isspace() or unicodedata.category(ch) == "Zs"


def _is_invisible(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf" or ch in _BLANK_LOOKING


def _strip_blank(text: str) -> str:
    # Without leading and trailing spaces (any Unicode space) and invisible characters.
    start, end = 0, len(text)
    while start < end and (_is_blank_space(text[start]) or _is_invisible(text[start])):
        start += 1
    while end > start and (_is_blank_space(text[end - 1]) or _is_invisible(text[end - 1])):
        end -= 1
    return text[start:end]


def comparable_name(name: str) -> str:
    """A name as uniqueness sees it: case, invisible characters and kinds of space ignored."""
    kept = "".join(" " if _is_blank_space(ch) else ch for ch in name if not _is_invisible(ch))
    return _strip_blank(kept).casefold()


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        # Unicode spaces and invisible characters are trimmed (a name of U+00A0 or U+200B
        # alone is blank); a CR/LF is refused, never silently removed.
        return _strip_blank(value) or None
    if isinstance(value, SecretStr) and not value.get_secret_value():
        return None
    return value


def _secret_blank_to_none(value: Any) -> Any:
    # Secrets keep inner spaces and are not stripped: a password may end in a space.
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, SecretStr):
        return value if value.get_secret_value().strip() else None
    return value


def _secret_single_line(value: SecretStr) -> SecretStr:
    _single_line(value.get_secret_value())
    return value


def _yes_no(value: Any) -> Any:
    # The one reading of every Yes/No answer: bools, the ints 0/1 (JSON) and
    # yes/no/true/false/1/0/on/off. Anything else comes back unchanged, for the strict
    # boolean field to refuse.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"yes", "true", "1", "on"}:
            return True
        if lowered in {"no", "false", "0", "off", ""}:
            return False
    return value


def _interval(value: Any) -> Any:
    # Blank is the default; a Yes/No is not a number of minutes (bool is an int in Python).
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_CHECK_INTERVAL
    if isinstance(value, bool):
        raise PydanticCustomError("interval", "must be a whole number of minutes")
    return value


def _quota_warnings(value: Any) -> Any:
    """ "80, 90, 95" (or a list of numbers) as "80,90,95": sorted, each once; blank is none."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or (isinstance(value, int) and not isinstance(value, bool)):
        value = ",".join(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
    if not isinstance(value, str):
        raise PydanticCustomError("quota_warnings", _PERCENTAGES)
    parts = [p for p in re.split(r"[\s,;%]+", value) if p]
    if not all(p.isascii() and p.isdigit() and 1 <= int(p) <= 100 for p in parts):
        raise PydanticCustomError("quota_warnings", _PERCENTAGES)
    numbers = sorted({int(p) for p in parts})
    if len(numbers) > MAX_QUOTA_WARNINGS:
        raise PydanticCustomError(
            "quota_warnings", f"must name at most {MAX_QUOTA_WARNINGS} percentages"
        )
    return ",".join(str(n) for n in numbers)


_PERCENTAGES = "must be whole percentages from 1 to 100 separated by commas, such as 80, 90, 95"


def _backlog(value: Any) -> Any:
    # Blank is off; a Yes/No is not a number of minutes (bool is an int in Python).
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise PydanticCustomError("backlog", "must be a whole number of minutes")
    return value


def _expiry_date(value: date) -> date:
    if not date(2000, 1, 1) <= value <= date(2100, 12, 31):
        raise PydanticCustomError("expiry_date", "must be a date between 2000 and 2100")
    return value


def _host(value: str) -> str:
    return parse_host(value).host


def _tenant(value: str) -> str:
    if _GUID.match(value):
        return value.lower()
    try:
        domain = _hostname(value)
    except ValueError:
        domain = ""
    if "." not in domain:
        raise PydanticCustomError(
            "tenant", "must be a GUID or a domain such as contoso.onmicrosoft.com"
        )
    return domain


# Before-validators run last-listed first: Encodable, listed after the blank rule, sees
# the raw input.
Encodable = BeforeValidator(_encodable)
Name = Annotated[
    str,
    BeforeValidator(_blank_to_none),
    Encodable,
    Rule(max_length=100),
    AfterValidator(_single_line),
]
ClientId = Annotated[
    str,
    BeforeValidator(_blank_to_none),
    Encodable,
    Rule(max_length=255),
    AfterValidator(_single_line),
]


Secret = Annotated[
    SecretStr,
    BeforeValidator(_secret_blank_to_none),
    Encodable,
    Rule(max_length=4096),
    AfterValidator(_secret_single_line),
]
# Strict: pydantic's own lenient reading ("y", "t", 1.0…) must not be a second rule.
YesNo = Annotated[bool, Strict(), BeforeValidator(_yes_no)]
HostName = Annotated[
    str, BeforeValidator(_blank_to_none), Encodable, Rule(max_length=300), AfterValidator(_host)
]
TenantId = Annotated[
    str,
    BeforeValidator(_blank_to_none),
    Encodable,
    Rule(max_length=255),
    AfterValidator(_single_line),
    AfterValidator(_tenant),
]
Account = Annotated[
    EmailStr,
    BeforeValidator(_blank_to_none),
    Encodable,
    Rule(max_length=254),
    AfterValidator(_single_line),
]
Comments = Annotated[
    str, BeforeValidator(_blank_to_none), Encodable, Rule(max_length=2000), AfterValidator(_no_nul)
]


ExpiryDate = Annotated[date, AfterValidator(_expiry_date)]
BacklogMinutes = Annotated[int, Rule(ge=1, le=MAX_BACKLOG_MINUTES)]

# Blank becomes None before the union is tried, so an empty optional field is simply unset.
Blank = BeforeValidator(_blank_to_none)
SecretBlank = BeforeValidator(_secret_blank_to_none)


def _choice(enum: type[StrEnum]) -> BeforeValidator:
    """Accept an enum value case-insensitively (imports and URLs are not always exact)."""

    def pick(value: Any) -> Any:
        if isinstance(value, str):
            for member in enum:
                if value.strip().lower() == member.value.lower():
                    return member
            return value.strip() or None
        return value

    return BeforeValidator(pick)


# ---------------------------------------------------------------- host parsing


@dataclass(frozen=True)
class HostSpec:
    """What a Host entry says: the host, and for a pasted URL its port, type and SSL."""

    host: str
    port: int | None = None
    mailbox_type: MailboxType | None = None
    ssl_enabled: bool | None = None


def parse_host(raw: str) -> HostSpec:
    """Understand a host name, an IP, `host:port` or a pop3/pop3s/imap/imaps URL."""
    text = _single_line(raw.strip())
    if any(ch.isspace() for ch in text):
        raise PydanticCustomError("host_space", "must not contain spaces")
    if "://" not in text:
        if text.count(":") > 1 and not text.startswith("["):
            return HostSpec(_hostname(text))  # a bare IPv6 address
        text = "//" + text
    elif text.split("://", 1)[0].lower() not in _URL_SCHEMES:
        raise PydanticCustomError(
            "host_scheme",
            "must be a host name such as pop.gmail.com, or a pop3://, pop3s://, imap:// "
            "or imaps:// URL",
        )
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise PydanticCustomError(
            "host_url", "has a port that is not a number from 1 to 65535"
        ) from exc
    if parts.username or parts.password:
        raise PydanticCustomError("host_userinfo", "must not contain a user name or password")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise PydanticCustomError("host_path", "must be a host name, without a path")
    kind = _URL_SCHEMES.get(parts.scheme.lower())
    return HostSpec(
        host=_hostname(parts.hostname or ""),
        port=port,
        mailbox_type=kind[0] if kind else None,
        ssl_enabled=kind[1] if kind else None,
    )


def _hostname(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        normalise_host(text)
    except EgressRefused as exc:
        if exc.reason == NUMERIC_SPELLING:  # 127.1, 0x7f000001: resolvers read an address
            raise PydanticCustomError(
                "host_numeric",
                "is an IP address in an unusual spelling: write it as four decimal numbers, "
                "e.g. 192.0.2.10",
            ) from exc
    try:
        ascii_name = text.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise PydanticCustomError("host_name", "is not a valid host name") from exc
    labels = ascii_name.split(".")
    if not ascii_name or len(ascii_name) > 253 or not all(_LABEL.match(x) for x in labels):
        raise PydanticCustomError(
            "host_name", "is not a valid host name (letters, digits, dots and hyphens)"
        )
    return text.rstrip(".").lower()


# ---------------------------------------------------------------- which fields apply


def visible_fields(values: Mapping[str, Any]) -> list[str]:
    """The form's fields, in order, for the answers given so far.

    A field the chosen sign-in does not use is not shown (Password for Gmail and for
    Office365 with a client secret), and so never saved.
    """
    fields = ["name", "mailbox_type", "host", "port", "account"]
    if needs_password(values):
        fields.append("password")
    fields.append("ssl_enabled")
    if not _is_true(values.get("ssl_enabled")):
        fields.append("starttls")
    fields += ["status", "comments"]
    if _matches(values.get("mailbox_type"), MailboxType.IMAP):
        fields.append("oauth_enabled")
        if _is_true(values.get("oauth_enabled")):
            fields.append("oauth_provider")
            fields += _provider_fields(values)
    fields.append("allow_self_signed")
    if not _is_true(values.get("ssl_enabled")) and not _is_true(values.get("starttls")):
        fields.append("allow_plaintext_password")
    fields.append("check_interval")
    if "client_secret" in fields:
        fields.append("client_secret_expires")
    fields += ["quota_warnings", "backlog_minutes"]
    return fields


def _provider_fields(values: Mapping[str, Any]) -> list[str]:
    provider = values.get("oauth_provider")
    if _matches(provider, OAuthProvider.GMAIL):
        return ["client_id", "client_secret", "refresh_token"]
    if _matches(provider, OAuthProvider.OFFICE365):
        fields = ["auth_method", "client_id", "tenant_id"]
        if _matches(values.get("auth_method"), AuthMethod.CLIENT_SECRET):
            fields.append("client_secret")
        if _matches(values.get("auth_method"), AuthMethod.DELEGATED):
            fields += ["client_secret", "refresh_token"]
        return fields
    return []


def needs_password(values: Mapping[str, Any]) -> bool:
    """Whether the sign-in path uses Account + Password (SPEC §3)."""
    # OAuth exists only for IMAP (a POP3 mailbox's leftover OAuth answers do not count).
    if not _matches(values.get("mailbox_type"), MailboxType.IMAP) or not _is_true(
        values.get("oauth_enabled")
    ):
        return True
    provider = values.get("oauth_provider")
    if _matches(provider, OAuthProvider.GMAIL):
        return False
    if _matches(provider, OAuthProvider.OFFICE365):
        method = values.get("auth_method")
        return not (
            _matches(method, AuthMethod.CLIENT_SECRET) or _matches(method, AuthMethod.DELEGATED)
        )
    return True


def required_fields(
    values: Mapping[str, Any], operator_apps: Collection[OAuthProvider] = ()
) -> list[str]:
    """Fields that must be filled for the chosen sign-in.

    ``operator_apps``: providers for which the operator configured a default OAuth app
    (MAILBOX_GOOGLE_CLIENT_ID, MAILBOX_MICROSOFT_CLIENT_ID). There a blank Client ID
    means "the operator's app", whose Client Secret the operator holds too.
    """
    required = ["name", "mailbox_type", "host", "port", "account"]
    if needs_password(values):
        required.append("password")
    optional = {
        "comments",
        "ssl_enabled",
        "starttls",
        "status",
        "oauth_enabled",
        "allow_self_signed",
        "allow_plaintext_password",
        "password",
        "check_interval",
        "client_secret_expires",
        "quota_warnings",
        "backlog_minutes",
        *_optional_client_fields(values, operator_apps),
    }
    required += [f for f in visible_fields(values) if f not in optional and f not in required]
    return required


def _optional_client_fields(
    values: Mapping[str, Any], operator_apps: Collection[OAuthProvider]
) -> set[str]:
    provider = values.get("oauth_provider")
    delegated = _matches(provider, OAuthProvider.OFFICE365) and _matches(
        values.get("auth_method"), AuthMethod.DELEGATED
    )
    optional = {"client_secret"} if delegated else set()  # a public client has none
    if not (delegated or _matches(provider, OAuthProvider.GMAIL)):
        return optional
    if (
        any(_matches(provider, app) for app in operator_apps)
        and _blank_to_none(values.get("client_id")) is None
    ):
        optional |= {"client_id", "client_secret"}
    return optional


def _matches(value: Any, member: StrEnum) -> bool:
    return isinstance(value, str) and value.strip().lower() == member.value.lower()


def _is_true(value: Any) -> bool:
    return _yes_no(value) is True


def normalise_input(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Drop what does not apply (hidden fields are never saved) and fill derived defaults."""
    data = {key: value for key, value in raw.items() if key in LABELS or key == "host_url"}
    _apply_host_url(data)
    # Read every Yes/No once, here, so which fields apply is decided from the same answer
    # that is saved (an int 1 from JSON is Yes to both).
    for field in BOOL_FIELDS:
        if field in data:
            data[field] = _yes_no(data[field])
    mailbox_type = data.setdefault("mailbox_type", MailboxType.POP3)
    if not _matches(mailbox_type, MailboxType.IMAP):
        data["oauth_enabled"] = False
    keep = set(visible_fields(data))
    for field in (*OAUTH_FIELDS, "password"):
        if field not in keep:
            data.pop(field, None)
    if "starttls" not in keep:
        data["starttls"] = False
    if "allow_plaintext_password" not in keep:
        data["allow_plaintext_password"] = False
    if data.get("port") in (None, "") and not isinstance(mailbox_type, bool):
        with suppress(ValueError):  # an unknown type is reported on its own field
            data["port"] = default_port(
                str(mailbox_type).strip().upper(), _is_true(data.get("ssl_enabled"))
            )
    return data


def _apply_host_url(data: dict[str, Any]) -> None:
    host = data.get("host")
    if not isinstance(host, str) or "://" not in host:
        return
    try:
        spec = parse_host(host)
    except PydanticCustomError:
        return  # the Host field reports it
    data["host_url"] = host.strip()
    if spec.mailbox_type and data.get("mailbox_type") in (None, ""):
        data["mailbox_type"] = spec.mailbox_type
    if spec.ssl_enabled is not None and data.get("ssl_enabled") in (None, ""):
        data["ssl_enabled"] = spec.ssl_enabled
    if spec.port and data.get("port") in (None, ""):
        data["port"] = spec.port


# ---------------------------------------------------------------- the models


class MailboxBase(SQLModel):
    """Fields shared by the table and the input/output models (no secrets here)."""

    name: str = Field(max_length=100)
    mailbox_type: MailboxType = Field(default=MailboxType.POP3)
    host: str = Field(max_length=253)
    port: int = Field(ge=1, le=65535)
    account: str = Field(max_length=254)
    ssl_enabled: bool = False
    starttls: bool = False
    allow_self_signed: bool = False
    allow_plaintext_password: bool = False
    status: Status = Field(default=Status.ACTIVE)
    comments: str | None = Field(default=None, max_length=2000)
    oauth_enabled: bool = False
    oauth_provider: OAuthProvider | None = None
    auth_method: AuthMethod | None = None
    client_id: str | None = Field(default=None, max_length=255)
    tenant_id: str | None = Field(default=None, max_length=255)
    check_interval: int = Field(default=DEFAULT_CHECK_INTERVAL, ge=1, le=MAX_CHECK_INTERVAL)
    client_secret_expires: date | None = None
    quota_warnings: str = Field(
        default=DEFAULT_QUOTA_WARNINGS,
        max_length=40,
        sa_column_kwargs={"server_default": "80,90,95"},
    )
    backlog_minutes: int | None = Field(default=None, ge=1, le=MAX_BACKLOG_MINUTES)


class CrossFieldProblems(ValueError):
    """Raised by the cross-field validator; carries one FieldError per problem."""

    def __init__(self, problems: list[FieldError]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class MailboxCreate(MailboxBase):
    """What the New Mailbox form (or an import) submits; plaintext secrets only here."""

    name: Name
    mailbox_type: Annotated[MailboxType, _choice(MailboxType)] = MailboxType.POP3
    host: HostName
    port: Annotated[int, Rule(ge=1, le=65535)]
    account: Account
    ssl_enabled: YesNo = False
    starttls: YesNo = False
    allow_self_signed: YesNo = False
    allow_plaintext_password: YesNo = False
    status: Annotated[Status, _choice(Status)] = Status.ACTIVE
    comments: Annotated[Comments | None, Blank] = None
    oauth_enabled: YesNo = False
    oauth_provider: Annotated[OAuthProvider | None, _choice(OAuthProvider)] = None
    auth_method: Annotated[AuthMethod | None, _choice(AuthMethod)] = None
    client_id: Annotated[ClientId | None, Blank] = None
    tenant_id: Annotated[TenantId | None, Blank] = None
    check_interval: Annotated[
        int, BeforeValidator(_interval), Rule(ge=1, le=MAX_CHECK_INTERVAL)
    ] = DEFAULT_CHECK_INTERVAL
    client_secret_expires: Annotated[ExpiryDate | None, Blank] = None
    quota_warnings: Annotated[str, BeforeValidator(_quota_warnings)] = DEFAULT_QUOTA_WARNINGS
    backlog_minutes: Annotated[BacklogMinutes | None, BeforeValidator(_backlog)] = None
    password: Annotated[Secret | None, SecretBlank] = None
    client_secret: Annotated[Secret | None, SecretBlank] = None
    refresh_token: Annotated[Secret | None, SecretBlank] = None
    host_url: str | None = Field(default=None, exclude=True, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        return normalise_input(data) if isinstance(data, Mapping) else data

    @model_validator(mode="after")
    def _cross_field_rules(self, info: ValidationInfo) -> Self:
        kept, apps = _kept(info), _operator_apps(info)
        problems = missing_fields(self.model_dump(), apps, present=kept)
        problems += self._consistency_problems()
        if problems:
            raise CrossFieldProblems(problems)
        return self

    def _consistency_problems(self) -> list[FieldError]:
        problems = []
        if self.host_url:
            spec = parse_host(self.host_url)
            if spec.mailbox_type and spec.mailbox_type is not self.mailbox_type:
                scheme = self.host_url.split("://", 1)[0].lower()
                problems.append(
                    _error(
                        "host",
                        f"is an {scheme}:// URL but Mailbox Type is {self.mailbox_type.value}",
                    )
                )
            if spec.port and spec.port != self.port:
                problems.append(_error("port", f"is {self.port} but the Host URL says {spec.port}"))
        if (
            self.oauth_provider is OAuthProvider.OFFICE365
            and self.client_id
            and not _GUID.match(self.client_id)
        ):
            problems.append(
                _error(
                    "client_id",
                    "must be the Application (client) ID from "
                    "Azure, a GUID such as "
                    "00000000-0000-0000-0000-000000000000",
                )
            )
        return problems


def _kept(info: ValidationInfo) -> frozenset[str]:
    """The stored secrets an edit leaves unset (kept); none when creating."""
    context = info.context if isinstance(info.context, Mapping) else {}
    return frozenset(context.get("kept", ()))


def _operator_apps(info: ValidationInfo) -> tuple[OAuthProvider, ...]:
    """Providers with an operator app (see ``required_fields``)."""
    context = info.context if isinstance(info.context, Mapping) else {}
    return tuple(context.get("operator_apps", ()))


def missing_fields(
    values: Mapping[str, Any],
    operator_apps: Collection[OAuthProvider] = (),
    present: frozenset[str] = frozenset(),
) -> list[FieldError]:
    """A 'required' problem for each field the chosen sign-in needs and lacks.

    ``present``: fields that count as filled although blank (stored secrets an edit keeps).
    """
    problems = []
    for field in required_fields(values, operator_apps):
        if field not in present and _blank_to_none(values.get(field)) is None:
            problems.append(_error(field, _required_message(field, values)))
    return problems


def _required_message(field: str, values: Mapping[str, Any]) -> str:
    if field in {
        "client_id",
        "client_secret",
        "refresh_token",
        "tenant_id",
        "password",
    } and _is_true(values.get("oauth_enabled")):
        provider = values.get("oauth_provider") or "this provider"
        return f"is required for {provider} sign-in"
    return "is required"


def _error(field: str, message: str) -> FieldError:
    return FieldError(field=field, label=LABELS.get(field, field), message=message)


class MailboxPublic(MailboxBase):
    """What leaves the core: no secrets, only whether each one is set."""

    id: int
    version: int
    has_password: bool
    has_client_secret: bool
    has_refresh_token: bool
    created_at: datetime
    updated_at: datetime


class HealthPublic(SQLModel):
    """A mailbox's health as shown in the list."""

    mailbox_id: int
    last_check_at: datetime
    last_ok: bool
    last_message: str
    last_failed_step: str | None = None
    last_latency_ms: float
    last_message_count: int | None = None
    last_success_at: datetime | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None


class CheckPublic(SQLModel):
    """One recorded connection test."""

    started_at: datetime
    ok: bool
    failed_step: str | None = None
    message: str
    latency_ms: float
    message_count: int | None = None


class AuditPublic(SQLModel):
    """One audit-trail entry as shown on the Activity page."""

    id: int
    at: datetime
    actor: str
    actor_subject: str | None = None
    action: str
    mailbox_id: int | None
    mailbox_name: str
    changes: dict[str, Any]


class MailboxUpdate(MailboxCreate):
    """An edit of a saved mailbox. A stored secret left blank is simply not set: it is
    kept (``kept_secrets``), as full-stack-fastapi-template's UserUpdate reads its fields
    with exclude_unset. A secret set to a value replaces the stored one; a secret that is
    neither set nor kept (cleared, or no longer shown) is removed."""

    _kept: frozenset[str] = PrivateAttr(default=frozenset())

    @property
    def kept_secrets(self) -> frozenset[str]:
        """Stored secrets this edit keeps as they are (only those the form still shows)."""
        return self._kept


def parse_update(
    raw: Mapping[str, Any],
    stored: set[str] | frozenset[str],
    operator_apps: Collection[OAuthProvider] = (),
) -> MailboxUpdate:
    """Validate an edit: a blank secret that is stored counts as present and is kept."""
    values = dict(raw)
    blank = frozenset(f for f in stored if _secret_blank_to_none(values.get(f)) is None)
    for field in blank:
        values.pop(field, None)
    update = _parse(MailboxUpdate, values, kept=blank, operator_apps=operator_apps)
    shown = set(visible_fields({f: _form_value(getattr(update, f)) for f in SETTING_FIELDS}))
    update._kept = frozenset(blank & shown)
    return update


def _form_value(value: Any) -> Any:
    value = plain(value)
    return ("Yes" if value else "No") if isinstance(value, bool) else value


def changed_destination(saved: MailboxBase, edited: MailboxBase) -> list[str]:
    """The destination fields (where a stored secret would be sent) that an edit changes."""
    return [
        field
        for field in DESTINATION_FIELDS
        if plain(getattr(saved, field)) != plain(getattr(edited, field))
    ]


def secrets_used(mailbox: MailboxBase) -> list[str]:
    """The secrets this mailbox's sign-in sends somewhere (SPEC §3), in form order."""
    values = {field: _form_value(getattr(mailbox, field)) for field in SETTING_FIELDS}
    used = ["password"] if needs_password(values) else []
    shown = visible_fields(values)
    return used + [field for field in ("client_secret", "refresh_token") if field in shown]


# ---------------------------------------------------------------- entry point


def parse_create(
    raw: Mapping[str, Any], operator_apps: Collection[OAuthProvider] = ()
) -> MailboxCreate:
    """Validate form or import values; raise ValidationFailed naming every bad field.

    ``operator_apps``: see ``required_fields``.
    """
    return _parse(MailboxCreate, raw, operator_apps=operator_apps)


_M = TypeVar("_M", bound=MailboxCreate)


def _parse(
    model: type[_M],
    raw: Mapping[str, Any],
    kept: frozenset[str] = frozenset(),
    operator_apps: Collection[OAuthProvider] = (),
) -> _M:
    try:
        context = {"kept": kept, "operator_apps": tuple(operator_apps)}
        return model.model_validate(dict(raw), context=context)
    except ValidationError as exc:
        errors = _field_errors(exc)
    if not isinstance(raw, Mapping):
        raise ValidationFailed(errors)
    failing = {e.field for e in errors}
    # Field errors stop pydantic before the cross-field rules; report those too.
    missing = missing_fields(normalise_input(raw), operator_apps, present=kept)
    errors += [e for e in missing if e.field not in failing]
    raise ValidationFailed(sorted(errors, key=_form_position))


def _form_position(error: FieldError) -> int:
    order = list(LABELS)
    return order.index(error.field) if error.field in order else len(order)


def _field_errors(exc: ValidationError) -> list[FieldError]:
    errors: list[FieldError] = []
    # Inputs are read only to tell a blank from a wrong value; never echoed (secrets).
    for item in exc.errors():
        original = (item.get("ctx") or {}).get("error")
        if isinstance(original, CrossFieldProblems):
            errors += original.problems
            continue
        field = str(item["loc"][0]) if item["loc"] else "form"
        errors.append(_error(field, _message(field, item)))
    unique = {(e.field, e.message): e for e in errors}
    return list(unique.values())


def _message(field: str, item: Mapping[str, Any]) -> str:
    kind = item["type"]
    if kind == "missing" or item.get("input") is None:
        return "is required"
    if kind in {
        "single_line",
        "control_chars",
        "nul",
        "host_space",
        "host_scheme",
        "host_url",
        "host_userinfo",
        "host_path",
        "host_name",
        "host_numeric",
        "tenant",
        "unencodable",
        "interval",
        "expiry_date",
        "quota_warnings",
        "backlog",
    }:
        return str(item["msg"])
    if field == "form":
        return "the submitted values could not be read"
    return _FIELD_HINTS.get(field, str(item["msg"]))
