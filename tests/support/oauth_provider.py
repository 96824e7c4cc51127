"""A local OAuth provider for tests: Google- and Microsoft-style token endpoints, and the
introspection endpoint Dovecot's oauth2 passdb calls to check XOAUTH2 tokens.

Dovecot needs HTTP 200 with {"active": false} for a bad token (anything else is a
temporary failure, which reaches the IMAP client as [UNAVAILABLE]).

Connect account (issue 14) adds an authorization server: consent pages at
``google_authorize_url`` and ``microsoft_authorize_url(tenant)`` (an HTML form with "Sign in
as", Allow and Deny; :meth:`FakeProvider.consent` does the same without a browser), and the
authorization-code grant with PKCE S256 at the token endpoints. A code answers with an
access token Dovecot accepts, an ID token naming the user who signed in (``email`` for
Google, ``preferred_username`` for Microsoft) and a refresh token, unless
``omit_refresh_token``. Minted refresh tokens work with the refresh-token grant; Microsoft
rotates them on every use, as the real one does (the old one stays valid).

Grant health (issue 15) adds refusals by refresh token (``REFUSALS``: revoked and expired
grants in Google's and Microsoft's words, consent required), Gmail refresh tokens whose
answer carries an ID token (``GMAIL_ID_TOKENS``, one of them for another user than the
mailbox's), and ``token_status``: every token request answers that HTTP status (a 5xx).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

GMAIL_CLIENT = ("1234.apps.googleusercontent.com", "gmail-client-secret")
GMAIL_REFRESH = {"1//good-refresh": "helpdesk@example.com", "1//rotate-me": "helpdesk@example.com"}
#: Gmail refresh tokens answered with an ID token naming this user.
GMAIL_ID_TOKENS = {"1//with-id": "helpdesk@example.com", "1//other-user": "carol@example.com"}
#: Refresh token -> the token endpoint's refusal, as the providers word them.
REFUSALS: dict[str, tuple[int, dict[str, str]]] = {
    "1//expired-or-revoked": (
        400,
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
    ),
    "1//consent": (
        400,
        {"error": "consent_required", "error_description": "The user must consent again."},
    ),
    "ms-expired": (
        400,
        {
            "error": "invalid_grant",
            "error_description": "AADSTS700082: The refresh token has expired due to "
            "inactivity. The token was issued on 2026-01-02 and was inactive for 90.00:00:00.",
        },
    ),
    "ms-revoked": (
        400,
        {
            "error": "invalid_grant",
            "error_description": "AADSTS50173: The provided grant has expired due to it being "
            "revoked, a fresh auth token is needed.",
        },
    ),
    "ms-consent": (
        400,
        {
            "error": "invalid_grant",
            "error_description": "AADSTS65001: The user or administrator has not consented to "
            "use the application.",
        },
    ),
}
TENANT = "contoso.onmicrosoft.com"
MS_APP = ("11111111-2222-3333-4444-555555555555", "o365-client-secret")
MS_APP_MAILBOX = "billing@example.com"  # the mailbox the app-only token may open
MS_USERS = {"it@example.com": "it-Secret-4"}
_MS_PATH = re.compile(r"^/ms/([^/]+)/oauth2/v2\.0/(token|authorize)$")
_JWT_KEY = b"fake-provider-signing-key"


class FakeProvider:
    """Serves on 127.0.0.1; ``introspection_down`` makes introspection answer 503."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.introspection_down = False
        #: When set, every token request answers this HTTP status (e.g. 503).
        self.token_status: int | None = None
        #: Connect account: what each authorization request asked (query parameters).
        self.authorizations: list[dict[str, str]] = []
        self.omit_refresh_token = False
        self.codes: dict[str, dict[str, Any]] = {}
        #: refresh token -> {"user", "client_id", "provider"}, for tokens minted here.
        self.refresh_tokens: dict[str, dict[str, str]] = {}
        self._pending: dict[str, dict[str, str]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def google_token_url(self) -> str:
        return f"{self.base}/google/token"

    @property
    def microsoft_authority(self) -> str:
        return f"{self.base}/ms"

    @property
    def introspection_url(self) -> str:
        return f"{self.base}/introspect"

    @property
    def google_authorize_url(self) -> str:
        return f"{self.base}/google/authorize"

    def microsoft_authorize_url(self, tenant: str = TENANT) -> str:
        return f"{self.base}/ms/{tenant}/oauth2/v2.0/authorize"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def issue(self, user: str) -> str:
        token = "at-" + secrets.token_urlsafe(16)
        self.tokens[token] = user
        return token

    # -- Connect account: the consent page, without a browser

    def consent(self, authorize_url: str, *, user: str | None = None, allow: bool = True) -> str:
        """Answer a consent page like a person would; returns where the browser goes next.

        ``user``: who signs in (default: the ``login_hint``).
        """
        request_id = self._authorize(authorize_url)
        return self._decide(request_id, user=user, allow=allow)

    def _authorize(self, url: str) -> str:
        parts = urlsplit(url)
        assert url.startswith(self.base), f"not this provider: {url}"
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        provider = "google" if parts.path == "/google/authorize" else "microsoft"
        match = _MS_PATH.match(parts.path)
        query["_provider"] = provider
        query["_tenant"] = match.group(1) if match else ""
        self.authorizations.append(query)
        request_id = secrets.token_urlsafe(8)
        self._pending[request_id] = query
        return request_id

    def _decide(self, request_id: str, *, user: str | None, allow: bool) -> str:
        query = self._pending.pop(request_id)
        back = query["redirect_uri"]
        if not allow:
            answer = {"error": "access_denied", "error_description": "The user said no."}
            return f"{back}?{urlencode({**answer, 'state': query.get('state', '')})}"
        code = "code-" + secrets.token_urlsafe(12)
        self.codes[code] = {**query, "user": user or query.get("login_hint", ""), "used": False}
        return f"{back}?{urlencode({'code': code, 'state': query.get('state', '')})}"

    def _consent_page(self, path_and_query: str) -> str:
        request_id = self._authorize(self.base + path_and_query)
        query = self._pending[request_id]
        name = "Google" if query["_provider"] == "google" else "Microsoft"
        hint = html.escape(query.get("login_hint", ""))
        return (
            f"<!doctype html><html><head><title>{name} (test provider)</title></head><body>"
            f"<h1>{name} — test consent page</h1>"
            f"<p>Mailbox Manager asks for: <code>{html.escape(query.get('scope', ''))}</code></p>"
            f'<form action="/consent/decide" method="get">'
            f'<input type="hidden" name="request" value="{request_id}">'
            f'<label>Sign in as <input name="user" value="{hint}"></label> '
            f'<button name="decision" value="allow">Allow</button> '
            f'<button name="decision" value="deny">Deny</button>'
            f"</form></body></html>"
        )

    def _code_grant(self, provider: str, tenant: str, form: dict[str, str]) -> tuple[int, dict]:
        grant = self.codes.get(form.get("code", ""))
        if grant is None or grant["used"] or grant["_provider"] != provider:
            return 400, {"error": "invalid_grant", "error_description": "AADSTS70008: bad code."}
        grant["used"] = True
        if grant.get("_tenant", "") != tenant:
            return 400, {"error": "invalid_grant", "error_description": "wrong tenant"}
        if form.get("client_id") != grant["client_id"]:
            return 401, {"error": "invalid_client", "error_description": "client mismatch"}
        if (
            provider == "google"
            and (form.get("client_id"), form.get("client_secret")) != GMAIL_CLIENT
        ):
            return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
        if provider == "microsoft" and form.get("client_secret") not in (None, MS_APP[1]):
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: bad."}
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}
        verifier = form.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if grant.get("code_challenge_method") != "S256" or challenge.decode() != grant.get(
            "code_challenge"
        ):
            return 400, {"error": "invalid_grant", "error_description": "PKCE check failed"}
        user = grant["user"]
        reply: dict[str, Any] = {
            "access_token": self.issue(user),
            "expires_in": 3599,
            "token_type": "Bearer",
            "scope": grant.get("scope", ""),
            "id_token": self._id_token(provider, grant, user),
        }
        if not self.omit_refresh_token:
            reply["refresh_token"] = self._mint_refresh(provider, user, grant["client_id"])
        return 200, reply

    def _mint_refresh(self, provider: str, user: str, client_id: str) -> str:
        prefix = "1//connect-" if provider == "google" else "ms-connect-"
        token = prefix + secrets.token_urlsafe(24)
        self.refresh_tokens[token] = {"user": user, "client_id": client_id, "provider": provider}
        return token

    def _id_token(self, provider: str, grant: dict[str, Any], user: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.base,
            "aud": grant["client_id"],
            "sub": "sub-" + hashlib.sha256(user.encode()).hexdigest()[:12],
            "iat": now,
            "exp": now + 3600,
            "nonce": grant.get("nonce"),
        }
        if provider == "google":
            claims |= {"email": user, "email_verified": True}
        else:
            claims |= {"preferred_username": user, "tid": grant.get("_tenant")}
        parts = [
            _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()),
            _b64(json.dumps(claims).encode()),
        ]
        signature = hmac.new(_JWT_KEY, ".".join(parts).encode(), hashlib.sha256).digest()
        return ".".join([*parts, _b64(signature)])

    def _minted_refresh(self, provider: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        minted = self.refresh_tokens.get(form.get("refresh_token", ""))
        if minted is None or minted["provider"] != provider:
            return 400, {"error": "invalid_grant", "error_description": "AADSTS70000: revoked."}
        if form.get("client_id") != minted["client_id"]:
            return 401, {"error": "invalid_client", "error_description": "client mismatch"}
        reply: dict[str, Any] = {
            "access_token": self.issue(minted["user"]),
            "expires_in": 3599,
            "token_type": "Bearer",
        }
        if provider == "microsoft":
            scope = form.get("scope", "")
            if "IMAP.AccessAsUser.All" not in scope and "POP.AccessAsUser.All" not in scope:
                return 400, {"error": "invalid_scope", "error_description": "AADSTS70011: scope"}
            reply["refresh_token"] = self._mint_refresh(
                provider, minted["user"], minted["client_id"]
            )
        return 200, reply

    # -- the endpoints

    def token(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.requests.append(
            {
                "path": path,
                **{k: v for k, v in form.items() if k in {"grant_type", "scope", "client_id"}},
                **({"refresh_token": form["refresh_token"]} if "refresh_token" in form else {}),
            }
        )
        grant = form.get("grant_type")
        if self.token_status is not None:
            return self.token_status, {"error": "temporarily_unavailable"}
        if grant == "refresh_token" and form.get("refresh_token") in REFUSALS:
            return REFUSALS[form["refresh_token"]]
        if path == "/google/token" and grant == "authorization_code":
            return self._code_grant("google", "", form)
        if path == "/google/token" and grant == "refresh_token":
            return self._google(form)
        match = _MS_PATH.match(path)
        if match and match.group(1) != TENANT:
            return 400, {
                "error": "invalid_request",
                "error_description": f"AADSTS90002: Tenant '{match.group(1)}' not found.",
            }
        if match and grant == "authorization_code":
            return self._code_grant("microsoft", match.group(1), form)
        if match:
            return self._microsoft(grant, form)
        return 400, {"error": "unsupported_grant_type"}

    def _google(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if (form.get("client_id"), form.get("client_secret")) != GMAIL_CLIENT:
            return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
        if form.get("refresh_token", "") in self.refresh_tokens:
            return self._minted_refresh("google", form)
        token = form.get("refresh_token", "")
        user = GMAIL_REFRESH.get(token) or GMAIL_ID_TOKENS.get(token)
        if user is None:
            return 400, {
                "error": "invalid_grant",
                "error_description": "Token has been expired or revoked.",
            }
        reply: dict[str, Any] = {
            "access_token": self.issue(user),
            "expires_in": 3599,
            "token_type": "Bearer",
        }
        if form.get("refresh_token") == "1//rotate-me":
            reply["refresh_token"] = "1//rotated-" + secrets.token_urlsafe(8)
        if token in GMAIL_ID_TOKENS:
            reply["id_token"] = self._id_token("google", {"client_id": GMAIL_CLIENT[0]}, user)
        return 200, reply

    def _microsoft(self, grant: str | None, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != MS_APP[0]:
            return 400, {
                "error": "unauthorized_client",
                "error_description": "AADSTS700016: Application not found.",
            }
        if grant == "client_credentials":
            if form.get("client_secret") == "expired-secret":
                return 401, {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000222: The provided client secret keys "
                    "are expired.",
                }
            if form.get("client_secret") != MS_APP[1]:
                return 401, {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                }
            if form.get("scope") != "https://outlook.office365.com/.default":
                return 400, {"error": "invalid_scope"}
            return 200, {
                "access_token": self.issue(MS_APP_MAILBOX),
                "expires_in": 3599,
                "token_type": "Bearer",
            }
        if grant == "refresh_token":
            return self._minted_refresh("microsoft", form)
        if grant == "password":
            user = form.get("username", "")
            if user.startswith("mfa"):
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "AADSTS50076: Due to a configuration change made by your "
                    "administrator, you must use multi-factor authentication.",
                }
            if MS_USERS.get(user) != form.get("password"):
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "AADSTS50126: Error validating credentials.",
                }
            return 200, {
                "access_token": self.issue(user),
                "expires_in": 3599,
                "refresh_token": "ms-refresh",
                "token_type": "Bearer",
            }
        return 400, {"error": "unsupported_grant_type"}

    def introspect(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self.introspection_down:
            return 503, {"error": "temporarily_unavailable"}
        user = self.tokens.get(form.get("token", ""))
        if user is None:
            return 200, {"active": False}
        return 200, {"active": True, "username": user}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                if self.path == "/introspect":
                    status, reply = provider.introspect(form)
                else:
                    status, reply = provider.token(self.path, form)
                self._send(status, "application/json", json.dumps(reply).encode())

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/consent/decide":
                    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                    location = provider._decide(
                        query.get("request", ""),
                        user=query.get("user") or None,
                        allow=query.get("decision") == "allow",
                    )
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if parts.path == "/google/authorize" or _MS_PATH.match(parts.path):
                    page = provider._consent_page(self.path).encode()
                    self._send(200, "text/html; charset=utf-8", page)
                    return
                self._send(404, "text/plain", b"not found")

            def _send(self, status: int, kind: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def query(url: str) -> dict[str, str]:
    """The query parameters of a URL (the last value of each)."""
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
