"""Hosted mode end to end: the product served with [auth] and [access], a real OpenID
provider (oidc-provider-mock) and Chromium. Screenshots land in the test's tmp dir, or in
MAILBOX_TEST_SCREENSHOTS when set.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailbox_core.bootstrap import Services, open_services
from mailbox_core.config import load_settings
from tests.app.conftest import ENTRYPOINT
from tests.conftest import ACTOR, need
from tests.support.oidc import MockIdP, auth_secrets, sign_in, sign_out
from tests.support.served import Served, chromium, chromium_available, new_page, serve

pytestmark = pytest.mark.browser

COOKIE_SECRET = "sign-in-test-cookie-secret-0123456789"
ACCESS = """
[access]
admins = ["ann@corp.example"]
editors = ["@ops.corp.example"]
viewers = ["@corp.example"]
"""
MAILBOX = "Confidential Helpdesk"
HOST = "pop.confidential.example"
PASSWORD = "never-in-the-browser-Q9"
USERS = {
    "ann": {"email": "ann@corp.example", "email_verified": True},
    "ed": {"email": "ed@ops.corp.example", "email_verified": True},
    "val": {"email": "val@corp.example", "email_verified": True},
    "eve": {"email": "eve@elsewhere.example", "email_verified": True},
}


@pytest.fixture
def sync_api() -> Any:
    need(chromium_available(), "Chromium is not installed (apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api")


@pytest.fixture
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Services:
    """The embedded deployment the served app will use, with one mailbox in it."""
    monkeypatch.setenv("MAILBOX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MAILBOX_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILBOX_ENCRYPTION_KEYS", raising=False)
    opened = open_services(load_settings())
    opened.mailboxes.create_mailbox(
        {
            "name": MAILBOX,
            "host": HOST,
            "port": 995,
            "ssl_enabled": "Yes",
            "account": "help@confidential.example",
            "password": PASSWORD,
        },
        actor=ACTOR,
    )
    return opened


@pytest.fixture
def hosted(tmp_path: Path, services: Services, sync_api: Any) -> Iterator[tuple[Served, MockIdP]]:
    with MockIdP() as idp:
        for sub, claims in USERS.items():
            idp.add_user(sub, **claims)
        secrets = auth_secrets(idp, cookie_secret=COOKIE_SECRET, extra=ACCESS)
        env = {"MAILBOX_SESSION_MAX_AGE": "3600"}
        with serve(tmp_path, entrypoint=ENTRYPOINT, secrets=secrets, env=env) as app:
            yield app, idp


def shot(page: Any, tmp_path: Path, name: str) -> None:
    folder = Path(os.environ.get("MAILBOX_TEST_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"))


def in_grid(page: Any, text: str) -> None:
    """Wait for a cell of the (canvas-drawn) table; its accessible copy is hidden."""
    grid = page.locator('[data-testid="stDataFrame"]')
    grid.get_by_text(text, exact=True).first.wait_for(state="attached", timeout=10_000)


def leaks(frames: list[bytes]) -> list[str]:
    words = [MAILBOX, HOST, PASSWORD, "help@confidential.example"]
    return [w for w in words if any(w.encode() in frame for frame in frames)]


@pytest.mark.parametrize("path", ["/", "/edit_mailbox?id=1", "/new_mailbox", "/activity"])
def test_anonymous_visitors_get_the_sign_in_page_and_no_data(
    hosted: tuple[Served, MockIdP], sync_api: Any, tmp_path: Path, path: str
) -> None:
    app, _ = hosted
    frames: list[bytes] = []
    with sync_api.sync_playwright() as playwright:
        page = chromium(playwright, frames)
        page.goto(app.url + path)
        page.get_by_role("button", name="Sign in", exact=True).wait_for(timeout=20_000)
        page.wait_for_timeout(500)  # let any late frame arrive
        shot(page, tmp_path, f"anonymous{path.replace('/', '-').split('?')[0]}")
        body = page.locator("body").inner_text()
        sidebar_pages = page.locator('[data-testid="stSidebarNav"]').count()
    assert sidebar_pages == 0, "no page is listed before sign-in"
    assert frames, "no websocket frames were captured"
    assert leaks(frames) == []
    assert MAILBOX not in body
    assert "Mailboxes" not in body and "New Mailbox" not in body


def test_each_role_walks_its_part(
    hosted: tuple[Served, MockIdP], sync_api: Any, services: Services, tmp_path: Path
) -> None:
    app, _ = hosted
    frames: list[bytes] = []
    walks: dict[str, float] = {}
    with sync_api.sync_playwright() as playwright:
        # A viewer: the list, no New Mailbox, and the deep link shows no form.
        page = chromium(playwright, frames)
        walks["viewer"] = sign_in(page, app.url, "val", expect="1 mailbox, 1 active")
        in_grid(page, MAILBOX)
        nav = page.locator('[data-testid="stSidebarNav"]')
        assert nav.get_by_text("New Mailbox").count() == 0
        shot(page, tmp_path, "viewer-list")
        page.goto(f"{app.url}/edit_mailbox?id=1")
        page.get_by_text(f"Mailbox: {MAILBOX}").wait_for(timeout=10_000)
        in_grid(page, HOST)
        assert page.get_by_role("textbox", name="Host", exact=True).count() == 0
        assert page.get_by_role("button", name="Save", exact=True).count() == 0
        shot(page, tmp_path, "viewer-details")
        page.goto(f"{app.url}/new_mailbox")
        page.get_by_text("1 mailbox, 1 active").wait_for(timeout=10_000)
        assert page.get_by_role("textbox", name="Name", exact=True).count() == 0

        # A signed-in user without a role: who they are, nothing else.
        eve = new_page(page.context.browser, frames)
        walks["no role"] = sign_in(eve, app.url, "eve", expect="but you have no access")
        shot(eve, tmp_path, "no-role")
        assert MAILBOX not in eve.locator("body").inner_text()

        # An editor creates a mailbox; Activity names them.
        ed = new_page(page.context.browser, frames)
        walks["editor"] = sign_in(ed, app.url, "ed", expect="1 mailbox, 1 active")
        ed.get_by_role("button", name="New Mailbox").first.click()
        field = lambda label: ed.get_by_role("textbox", name=label, exact=True)  # noqa: E731
        field("Name").wait_for(timeout=10_000)
        field("Name").fill("Made by Ed")
        field("Host").fill("pop.ed.example")
        field("Account").fill("ed-box@ops.corp.example")
        password = ed.locator('input[aria-label="Password"]')
        password.press_sequentially("ed-secret-1", delay=10)
        password.press("Tab")
        ed.get_by_role("button", name="OK").click()
        ed.get_by_text("saved with ID 2").wait_for(timeout=20_000)
        shot(ed, tmp_path, "editor-list")
        ed.locator('[data-testid="stSidebarNav"]').get_by_text("Activity").click()
        ed.get_by_text("Who changed which mailbox").wait_for(timeout=10_000)
        in_grid(ed, "ed@ops.corp.example")

        # An admin deletes; then signs out and is anonymous again.
        ann = new_page(page.context.browser, frames)
        walks["admin"] = sign_in(ann, app.url, "ann", expect="2 mailboxes, 2 active")
        ann.goto(f"{app.url}/edit_mailbox?id=2")
        ann.get_by_role("button", name="Delete").click()
        ann.get_by_role("button", name="Yes, delete").click()
        ann.get_by_text("deleted").first.wait_for(timeout=10_000)
        shot(ann, tmp_path, "admin-after-delete")
        sign_out(ann, app.url)
        ann.get_by_role("button", name="Sign in", exact=True).wait_for(timeout=20_000)
        ann.reload()
        ann.get_by_role("button", name="Sign in", exact=True).wait_for(timeout=20_000)
    print("sign-in walks (s):", {k: round(v, 2) for k, v in walks.items()})
    assert [m.name for m in services.mailboxes.list_mailboxes()] == [MAILBOX]
    events = services.mailboxes.list_audit()
    assert [(e.action, e.actor) for e in events[:2]] == [
        ("deleted", "ann@corp.example"),
        ("created", "ed@ops.corp.example"),
    ]
    assert PASSWORD.encode() not in b"".join(frames)


def test_a_sign_in_older_than_the_max_age_must_sign_in_again(
    tmp_path: Path, services: Services, sync_api: Any
) -> None:
    with MockIdP() as idp:
        idp.add_user("ann", **USERS["ann"])
        secrets = auth_secrets(idp, cookie_secret=COOKIE_SECRET, extra=ACCESS)
        env = {"MAILBOX_SESSION_MAX_AGE": "4"}
        with (
            serve(tmp_path, entrypoint=ENTRYPOINT, secrets=secrets, env=env) as app,
            sync_api.sync_playwright() as playwright,
        ):
            page = chromium(playwright)
            sign_in(page, app.url, "ann", expect="1 mailbox, 1 active")
            time.sleep(5)
            page.goto(app.url)
            # The gate logs out: the IdP's end-session page, then the app's sign-in page.
            page.get_by_role("button", name="End session", exact=True).click(timeout=20_000)
            page.get_by_role("button", name="Sign in", exact=True).wait_for(timeout=20_000)
            assert MAILBOX not in page.locator("body").inner_text()
