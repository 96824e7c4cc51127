"""Access tokens for XOAUTH2: Gmail and every Office365 method, through Authlib.

Tokens are cached in memory until shortly before they expire. A rotated refresh token
is handed to ``on_new_refresh_token`` at once so the caller can store it encrypted.
Provider errors become ``TokenError`` with a hint written for a person.

Also the one code-for-tokens exchange of Connect account (``exchange_code``). A mailbox
whose Client ID is blank uses the operator's app (MAILBOX_GOOGLE_CLIENT_ID and
MAILBOX_MICROSOFT_CLIENT_ID with their secrets); so does a request naming that app's
Client ID without a secret.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from mailbox_core.config import NO_APP, CheckSettings, OAuthApp
from mailbox_core.errors import MailboxCoreError
from mailbox_core.schemas import AuthMethod, MailboxType, OAuthProvider

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
OFFICE365_APP_SCOPE = "https://outlook.office365.com/.default"
#: Microsoft's IMAP/POP OAuth guide: the delegated permission of each protocol.
OFFICE365_IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"
OFFICE365_POP_SCOPE = "https://outlook.office.com/POP.AccessAsUser.All"
OFFICE365_USER_SCOPE = f"{OFFICE365_IMAP_SCOPE} offline_access"
EXPIRY_MARGIN = 60.0  # seconds before expiry at which a cached token is renewed

_HINTS = {
    "AADSTS7000222": "The client secret has expired: create a new one in Azure (Certificates "
    "& secrets) and paste it into Client Secret.",
    "AADSTS7000215": "The client secret is wrong: paste the secret's Value, not its ID.",
    "AADSTS50076": "Multi-factor authentication blocks the password grant: use "
    "Authentication Method = Client Secret.",
    "AADSTS50079": "Multi-factor authentication blocks the password grant: use "
    "Authentication Method = Client Secret.",
    "AADSTS50126": "Microsoft refused Account and Password: check both.",
    "AADSTS700016": "No app with this Client ID in this tenant: check Client ID and Tenant ID.",
    "AADSTS90002": "No such tenant: check Tenant ID.",
    "AADSTS50020": "This account is not in the tenant: check Tenant ID, or sign in with "
    "an account of that tenant.",
    "AADSTS7000218": "The app is a confidential client: fill in its Client Secret.",
    "AADSTS65001": "Nobody has consented to the app's IMAP/POP permission yet: an admin "
    "grants it in Entra ID (API permissions), or the user consents on connecting.",
}


class TokenError(MailboxCoreError):
    """No access token could be obtained; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True, repr=False)
class TokenRequest:
    """What one token needs. Holds secrets: never log it."""

    provider: OAuthProvider
    client_id: str
    account: str
    auth_method: AuthMethod | None = None
    tenant_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    password: str | None = None
    mailbox_type: MailboxType = MailboxType.IMAP

    def cache_key(self) -> str:
        # A digest, so the cache holds no secret as a key.
        raw = "\x00".join(
            str(v)
            for v in (
                self.provider,
                self.client_id,
                self.account,
                self.auth_method,
                self.tenant_id,
                self.client_secret,
                self.refresh_token,
                self.password,
                self.mailbox_type,
            )
        )
        return hashlib.sha256(raw.encode()).hexdigest()


def operator_apps(settings: CheckSettings) -> frozenset[OAuthProvider]:
    """Providers with an operator app: there a blank Client ID means that app."""
    apps = {
        OAuthProvider.GMAIL: settings.google_app,
        OAuthProvider.OFFICE365: settings.microsoft_app,
    }
    return frozenset(provider for provider, app in apps.items() if app)


def delegated_scope(mailbox_type: MailboxType | str) -> str:
    """The Office365 delegated permission for the protocol, with offline access."""
    permission = (
        OFFICE365_POP_SCOPE
        if MailboxType(mailbox_type) is MailboxType.POP3
        else OFFICE365_IMAP_SCOPE
    )
    return f"{permission} offline_access"


class TokenCache:
    """Access tokens in memory, keyed by a digest of the request."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._tokens.get(key)
        if entry and entry[1] - EXPIRY_MARGIN > time.monotonic():
            return entry[0]
        return None

    def put(self, key: str, token: str, expires_in: float) -> None:
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + expires_in)


class TokenClient:
    """Obtains access tokens from Google or the Microsoft identity platform."""

    def __init__(
        self,
        *,
        google_token_url: str = GOOGLE_TOKEN_URL,
        microsoft_authority: str = MICROSOFT_AUTHORITY,
        timeout: float = 10.0,
        cache: TokenCache | None = None,
        google_app: OAuthApp = NO_APP,
        microsoft_app: OAuthApp = NO_APP,
    ) -> None:
        self.google_token_url = google_token_url
        self.microsoft_authority = microsoft_authority.rstrip("/")
        self.timeout = timeout
        self.cache = cache or TokenCache()
        self.apps = {OAuthProvider.GMAIL: google_app, OAuthProvider.OFFICE365: microsoft_app}

    @classmethod
    def from_settings(cls, settings: CheckSettings) -> TokenClient:
        """The token client of a configuration: its endpoints, timeout and operator apps."""
        return cls(
            google_token_url=settings.google_token_url,
            microsoft_authority=settings.microsoft_authority,
            timeout=settings.timeout,
            google_app=settings.google_app,
            microsoft_app=settings.microsoft_app,
        )

    def access_token(
        self, request: TokenRequest, on_new_refresh_token: Callable[[str], None] | None = None
    ) -> str:
        """A valid access token for ``request`` (cached, or fetched now)."""
        key = request.cache_key()
        cached = self.cache.get(key)
        if cached:
            return cached
        token = self._fetch(request)
        access = token.get("access_token")
        if not access:
            raise TokenError(
                "The token endpoint answered without an access token",
                "Check the token endpoint settings.",
            )
        rotated = token.get("refresh_token")
        if (
            rotated
            and request.refresh_token
            and rotated != request.refresh_token
            and on_new_refresh_token is not None
        ):
            on_new_refresh_token(str(rotated))
        self.cache.put(key, str(access), _seconds(token.get("expires_in")))
        return str(access)

    def token_url(self, request: TokenRequest) -> str:
        if request.provider is OAuthProvider.GMAIL:
            return self.google_token_url
        return self.microsoft_url(request.tenant_id or "", "token")

    def microsoft_url(self, tenant_id: str, endpoint: str) -> str:
        """``token`` or ``authorize`` of the tenant (a GUID or domain: one path segment)."""
        return f"{self.microsoft_authority}/{tenant_id}/oauth2/v2.0/{endpoint}"

    def client(self, request: TokenRequest) -> tuple[str, str | None]:
        """Client ID and secret for a request: its own, or the operator's app."""
        app = self.apps.get(request.provider) or NO_APP
        operator = request.provider is OAuthProvider.GMAIL or (
            request.auth_method is AuthMethod.DELEGATED
        )
        if operator and app and request.client_id in ("", app.client_id):
            return app.client_id, request.client_secret or app.client_secret or None
        if not request.client_id:
            variable = "GOOGLE" if request.provider is OAuthProvider.GMAIL else "MICROSOFT"
            raise TokenError(
                "No Client ID for this mailbox",
                f"Type the Client ID of the mailbox's app, or have the operator set "
                f"MAILBOX_{variable}_CLIENT_ID.",
            )
        return request.client_id, request.client_secret

    def exchange_code(
        self, request: TokenRequest, *, code: str, code_verifier: str, redirect_uri: str, scope: str
    ) -> dict[str, object]:
        """Connect account: the authorization code, with its PKCE verifier, for tokens."""
        url = self.token_url(request)

        def grant() -> dict[str, object]:
            with self._session(request, scope=scope) as session:
                return dict(
                    session.fetch_token(
                        url,
                        grant_type="authorization_code",
                        code=code,
                        code_verifier=code_verifier,
                        redirect_uri=redirect_uri,
                        scope=scope,
                        timeout=self.timeout,
                    )
                )

        return self._call(url, grant, code=True)

    def _fetch(self, request: TokenRequest) -> dict[str, object]:
        if request.provider is OAuthProvider.UNKNOWN:
            raise TokenError(
                "No token can be obtained for provider Unknown",
                "Choose Gmail or Office365 as Oauth Provider.",
            )
        url = self.token_url(request)
        return self._call(url, lambda: self._grant(request, url))

    def _call(
        self, url: str, grant: Callable[[], dict[str, object]], *, code: bool = False
    ) -> dict[str, object]:
        try:
            return dict(grant())
        except OAuthError as exc:
            raise _token_error(exc, code=code) from exc
        except requests.Timeout as exc:
            raise TokenError(
                f"The token endpoint did not answer within {self.timeout:g} s",
                "The identity provider is slow or unreachable; try again.",
            ) from exc
        except requests.RequestException as exc:
            raise TokenError(
                f"Could not reach the token endpoint {_origin(url)}",
                "Check the network, or the token endpoint settings.",
            ) from exc
        except ValueError as exc:  # not JSON
            raise TokenError(
                f"The token endpoint {_origin(url)} did not answer with a token",
                "Check the token endpoint settings.",
            ) from exc

    def _grant(self, request: TokenRequest, url: str) -> dict[str, object]:
        if request.provider is OAuthProvider.GMAIL:
            with self._session(request, scope=None) as session:
                return dict(
                    session.refresh_token(
                        url, refresh_token=request.refresh_token, timeout=self.timeout
                    )
                )
        if request.auth_method is AuthMethod.DELEGATED:
            scope = delegated_scope(request.mailbox_type)
            with self._session(request, scope=scope) as session:
                return dict(
                    session.refresh_token(
                        url, refresh_token=request.refresh_token, timeout=self.timeout
                    )
                )
        if request.auth_method is AuthMethod.CLIENT_SECRET:
            with self._session(request, scope=OFFICE365_APP_SCOPE) as session:
                return dict(
                    session.fetch_token(url, grant_type="client_credentials", timeout=self.timeout)
                )
        with self._session(request, scope=OFFICE365_USER_SCOPE) as session:
            return dict(
                session.fetch_token(
                    url,
                    grant_type="password",
                    username=request.account,
                    password=request.password or "",
                    timeout=self.timeout,
                )
            )

    def _session(self, request: TokenRequest, scope: str | None) -> OAuth2Session:
        client_id, client_secret = self.client(request)
        method = "client_secret_post" if client_secret else "none"
        return OAuth2Session(
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            token_endpoint_auth_method=method,
        )


def _token_error(exc: OAuthError, *, code: bool = False) -> TokenError:
    error = str(exc.error or "error")
    description = str(exc.description or "")
    for marker, hint in _HINTS.items():
        if marker in description:
            return TokenError(f"The identity provider refused the token request ({marker})", hint)
    if error == "invalid_grant" and code:
        return TokenError(
            "The identity provider refused the sign-in code (invalid_grant)",
            "The code expired or was already used: press Connect again.",
        )
    if error == "invalid_grant":
        return TokenError(
            "The identity provider refused the grant (invalid_grant)",
            "The refresh token was revoked or has expired, or the password is "
            "wrong: re-authorise the app (Connect account) or paste a new Refresh Token.",
        )
    if error in {"invalid_client", "unauthorized_client"}:
        return TokenError(
            f"The identity provider refused the client ({error})",
            "Check Client ID and Client Secret.",
        )
    return TokenError(
        f"The identity provider refused the token request ({error})",
        description.splitlines()[0][:200] if description else "",
    )


def _origin(url: str) -> str:
    parts = url.split("/")
    return "/".join(parts[:3]) if len(parts) >= 3 else url


def _seconds(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 3600.0
