"""A real OpenID provider on 127.0.0.1 (oidc-provider-mock 0.3.4) and the sign-in walk in Chromium.

Facts about the mock (read in its source, checked by tests/app/test_oidc_harness.py):

- **Clients:** any ``client_id``/``client_secret`` and any ``redirect_uri`` are accepted; no
  registration (``require_client_registration=False``).
- **Users:** ``PUT /users/{sub}`` with a JSON object of claims (:meth:`MockIdP.add_user`) replaces
  the user. A ``sub`` that was never registered signs in anyway, with claims ``{"email": sub}``.
  The mock adds nothing else: no ``email_verified`` (so ``st.user.get("email_verified")`` is None
  unless the test sets it), no ``name``, no ``groups``.
- **Claims per scope:** standard claims are filtered by scope (Streamlit asks for
  ``openid email profile``, so ``email``, ``email_verified``, ``name`` pass; ``phone_number`` and
  ``address`` would not). Non-standard claims such as ``groups`` or ``roles`` always pass, with
  their JSON type (a list stays a list). All of them land in the ID token, hence in ``st.user``.
- **ID token:** RS256; ``iss`` is taken from the request's Host, so it is ``http://127.0.0.1:PORT``
  as long as every URL uses 127.0.0.1. ``iat`` = ``auth_time`` = issue time (the mock keeps no
  login session, so ``auth_time`` is never older than the login); ``exp`` = ``iat`` +
  ``access_token_max_age`` (default 1 h, also the access-token lifetime). A refresh token is issued.
- **Login form** (``GET /oauth2/authorize``): a text field ``input[name="sub"]`` (placeholder
  "sub") with an "Authorize" button, a "Deny" button (back to the app with ``error=access_denied``),
  one button per *predefined* user (``users=`` at start) and per recently used ``sub``. There is
  no password and no IdP session: every sign-in shows the form again, ``prompt`` is ignored.
- **Nonce:** Streamlit/Authlib send one, the mock echoes it into the ID token and Authlib checks
  it; the mock never records nonces, so it cannot detect a replay.
- **PKCE:** not advertised (no ``code_challenge_methods_supported``), so Streamlit sends no
  ``code_challenge``; the mock would ignore one anyway.
- **Logout:** ``end_session_endpoint`` is advertised, so ``st.logout()`` goes app ``/auth/logout``
  (cookies cleared there) → mock "End Session" page, which waits for a click on "End session" →
  ``post_logout_redirect_uri`` = the app's ``/oauth2callback`` (no state) → app ``/``.
- **Transport:** Authlib 1.9.9 treats ``http://`` on a loopback address as secure
  (``authlib/common/security.py``), so ``AUTHLIB_INSECURE_TRANSPORT`` is not needed on either
  side with 127.0.0.1 (the harness test passes without it). :data:`INSECURE_TRANSPORT_ENV` is
  there for an older Authlib or a non-loopback host name.
- **Noise:** after a sign-out the app log has "Missing provider for OAuth callback" (the mock
  sends the browser back to ``/oauth2callback`` without a state); it is expected.
- **Without ``expose_tokens``** ``st.user.tokens`` is ``{}``; ``aud`` is a list (``[client_id]``).
- The mock is served here with werkzeug on 127.0.0.1 explicitly: ``run_server_in_thread`` binds
  ``localhost``, which may be ``::1`` on some hosts and then no URL with 127.0.0.1 would reach it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import oidc_provider_mock
import werkzeug.serving

INSECURE_TRANSPORT_ENV = {"AUTHLIB_INSECURE_TRANSPORT": "1"}
REDIRECT_URI = "http://127.0.0.1:{port}/oauth2callback"  # Streamlit fills in {port}
WALK_TIMEOUT_MS = 30_000


class _RecordingHandler(werkzeug.serving.WSGIRequestHandler):
    """Keeps the request log in ``server.requests`` instead of printing it."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Record "METHOD path status"."""
        self.server.requests.append(f"{self.command} {self.path} {code}")  # type: ignore[attr-defined]


class MockIdP:
    """oidc-provider-mock on a free port of 127.0.0.1 for the duration of a ``with`` block."""

    def __init__(
        self,
        *,
        users: Sequence[oidc_provider_mock.User] = (),
        require_nonce: bool = False,
        access_token_max_age: timedelta = timedelta(hours=1),
    ) -> None:
        """Configure; ``users`` appear as one-click buttons on the login form."""
        self._app = oidc_provider_mock.app(
            user_claims=users,
            require_nonce=require_nonce,
            access_token_max_age=access_token_max_age,
        )
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.requests: list[str] = []

    def __enter__(self) -> MockIdP:
        """Start serving in a background thread."""
        self._server = werkzeug.serving.make_server(
            "127.0.0.1", 0, self._app, threaded=True, request_handler=_RecordingHandler
        )
        self._server.requests = self.requests
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(5)

    @property
    def port(self) -> int:
        """The port the mock listens on."""
        return int(self._server.server_port)

    @property
    def issuer(self) -> str:
        """``iss`` of its tokens, e.g. http://127.0.0.1:40123."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def metadata_url(self) -> str:
        """The OpenID discovery document, for ``server_metadata_url``."""
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict[str, Any]:
        """The discovery document as a dict."""
        with urllib.request.urlopen(self.metadata_url, timeout=5) as reply:
            return dict(json.load(reply))

    def add_user(self, sub: str, **claims: object) -> None:
        """Register (or replace) user ``sub`` with exactly these ID-token claims."""
        request = urllib.request.Request(
            f"{self.issuer}/users/{urllib.parse.quote(sub, safe='@')}",
            data=json.dumps(claims).encode(),
            headers={"Content-Type": "application/json"},
            method="PUT",
        )
        with urllib.request.urlopen(request, timeout=5) as reply:
            assert reply.status == 204, reply.read()


def toml_str(value: str) -> str:
    """A TOML basic string (JSON escaping is valid TOML)."""
    return json.dumps(value)


def auth_secrets(
    idp: MockIdP,
    *,
    cookie_secret: str,
    provider_name: str | None = None,
    client_id: str = "mailbox-manager",
    client_secret: str = "mock-client-secret",
    extra: str = "",
) -> str:
    """secrets.toml text: ``[auth]`` for ``idp`` (default or ``[auth.<name>]``), then ``extra``."""
    provider = (
        f"client_id = {toml_str(client_id)}\n"
        f"client_secret = {toml_str(client_secret)}\n"
        f"server_metadata_url = {toml_str(idp.metadata_url)}\n"
    )
    text = (
        "[auth]\n"
        f"redirect_uri = {toml_str(REDIRECT_URI)}\n"
        f"cookie_secret = {toml_str(cookie_secret)}\n"
    )
    text += f"\n[auth.{provider_name}]\n{provider}" if provider_name else provider
    return f"{text}\n{extra}\n" if extra else text


def on_app(url: str, app_url: str) -> bool:
    """Whether ``url`` is an app page (not the IdP, not the callback)."""
    base = app_url.rstrip("/") + "/"
    return (url == base[:-1] or url.startswith(base)) and "/oauth2callback" not in url


def sign_in(
    page: Any,
    app_url: str,
    sub: str,
    *,
    button: str = "Sign in",
    expect: str | None = None,
    timeout: int = WALK_TIMEOUT_MS,
) -> float:
    """Click ``button``, sign in as ``sub`` on the mock's form, return to the app; seconds taken.

    Opens ``app_url`` first unless the page is already on the app. With ``expect``, also waits
    until that text is visible, so the time covers the signed-in page being drawn.
    """
    if not on_app(page.url, app_url):
        page.goto(app_url)
    start = page.get_by_role("button", name=button, exact=True)
    start.wait_for(timeout=timeout)
    started = time.perf_counter()
    start.click(timeout=timeout)
    field = page.locator('input[name="sub"]')
    field.fill(sub, timeout=timeout)
    page.get_by_role("button", name="Authorize", exact=True).click(timeout=timeout)
    page.wait_for_url(lambda url: on_app(url, app_url), timeout=timeout)
    if expect is not None:
        page.get_by_text(expect, exact=False).first.wait_for(timeout=timeout)
    return time.perf_counter() - started


def sign_out(
    page: Any, app_url: str, *, button: str = "Sign out", timeout: int = WALK_TIMEOUT_MS
) -> None:
    """Click ``button`` (it calls st.logout()), confirm on the mock's End Session page, return."""
    page.get_by_role("button", name=button, exact=True).click(timeout=timeout)
    page.get_by_role("button", name="End session", exact=True).click(timeout=timeout)
    page.wait_for_url(lambda url: on_app(url, app_url), timeout=timeout)
