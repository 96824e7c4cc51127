"""A local OAuth provider for tests: Google- and Microsoft-style token endpoints, and the
introspection endpoint Dovecot's oauth2 passdb calls to check XOAUTH2 tokens.

Dovecot needs HTTP 200 with {"active": false} for a bad token (anything else is a
temporary failure, which reaches the IMAP client as [UNAVAILABLE]).
"""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

GMAIL_CLIENT = ("1234.apps.googleusercontent.com", "gmail-client-secret")
GMAIL_REFRESH = {"1//good-refresh": "helpdesk@example.com", "1//rotate-me": "helpdesk@example.com"}
TENANT = "contoso.onmicrosoft.com"
MS_APP = ("11111111-2222-3333-4444-555555555555", "o365-client-secret")
MS_APP_MAILBOX = "billing@example.com"  # the mailbox the app-only token may open
MS_USERS = {"it@example.com": "it-Secret-4"}


class FakeProvider:
    """Serves on 127.0.0.1; ``introspection_down`` makes introspection answer 503."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.introspection_down = False
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

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def issue(self, user: str) -> str:
        token = "at-" + secrets.token_urlsafe(16)
        self.tokens[token] = user
        return token

    # -- the endpoints

    def token(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.requests.append(
            {
                "path": path,
                **{k: v for k, v in form.items() if k in {"grant_type", "scope", "client_id"}},
            }
        )
        grant = form.get("grant_type")
        if path == "/google/token" and grant == "refresh_token":
            return self._google(form)
        if path == f"/ms/{TENANT}/oauth2/v2.0/token":
            return self._microsoft(grant, form)
        return 400, {"error": "unsupported_grant_type"}

    def _google(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if (form.get("client_id"), form.get("client_secret")) != GMAIL_CLIENT:
            return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
        user = GMAIL_REFRESH.get(form.get("refresh_token", ""))
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
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
