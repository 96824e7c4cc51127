"""Access tokens for XOAUTH2: Gmail and every Office365 method, through Authlib.

Tokens are cached in memory until shortly before they expire. A rotated refresh token
is handed to ``on_new_refresh_token`` at once so the caller can store it encrypted.
Provider errors become ``TokenError`` with a hint written for a person, classified
(``GrantProblem``: revoked or expired grant, consent, client, endpoint unreachable) so the
monitor can tell "re-authorise" from "the provider is down". A successful refresh-token
grant is reported to ``on_used`` (rotated or not, and the ID token's subject), the facts
behind a mailbox's grant health (mailbox_core/grant.py).

Also the one code-for-tokens exchange of Connect account (``exchange_code``). A mailbox
whose Client ID is blank uses the operator's app (MAILBOX_GOOGLE_CLIENT_ID and
MAILBOX_MICROSOFT_CLIENT_ID with their secrets); so does a request naming that app's
Client ID without a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

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


class GrantProblem(StrEnum):
    """Why the token endpoint gave no token, as a stable code (stored as a check's problem)."""

    REVOKED = "grant revoked"  # revoked or expired refresh token: a person re-authorises
    CONSENT = "grant consent"  # consent required (or lost): a person or admin consents
    CLIENT = "grant client"  # the app's Client ID or Client Secret is refused
    UNREACHABLE = "grant unreachable"  # no answer, or a 5xx: nobody's fault, try later


#: Each class's hint, when no more precise one (``_HINTS``) applies.
GRANT_HINTS = {
    GrantProblem.REVOKED: "The refresh token was revoked or has expired: re-authorise the "
    "app (Connect account) or paste a new Refresh Token.",
    GrantProblem.CONSENT: "The app's permission needs consent again: connect the account "
    "again and allow access, or have an admin grant consent for the tenant.",
    GrantProblem.CLIENT: "The identity provider refused the app: check Client ID and Client "
    "Secret (a new secret's Value, not its ID).",
    GrantProblem.UNREACHABLE: "The identity provider did not answer: check the network or "
    "the token endpoint settings; the next check tries again.",
}
#: What the providers say. Microsoft's AADSTS codes come in the description.
_REVOKED_TEXTS = (
    "expired or revoked",  # Google: "Token has been expired or revoked."
    "AADSTS700082",  # refresh token expired due to inactivity
    "AADSTS50173",  # grant expired: revoked (password changed, sessions revoked)
    "AADSTS700084",  # refresh token expired (single-page app lifetime)
    "AADSTS70000",  # the grant is invalid or revoked
    "AADSTS70008",  # the code or refresh token expired
)
_CONSENT = {"consent_required", "interaction_required"}
_CONSENT_CODES = ("AADSTS65001", "AADSTS65004")
_CLIENT = {"invalid_client", "unauthorized_client"}
_CLIENT_CODES = ("AADSTS7000215", "AADSTS7000222", "AADSTS7000218", "AADSTS700016")
#: The password grant's own refusals: the account's password, not the grant.
_PASSWORD_CODES = ("AADSTS50126", "AADSTS50076", "AADSTS50079")


def classify(error: str, description: str) -> GrantProblem | None:
    """The class of a token endpoint's refusal (OAuth ``error`` and its description)."""
    if error in _CONSENT or any(code in description for code in _CONSENT_CODES):
        return GrantProblem.CONSENT
    if error in _CLIENT or any(code in description for code in _CLIENT_CODES):
        return GrantProblem.CLIENT
    if any(code in description for code in _PASSWORD_CODES):
        return None
    if error == "invalid_grant" or any(text in description for text in _REVOKED_TEXTS):
        return GrantProblem.REVOKED
    return None


class TokenError(MailboxCoreError):
    """No access token could be obtained; ``hint`` says what to do, ``problem`` its class."""

    def __init__(self, message: str, hint: str = "", problem: GrantProblem | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        self.problem = problem


@dataclass(frozen=True)
class GrantUse:
    """A successful token request: whether a refresh token was used, and what came back.

    ``subject``: the ID token's ``email`` or ``preferred_username``, read without checking
    its signature — a fact to show beside the Account, never a reason to trust anything.
    """

    refresh_token_used: bool
    rotated: bool
    subject: str | None


def token_subject(token: dict[str, object]) -> str | None:
    """Who an ID token in a token response names (``email``, ``preferred_username``), if any."""
    id_token = token.get("id_token")
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return None
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(claims, dict):
        return None
    for name in ("email", "preferred_username", "upn"):
        value = claims.get(name)
        if isinstance(value, str) and value.strip() and len(value) <= 254:
            return value.strip()
    return None


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
        self,
        request: TokenRequest,
        on_new_refresh_token: Callable[[str], None] | None = None,
        on_used: Callable[[GrantUse], None] | None = None,
    ) -> str:
        """A valid access token for ``request`` (cached, or fetched now).

        ``on_used`` hears of every token fetched now (not of cached ones).
        """
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
        new = bool(rotated and request.refresh_token and rotated != request.refresh_token)
        if new and on_new_refresh_token is not None:
            on_new_refresh_token(str(rotated))
        if on_used is not None:
            on_used(GrantUse(bool(request.refresh_token), new, token_subject(token)))
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
                GrantProblem.UNREACHABLE,
            ) from exc
        except requests.HTTPError as exc:  # a 5xx, or a body that is no JSON object
            status = exc.response.status_code if exc.response is not None else "?"
            raise TokenError(
                f"The token endpoint {_origin(url)} answered HTTP {status}",
                GRANT_HINTS[GrantProblem.UNREACHABLE],
                GrantProblem.UNREACHABLE,
            ) from exc
        except requests.RequestException as exc:
            raise TokenError(
                f"Could not reach the token endpoint {_origin(url)}",
                "Check the network, or the token endpoint settings.",
                GrantProblem.UNREACHABLE,
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
    problem = None if code else classify(error, description)
    for marker, hint in _HINTS.items():
        if marker in description:
            return TokenError(
                f"The identity provider refused the token request ({marker})", hint, problem
            )
    if error == "invalid_grant" and code:
        return TokenError(
            "The identity provider refused the sign-in code (invalid_grant)",
            "The code expired or was already used: press Connect again.",
        )
    if problem is GrantProblem.REVOKED:
        expired = " or expired" if "expired" in description.lower() else ""
        return TokenError(
            f"The identity provider refused the grant ({error}: revoked{expired})",
            GRANT_HINTS[problem],
            problem,
        )
    if problem is not None:
        what = "client" if problem is GrantProblem.CLIENT else "token request"
        return TokenError(
            f"The identity provider refused the {what} ({error})", GRANT_HINTS[problem], problem
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
