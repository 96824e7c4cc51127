"""Access tokens for XOAUTH2: Gmail and both Office365 methods, through Authlib.

Tokens are cached in memory until shortly before they expire. A rotated refresh token
is handed to ``on_new_refresh_token`` at once so the caller can store it encrypted.
Provider errors become ``TokenError`` with a hint written for a person.
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

from mailbox_core.errors import MailboxCoreError
from mailbox_core.schemas import AuthMethod, OAuthProvider

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
OFFICE365_APP_SCOPE = "https://outlook.office365.com/.default"
OFFICE365_USER_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"
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
            )
        )
        return hashlib.sha256(raw.encode()).hexdigest()


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
    ) -> None:
        self.google_token_url = google_token_url
        self.microsoft_authority = microsoft_authority.rstrip("/")
        self.timeout = timeout
        self.cache = cache or TokenCache()

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
        return f"{self.microsoft_authority}/{request.tenant_id}/oauth2/v2.0/token"

    def _fetch(self, request: TokenRequest) -> dict[str, object]:
        if request.provider is OAuthProvider.UNKNOWN:
            raise TokenError(
                "No token can be obtained for provider Unknown",
                "Choose Gmail or Office365 as Oauth Provider.",
            )
        url = self.token_url(request)
        try:
            return dict(self._grant(request, url))
        except OAuthError as exc:
            raise _token_error(exc) from exc
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
        method = "client_secret_post" if request.client_secret else "none"
        return OAuth2Session(
            client_id=request.client_id,
            client_secret=request.client_secret,
            scope=scope,
            token_endpoint_auth_method=method,
        )


def _token_error(exc: OAuthError) -> TokenError:
    code = str(exc.error or "error")
    description = str(exc.description or "")
    for marker, hint in _HINTS.items():
        if marker in description:
            return TokenError(f"The identity provider refused the token request ({marker})", hint)
    if code == "invalid_grant":
        return TokenError(
            "The identity provider refused the grant (invalid_grant)",
            "The refresh token was revoked or has expired, or the password is "
            "wrong: re-authorise the app and paste a new Refresh Token.",
        )
    if code in {"invalid_client", "unauthorized_client"}:
        return TokenError(
            f"The identity provider refused the client ({code})",
            "Check Client ID and Client Secret.",
        )
    return TokenError(
        f"The identity provider refused the token request ({code})",
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
