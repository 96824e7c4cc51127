"""Settings from the environment, and from values the entrypoint passes from st.secrets."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailbox_core.crypto import SecretBox, load_or_create_key_file
from mailbox_core.egress import UNGUARDED, EgressMode, EgressPolicy
from mailbox_core.errors import ConfigurationError

#: Every setting: environment name -> (default, what it does). README's table mirrors this.
SETTINGS: dict[str, tuple[str, str]] = {
    "MAILBOX_DATABASE_URL": (
        "sqlite:///data/mailboxes.db",
        "SQLAlchemy URL of the database (postgresql://… uses psycopg 3)",
    ),
    "MAILBOX_ENCRYPTION_KEYS": (
        "",
        "comma-separated Fernet keys; the first encrypts, all decrypt. Unset: data/secret.key",
    ),
    "MAILBOX_DATA_DIR": ("data", "where the embedded database and the key file live"),
    "MAILBOX_CA_FILE": ("", "extra CA bundle (PEM) trusted for mail servers, e.g. a corporate CA"),
    "MAILBOX_CHECK_TIMEOUT": ("10", "seconds one connection test may take"),
    "MAILBOX_CHECK_CONCURRENCY": ("128", "connection tests run at once by Check all"),
    "MAILBOX_GOOGLE_TOKEN_URL": ("https://oauth2.googleapis.com/token", "Google token endpoint"),
    "MAILBOX_MICROSOFT_AUTHORITY": (
        "https://login.microsoftonline.com",
        "Microsoft identity platform authority (sovereign clouds differ); its "
        "<tenant>/oauth2/v2.0/token and …/authorize are the token and consent pages",
    ),
    "MAILBOX_GOOGLE_AUTHORIZE_URL": (
        "https://accounts.google.com/o/oauth2/v2/auth",
        "Google authorization endpoint: the consent page of Connect account",
    ),
    "MAILBOX_GOOGLE_CLIENT_ID": (
        "",
        "the operator's Google OAuth client: used by Gmail mailboxes whose Client ID is blank",
    ),
    "MAILBOX_GOOGLE_CLIENT_SECRET": ("", "the client secret of MAILBOX_GOOGLE_CLIENT_ID"),
    "MAILBOX_MICROSOFT_CLIENT_ID": (
        "",
        "the operator's Entra ID app: used by Office365 Connect account (delegated) "
        "mailboxes whose Client ID is blank",
    ),
    "MAILBOX_MICROSOFT_CLIENT_SECRET": (
        "",
        "the client secret of MAILBOX_MICROSOFT_CLIENT_ID (unset: a public client)",
    ),
    "MAILBOX_PUBLIC_URL": (
        "",
        "the address people open the app at, path prefix included, e.g. "
        "https://mbx.corp.example/mbx: alerts link to it, and Connect account returns to it "
        "+ /connect_callback (unset: [auth] redirect_uri without /oauth2callback in hosted "
        "mode, http://localhost:<port> in local mode; alerts then carry no link)",
    ),
    "MAILBOX_EGRESS": (
        "",
        "where connection tests may go: public, private or off. Unset: public when sign-in "
        "([auth]) is configured, off in local mode",
    ),
    "MAILBOX_EGRESS_ALLOW": ("", "comma-separated networks (CIDR) allowed in every mode"),
    "MAILBOX_TWIN_DNS": (
        "on",
        "look Host up when a mailbox is saved, so two names of one server count as the same "
        "mailbox (on or off; off: host names are compared)",
    ),
    "MAILBOX_ADMINS": ("", "comma-separated emails or @domains given the admin role"),
    "MAILBOX_EDITORS": ("", "comma-separated emails or @domains given the editor role"),
    "MAILBOX_VIEWERS": ("", "comma-separated emails or @domains given the viewer role"),
    "MAILBOX_SESSION_MAX_AGE": (
        "43200",
        "seconds a sign-in lasts (from the ID token's iat) before signing in again",
    ),
    "MAILBOX_LOG_LEVEL": ("INFO", "log level of the app (the command line logs WARNING)"),
    "MAILBOX_SECRETS_FILE": (
        "",
        "the command line's secrets.toml. Unset: ~/.streamlit/secrets.toml, then "
        ".streamlit/secrets.toml in the working directory (as Streamlit)",
    ),
    # Scheduled checks (issue 13): mailbox_core/monitoring/.
    "MAILBOX_CHECK_TICK": (
        "60",
        "seconds between scheduled sweeps (check-due --loop, the worker's periodic task); "
        "a divisor of 60 or a multiple of 60 dividing 3600",
    ),
    "MAILBOX_CHECK_LEASE": (
        "",
        "seconds a claimed mailbox stays claimed by one runner. Unset: twice "
        "MAILBOX_CHECK_TIMEOUT plus 30",
    ),
    "MAILBOX_LOGIN_FAILURE_BUDGET": (
        "10",
        "failed sign-ins per mail server host in 10 minutes that scheduled checks and Check "
        "all may cause; past it the host's other mailboxes are skipped",
    ),
    "MAILBOX_ALERT_AFTER": ("2", "consecutive failed checks that open a mailbox's alert"),
    "MAILBOX_ALERT_DIGEST_AFTER": (
        "5",
        "more alerts than this at once are sent as one digest",
    ),
    "MAILBOX_ALERT_SMTP_URL": (
        "",
        "alert email server: smtp://host:25, smtp+starttls://user:password@host:587 or "
        "smtps://user:password@host:465",
    ),
    "MAILBOX_ALERT_EMAIL_FROM": ("mailbox-manager@localhost", "sender of alert emails"),
    "MAILBOX_ALERT_EMAIL_TO": ("", "comma-separated addresses that receive alert emails"),
    "MAILBOX_ALERT_WEBHOOK_URL": (
        "",
        "URL that receives alerts as Slack/Teams-compatible JSON (POST)",
    ),
    "MAILBOX_HEARTBEAT_URL": (
        "",
        "URL requested (GET) after every scheduled sweep, for an outside monitor",
    ),
    "MAILBOX_LIST_REFRESH": (
        "30",
        "seconds between an open Mailboxes page's looks for new checks (0: never)",
    ),
    "MAILBOX_METRICS_PER_MAILBOX": (
        "on",
        "export the quota and oldest-unseen gauges per mailbox (on or off; off: only the "
        "counts of mailboxes showing each vital sign, for fleets too big for a series each)",
    ),
    "MAILBOX_CHECK_RETENTION_DAYS": (
        "30",
        "days of check history (and alert and sweep records) kept; sweeps prune older ones",
    ),
}


@dataclass(frozen=True)
class OAuthApp:
    """An OAuth client the operator registered for every mailbox of one provider."""

    client_id: str = ""
    client_secret: str = field(default="", repr=False)

    def __bool__(self) -> bool:
        return bool(self.client_id)


#: No operator app configured.
NO_APP = OAuthApp()


@dataclass(frozen=True)
class CheckSettings:
    """How connection tests run, and where their access tokens come from."""

    timeout: float = 10.0
    concurrency: int = 128
    ca_file: str | None = None
    google_token_url: str = "https://oauth2.googleapis.com/token"
    microsoft_authority: str = "https://login.microsoftonline.com"
    egress: EgressPolicy = UNGUARDED
    google_app: OAuthApp = NO_APP
    microsoft_app: OAuthApp = NO_APP
    #: Read vital signs (quota, backlog) on each check; False: the bare connection test.
    vitals: bool = True
    #: Look Host up on save for "same mailbox twice" (mailbox_core/twins.py).
    twin_dns: bool = True


#: Where the provider sends the browser back: the page pages/connect_callback.py.
CONNECT_CALLBACK_PATH = "connect_callback"
#: Local mode's address: Google and Microsoft accept http://localhost redirect URIs.
LOCAL_PUBLIC_URL = "http://localhost:{port}"


@dataclass(frozen=True)
class ConnectSettings:
    """Connect account: the consent pages, and the app's own address to come back to."""

    google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    #: The app's public address; may hold "{port}" (as Streamlit's [auth] redirect_uri
    #: may); empty in hosted mode when nothing says it.
    public_url: str = LOCAL_PUBLIC_URL

    def redirect_uri(self, port: int, base_path: str = "") -> str:
        """The callback URL to register with the provider, for a server on ``port``."""
        if not self.public_url:
            raise ConfigurationError(
                "Connect account needs the app's public address: set MAILBOX_PUBLIC_URL "
                "(e.g. https://mbx.corp.example/mbx)."
            )
        base = self.public_url.replace("{port}", str(port)).rstrip("/")
        if self.public_url == LOCAL_PUBLIC_URL and base_path.strip("/"):
            base += "/" + base_path.strip("/")
        return f"{base}/{CONNECT_CALLBACK_PATH}"


@dataclass(frozen=True)
class MonitorSettings:
    """How scheduled checks, the never-harm rules and alerts behave (issue 13)."""

    tick: float = 60.0
    lease: float = 50.0
    login_failure_budget: int = 10
    alert_after: int = 2
    digest_after: int = 5
    smtp_url: str = field(default="", repr=False)
    email_from: str = "mailbox-manager@localhost"
    email_to: tuple[str, ...] = ()
    webhook_url: str = field(default="", repr=False)
    public_url: str = ""
    heartbeat_url: str = field(default="", repr=False)
    retention_days: int = 30
    #: Seconds between an open Mailboxes page's looks for new checks; 0: it never looks.
    list_refresh: int = 30
    #: Export quota and backlog gauges per mailbox (one series each), not only the counts.
    metrics_per_mailbox: bool = True


@dataclass(frozen=True)
class Settings:
    """Resolved settings; hashable so the app can cache one service per configuration."""

    database_url: str
    encryption_keys: tuple[str, ...] = field(repr=False)
    data_dir: Path
    checks: CheckSettings = CheckSettings()
    monitor: MonitorSettings = MonitorSettings()
    connect: ConnectSettings = ConnectSettings()
    #: Hosted mode: Streamlit's [auth] is configured, so every page needs sign-in.
    sign_in: bool = False

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secret.key"

    def secret_box(self, before_new_key: Callable[[], None] | None = None) -> SecretBox:
        """Build the secret box, creating the embedded key file when no keys are set.

        ``before_new_key`` runs before a missing key file is created and may refuse by raising.
        """
        if self.encryption_keys:
            return SecretBox(self.encryption_keys)
        text = load_or_create_key_file(self.key_file, before_create=before_new_key)
        try:
            return SecretBox(_split_keys(text))
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"The key file {self.key_file} does not hold a valid Fernet key (32 url-safe "
                "base64-encoded bytes): restore it from your backup."
            ) from exc


def load_settings(
    environ: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None
) -> Settings:
    """Resolve settings: environment first, then the `[mailbox]` secrets table, then defaults.

    ``secrets`` is the whole secrets mapping (Streamlit's st.secrets, or
    ``read_secrets_file()`` for the command line): its `[mailbox]` table holds settings,
    and an `[auth]` table means hosted mode.
    """
    environ = os.environ if environ is None else environ
    secrets = secrets or {}
    table = secrets.get("mailbox") or {}

    def value(name: str) -> str:
        if environ.get(name):
            return environ[name]
        short = name.removeprefix("MAILBOX_").lower()
        for candidate in (name, short):
            if table.get(candidate):
                found = table[candidate]
                return ",".join(found) if isinstance(found, list | tuple) else str(found)
        return SETTINGS[name][0]

    sign_in = bool(secrets.get("auth"))
    data_dir = Path(value("MAILBOX_DATA_DIR"))
    url = value("MAILBOX_DATABASE_URL")
    if url == SETTINGS["MAILBOX_DATABASE_URL"][0]:
        url = f"sqlite:///{data_dir / 'mailboxes.db'}"
    default_egress = EgressMode.PUBLIC if sign_in else EgressMode.OFF
    timeout = _number(value("MAILBOX_CHECK_TIMEOUT"), "MAILBOX_CHECK_TIMEOUT", 0.1, 300)
    return Settings(
        database_url=url,
        encryption_keys=_split_keys(value("MAILBOX_ENCRYPTION_KEYS")),
        data_dir=data_dir,
        sign_in=sign_in,
        checks=CheckSettings(
            timeout=timeout,
            concurrency=int(
                _number(value("MAILBOX_CHECK_CONCURRENCY"), "MAILBOX_CHECK_CONCURRENCY", 1, 4096)
            ),
            ca_file=_ca_file(value("MAILBOX_CA_FILE")),
            google_token_url=value("MAILBOX_GOOGLE_TOKEN_URL"),
            microsoft_authority=value("MAILBOX_MICROSOFT_AUTHORITY"),
            egress=EgressPolicy.parse(
                value("MAILBOX_EGRESS") or default_egress.value, value("MAILBOX_EGRESS_ALLOW")
            ),
            google_app=OAuthApp(
                value("MAILBOX_GOOGLE_CLIENT_ID").strip(),
                value("MAILBOX_GOOGLE_CLIENT_SECRET"),
            ),
            microsoft_app=OAuthApp(
                value("MAILBOX_MICROSOFT_CLIENT_ID").strip(),
                value("MAILBOX_MICROSOFT_CLIENT_SECRET"),
            ),
            twin_dns=_switch(value("MAILBOX_TWIN_DNS"), "MAILBOX_TWIN_DNS"),
        ),
        connect=ConnectSettings(
            google_authorize_url=value("MAILBOX_GOOGLE_AUTHORIZE_URL"),
            public_url=value("MAILBOX_PUBLIC_URL").strip() or _default_public_url(secrets),
        ),
        monitor=_monitor_settings(value, timeout),
    )


def _switch(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in ("on", "1", "yes", "true"):
        return True
    if value in ("off", "0", "no", "false"):
        return False
    raise ConfigurationError(f"{name} must be on or off; got {text!r}.")


def _monitor_settings(value: Callable[[str], str], timeout: float) -> MonitorSettings:
    tick = _number(value("MAILBOX_CHECK_TICK"), "MAILBOX_CHECK_TICK", 1, 3600)
    if not (60 % tick == 0 if tick < 60 else tick % 60 == 0 and 3600 % tick == 0):
        raise ConfigurationError(
            "MAILBOX_CHECK_TICK must divide a minute (5, 10, 30, 60 …) or be whole minutes "
            "that divide an hour (120, 300, …)."
        )
    lease_raw = value("MAILBOX_CHECK_LEASE")
    lease = _number(lease_raw, "MAILBOX_CHECK_LEASE", 1, 86400) if lease_raw else timeout * 2 + 30
    if lease <= timeout:
        raise ConfigurationError(
            "MAILBOX_CHECK_LEASE must be longer than MAILBOX_CHECK_TIMEOUT: a check must end "
            "before another runner may take its mailbox."
        )
    to = tuple(a.strip() for a in value("MAILBOX_ALERT_EMAIL_TO").split(",") if a.strip())
    smtp = value("MAILBOX_ALERT_SMTP_URL")
    if to and not smtp:
        raise ConfigurationError("MAILBOX_ALERT_EMAIL_TO is set but MAILBOX_ALERT_SMTP_URL is not.")
    return MonitorSettings(
        tick=tick,
        lease=lease,
        login_failure_budget=_whole(value, "MAILBOX_LOGIN_FAILURE_BUDGET", 1, 10000),
        alert_after=_whole(value, "MAILBOX_ALERT_AFTER", 1, 1000),
        digest_after=_whole(value, "MAILBOX_ALERT_DIGEST_AFTER", 1, 10000),
        smtp_url=smtp,
        email_from=value("MAILBOX_ALERT_EMAIL_FROM"),
        email_to=to,
        webhook_url=value("MAILBOX_ALERT_WEBHOOK_URL"),
        public_url=value("MAILBOX_PUBLIC_URL").rstrip("/"),
        heartbeat_url=value("MAILBOX_HEARTBEAT_URL"),
        retention_days=_whole(value, "MAILBOX_CHECK_RETENTION_DAYS", 1, 3650),
        list_refresh=_whole(value, "MAILBOX_LIST_REFRESH", 0, 86400),
        metrics_per_mailbox=_switch(
            value("MAILBOX_METRICS_PER_MAILBOX"), "MAILBOX_METRICS_PER_MAILBOX"
        ),
    )


def _whole(value: Callable[[str], str], name: str, low: int, high: int) -> int:
    number = _number(value(name), name, low, high)
    if number != int(number):
        raise ConfigurationError(f"{name} must be a whole number, not {value(name)!r}.")
    return int(number)


def _default_public_url(secrets: Mapping[str, Any]) -> str:
    """Hosted: Streamlit's [auth] redirect_uri names the public address; local: localhost."""
    auth = secrets.get("auth") or {}
    if not auth:
        return LOCAL_PUBLIC_URL
    redirect = str(auth.get("redirect_uri") or "").strip()
    return redirect.removesuffix("/oauth2callback") if redirect.endswith("/oauth2callback") else ""


def read_secrets_file(
    environ: Mapping[str, str] | None = None, home: Path | None = None
) -> dict[str, Any]:
    """The secrets.toml Streamlit would read, for the command line (later files win)."""
    environ = os.environ if environ is None else environ
    if environ.get("MAILBOX_SECRETS_FILE"):
        paths = [Path(environ["MAILBOX_SECRETS_FILE"])]
        if not paths[0].is_file():
            raise ConfigurationError(
                f"MAILBOX_SECRETS_FILE points to {paths[0]}, which is not a file."
            )
    else:
        home = Path.home() if home is None else home
        paths = [home / ".streamlit" / "secrets.toml", Path(".streamlit") / "secrets.toml"]
    merged: dict[str, Any] = {}
    for path in paths:
        if path.is_file():
            merged.update(_read_toml(path))
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"The secrets file {path} cannot be read: {exc}") from exc


def _number(raw: str, name: str, low: float, high: float) -> float:
    try:
        number = float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}.") from exc
    if not low <= number <= high:
        raise ConfigurationError(f"{name} must be between {low:g} and {high:g}.")
    return number


def _ca_file(raw: str) -> str | None:
    if not raw:
        return None
    if not Path(raw).is_file():
        raise ConfigurationError(f"MAILBOX_CA_FILE points to {raw}, which is not a file.")
    return raw


def _split_keys(raw: str) -> tuple[str, ...]:
    keys = tuple(part.strip() for part in raw.replace("\n", ",").split(",") if part.strip())
    if raw.strip() and not keys:
        raise ConfigurationError("MAILBOX_ENCRYPTION_KEYS is set but holds no key.")
    return keys
