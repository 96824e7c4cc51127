"""The sign-in harness itself: a throwaway st.login app, the mock IdP and Chromium, end to end.

The app here is written by the test, not the product's: it proves tests/support/oidc.py and
tests/support/served.py so the role tests can build on them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need
from tests.support.oidc import MockIdP, auth_secrets, sign_in, sign_out
from tests.support.served import Served, chromium, chromium_available, new_page, serve

pytestmark = pytest.mark.browser

COOKIE_SECRET = "harness-cookie-secret-0123456789abcdef"
SIGN_IN_APP = textwrap.dedent(
    """
    import streamlit as st

    if not st.user.is_logged_in:
        st.title("Please sign in")
        if st.button("Sign in"):
            st.login()
        st.stop()

    st.text(f"email: {st.user.email}")
    st.text(f"email_verified: {st.user.get('email_verified')!r}")
    st.text(f"groups: {st.user.get('groups')!r}")
    st.text(f"iat: {int(st.user['iat'])}")
    if st.button("Sign out"):
        st.logout()
        st.stop()
    """
)


@pytest.fixture
def idp() -> Iterator[MockIdP]:
    """The mock provider with alice (verified, in two groups) and bob (email only)."""
    with MockIdP() as provider:
        provider.add_user(
            "alice",
            email="alice@example.com",
            email_verified=True,
            name="Alice",
            groups=["mailbox-admins", "staff"],
        )
        provider.add_user("bob", email="bob@example.com")
        yield provider


@pytest.fixture
def served(tmp_path: Path, idp: MockIdP) -> Iterator[Served]:
    """The throwaway sign-in app, served with [auth] pointing at ``idp``."""
    entrypoint = tmp_path / "sign_in_app.py"
    entrypoint.write_text(SIGN_IN_APP)
    secrets = auth_secrets(idp, cookie_secret=COOKIE_SECRET)
    with serve(tmp_path, entrypoint=entrypoint, secrets=secrets) as app:
        yield app


@pytest.fixture
def sync_api() -> Any:
    """playwright.sync_api, once Chromium is known to be there."""
    need(chromium_available(), "Chromium is not installed (apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api")


def test_mock_idp_advertises_what_the_harness_relies_on(idp: MockIdP) -> None:
    metadata = idp.metadata()
    assert metadata["issuer"] == idp.issuer
    assert metadata["authorization_endpoint"].startswith(f"{idp.issuer}/")
    assert "end_session_endpoint" in metadata
    assert "code_challenge_methods_supported" not in metadata  # so Streamlit sends no PKCE


def test_two_users_sign_in_and_out_through_chromium(
    sync_api: Any, served: Served, idp: MockIdP, tmp_path: Path
) -> None:
    frames: list[bytes] = []
    with sync_api.sync_playwright() as playwright:
        page = chromium(playwright, frames)
        try:
            seconds = sign_in(page, served.url, "alice", expect="email: alice@example.com")
            print(f"\nsign-in walk (click Sign in -> signed-in page drawn): {seconds:.2f} s")
            page.get_by_text("email_verified: True").wait_for(timeout=10_000)
            page.get_by_text("groups: ['mailbox-admins', 'staff']").wait_for(timeout=10_000)
            iat = page.get_by_text("iat: ").inner_text().removeprefix("iat: ")
            assert iat.isdigit()
            assert any(c["name"] == "_streamlit_user" for c in page.context.cookies())

            sign_out(page, served.url)
            page.get_by_role("button", name="Sign in").wait_for(timeout=20_000)
            assert not any(c["name"] == "_streamlit_user" for c in page.context.cookies())
            page.reload()
            page.get_by_role("button", name="Sign in").wait_for(timeout=20_000)

            other = new_page(page.context.browser)
            sign_in(other, served.url, "bob", expect="email: bob@example.com")
            other.get_by_text("email_verified: None").wait_for(timeout=10_000)
            other.get_by_text("groups: None").wait_for(timeout=10_000)
        finally:
            page.screenshot(path=str(tmp_path / "oidc-harness.png"), full_page=True)
    assert frames, "no websocket frames were captured"
    assert b"alice@example.com" in b"".join(frames)
    assert "Origin mismatch" not in served.log()
    assert any(line.startswith("GET /oauth2/end_session") for line in idp.requests)
