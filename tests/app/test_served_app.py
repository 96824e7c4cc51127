"""`streamlit run` as a person would meet it: served over HTTP, rendered in Chromium."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.app.conftest import ENTRYPOINT
from tests.conftest import ACTOR, need
from tests.support.served import chromium, chromium_available, serve

SECRET = "browser-never-sees-Pw7"

pytestmark = pytest.mark.browser


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`streamlit run streamlit_app.py` headless on a free port, in a fresh directory."""
    with _serve(tmp_path) as url:
        yield url


@contextmanager
def _serve(tmp_path: Path) -> Iterator[str]:
    with serve(tmp_path, entrypoint=ENTRYPOINT) as server:
        yield server.url


def test_health_endpoint_answers_ok(served: str) -> None:
    with urllib.request.urlopen(f"{served}/_stcore/health", timeout=5) as reply:
        assert reply.status == 200
        assert reply.read() == b"ok"


def test_first_page_renders_and_a_mailbox_can_be_added(served: str, tmp_path: Path) -> None:
    need(chromium_available(), "Chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    received: list[bytes] = []
    with sync_api.sync_playwright() as playwright:
        page = browser_page(playwright, received)
        page.goto(served)
        page.get_by_text("No mailboxes yet").wait_for(timeout=20_000)
        page.get_by_role("button", name="New Mailbox").click()
        field = lambda label: page.get_by_role("textbox", name=label, exact=True)  # noqa: E731
        field("Name").wait_for(timeout=10_000)
        field("Name").fill("Browser inbox")
        field("Host").fill("pop.example.com")
        field("Account").fill("browser@example.com")
        password = page.locator('input[aria-label="Password"]')  # no ARIA role for passwords
        # Type like a person and leave with Tab: Streamlit 1.67 loses a password left this
        # way unless the reveal button is out of the tab order (see ui/form.py).
        password.press_sequentially(SECRET, delay=20)
        password.press("Tab")
        page.get_by_role("button", name="OK").click()
        try:
            page.get_by_text("saved with ID 1").wait_for(timeout=20_000)
        finally:
            page.screenshot(path=str(tmp_path / "after-ok.png"), full_page=True)
        page.get_by_text("1 mailbox, 1 active").wait_for(timeout=10_000)
        page.screenshot(path=str(tmp_path / "mailboxes.png"))
    assert received, "no websocket frames were captured"
    assert not [f for f in received if SECRET.encode() in f], "a secret was sent to the browser"


def browser_page(playwright: Any, frames: list[bytes]) -> Any:
    """A loopback-only Chromium page that records every websocket frame the server sends."""
    return chromium(playwright, frames)


@pytest.fixture
def mailboxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The service of the embedded deployment that ``_serve(tmp_path)`` will serve."""
    need(chromium_available(), "Chromium is not installed (apt-get install chromium)")
    from mailbox_core.bootstrap import open_services
    from mailbox_core.config import load_settings

    monkeypatch.setenv("MAILBOX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MAILBOX_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILBOX_ENCRYPTION_KEYS", raising=False)
    return open_services(load_settings()).mailboxes


def test_select_a_row_edit_and_replace_the_password(tmp_path: Path, mailboxes: Any) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.conftest import SIGN_IN_PATHS, mailbox_data

    mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    old_password = SIGN_IN_PATHS["password"]["password"]
    frames: list[bytes] = []
    with _serve(tmp_path) as url, sync_api.sync_playwright() as playwright:
        page = browser_page(playwright, frames)
        page.goto(url)
        page.get_by_text("1 mailbox, 1 active").wait_for(timeout=20_000)
        grid = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
        # The grid is a canvas: click the first row's selection box (header row ~35 px).
        page.mouse.click(grid["x"] + 18, grid["y"] + 35 + 18)
        page.get_by_text("Selected: “Support POP3”").wait_for(timeout=10_000)
        page.get_by_role("button", name="Edit").click()
        page.get_by_text("Edit Mailbox: Support POP3").wait_for(timeout=10_000)
        assert page.url.endswith("/edit_mailbox?id=1")
        port = page.get_by_role("spinbutton", name="Port")
        port.fill("1995")
        port.press("Tab")
        password = page.locator('input[aria-label="Password"]')
        assert password.input_value() == ""
        password.press_sequentially(SECRET, delay=20)
        password.press("Tab")
        page.get_by_role("button", name="Save", exact=True).click()
        page.get_by_text("(ID 1) saved.").wait_for(timeout=10_000)
    saved = mailboxes.get_mailbox(1)
    assert saved.port == 1995
    assert mailboxes.get_credentials(1).password == SECRET
    assert frames
    assert not [f for f in frames if SECRET.encode() in f or old_password.encode() in f]


def test_a_shared_deep_link_on_a_fresh_server_goes_through_the_entrypoint(
    tmp_path: Path, mailboxes: Any
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.conftest import mailbox_data

    mailboxes.create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    with _serve(tmp_path) as url, sync_api.sync_playwright() as playwright:
        page = browser_page(playwright, [])
        # The very first request of this server is a deep link.
        page.goto(f"{url}/edit_mailbox?id=1")
        page.get_by_text("Edit Mailbox: Gmail helpdesk").wait_for(timeout=20_000)
        nav = page.locator('[data-testid="stSidebarNav"]')
        nav.get_by_text("Activity").wait_for(timeout=10_000)
        assert nav.get_by_text("streamlit app").count() == 0, "legacy pages-folder navigation"
        # The form settles a moment after the title: wait for the value, don't race it.
        client_id = page.get_by_role("textbox", name="Client ID", exact=True)
        sync_api.expect(client_id).to_have_value("1234.apps.googleusercontent.com", timeout=10_000)


def click_row(page: Any, row: int) -> None:
    """Tick a row's selection box (the grid is a canvas: header ~35 px, rows 35 px)."""
    table = page.locator('[data-testid="stDataFrame"]').first
    table.scroll_into_view_if_needed()
    grid = table.bounding_box()
    page.mouse.click(grid["x"] + 18, grid["y"] + 35 + 35 * row + 18)


def test_after_a_delete_the_next_tick_selects_only_what_was_clicked(
    tmp_path: Path, mailboxes: Any
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.conftest import mailbox_data

    for name in ("Alpha", "Bravo", "Charlie"):
        mailboxes.create_mailbox(mailbox_data("password", name=name), actor=ACTOR)
    with _serve(tmp_path) as url, sync_api.sync_playwright() as playwright:
        page = browser_page(playwright, [])
        page.goto(url)
        page.get_by_text("3 mailboxes, 3 active").wait_for(timeout=20_000)
        click_row(page, 1)
        page.get_by_text("Selected: “Bravo”").wait_for(timeout=10_000)
        page.get_by_role("button", name="Delete").click()
        page.get_by_role("button", name="Yes, delete 1").click()
        page.get_by_text("Deleted 1 mailbox.").wait_for(timeout=10_000)
        page.get_by_text("Select rows to act on them.").wait_for(timeout=10_000)
        # Row 1 is Charlie now: had the tick stayed on the position, Charlie would be ticked.
        click_row(page, 0)
        caption = page.get_by_text("Selected: ")
        sync_api.expect(caption).to_have_text("Selected: “Alpha”", timeout=10_000)
        page.screenshot(path=str(tmp_path / "after-delete-tick.png"))
    assert [m.name for m in mailboxes.list_mailboxes()] == ["Alpha", "Charlie"]


def test_enter_in_a_field_submits_the_form(tmp_path: Path, mailboxes: Any) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with _serve(tmp_path) as url, sync_api.sync_playwright() as playwright:
        page = browser_page(playwright, [])
        page.goto(f"{url}/new_mailbox")
        field = lambda label: page.get_by_role("textbox", name=label, exact=True)  # noqa: E731
        field("Name").wait_for(timeout=20_000)
        field("Name").fill("Entered")
        field("Host").fill("pop.example.com")
        password = page.locator('input[aria-label="Password"]')
        password.press_sequentially("enter-pw-1", delay=10)
        field("Account").fill("enter@example.com")
        field("Account").press("Enter")
        page.get_by_text("Mailbox “Entered” saved with ID 1.").wait_for(timeout=20_000)
    assert mailboxes.get_mailbox(1).account == "enter@example.com"


# Buttons whose label overflows its box: Streamlit then cuts it with an ellipsis (in a
# div.stMarkdownEllipsis whose scrollWidth exceeds its clientWidth).
TRUNCATED = """() => [...document.querySelectorAll('[data-testid="stMain"] button')]
  .filter((b) => b.offsetParent !== null)
  .filter((b) => [...b.querySelectorAll("*")].some((e) => e.scrollWidth > e.clientWidth + 1))
  .map((b) => b.textContent.trim())"""


#: The summary's counts and their links, cut when their text overflows its box.
CUT_SUMMARY = """() => [...document.querySelectorAll(
    '[data-testid="stMetricLabel"], [data-testid="stMetricValue"], [data-testid="stPageLink"]')]
  .filter((e) => e.offsetParent !== null)
  .filter((e) => [e, ...e.querySelectorAll("*")].some((c) => c.scrollWidth > c.clientWidth + 1))
  .map((e) => e.textContent.trim())"""


def test_at_800_px_no_button_label_is_cut(tmp_path: Path, mailboxes: Any) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    from sqlalchemy import text

    from tests.conftest import mailbox_data

    mailboxes.create_mailbox(mailbox_data("password"), actor=ACTOR)
    mailboxes.create_mailbox(mailbox_data("gmail"), actor=ACTOR)
    with mailboxes._engine.begin() as connection:  # every vital sign, for the summary's row
        connection.execute(
            text(
                "INSERT INTO mailbox_monitor (mailbox_id, signin_ok, backoff_level, pause_level,"
                " alert_open, alert_sent, backlog_alerted, vitals_at, quota_level, backlog_over,"
                " offer_changed_at, password_offered) VALUES (1, true, 0, 0, false, false,"
                " false, CURRENT_TIMESTAMP, 90, true, CURRENT_TIMESTAMP, false)"
            )
        )
    with _serve(tmp_path) as url, sync_api.sync_playwright() as playwright:
        page = browser_page(playwright, [])
        page.set_viewport_size({"width": 800, "height": 1000})
        page.goto(url)
        page.get_by_text("2 mailboxes, 2 active").wait_for(timeout=20_000)
        page.get_by_text("Show no password sign-in").wait_for(timeout=10_000)
        summary = page.evaluate(CUT_SUMMARY)
        page.screenshot(path=str(tmp_path / "summary-800.png"))
        click_row(page, 0)
        page.get_by_text("Selected: “Support POP3”").wait_for(timeout=10_000)
        click_row(page, 1)
        page.get_by_text("Selected: “Support POP3”, “Gmail helpdesk”").wait_for(timeout=10_000)
        page.get_by_role("button", name="Deactivate").click()
        page.get_by_role("button", name="Yes, deactivate 2").wait_for(timeout=10_000)
        cut = {"Mailboxes": page.evaluate(TRUNCATED)}
        page.screenshot(path=str(tmp_path / "list-800.png"), full_page=True)
        for path, ready in (("/new_mailbox", "OK"), ("/edit_mailbox?id=1", "Save")):
            page.goto(url + path)
            page.get_by_role("button", name=ready, exact=True).wait_for(timeout=20_000)
            cut[path] = page.evaluate(TRUNCATED)
    assert cut == {"Mailboxes": [], "/new_mailbox": [], "/edit_mailbox?id=1": []}
    assert summary == [], "a count or its link is cut"


def test_an_open_list_shows_a_check_recorded_elsewhere_by_itself(
    tmp_path: Path, mailboxes: Any
) -> None:
    # A wall dashboard: nobody touches the page; check-due (here: this test) records a
    # check, and the page redraws itself within MAILBOX_LIST_REFRESH seconds.
    sync_api = pytest.importorskip("playwright.sync_api")
    from datetime import UTC, datetime

    from mailbox_core.models import MailboxCheck
    from tests.conftest import mailbox_data

    box = mailboxes.create_mailbox(mailbox_data("password", name="On the wall"), actor=ACTOR)
    with (
        serve(tmp_path, entrypoint=ENTRYPOINT, env={"MAILBOX_LIST_REFRESH": "1"}) as server,
        sync_api.sync_playwright() as playwright,
    ):
        page = browser_page(playwright, [])
        page.goto(server.url)
        page.get_by_text("1 mailbox, 1 active").wait_for(timeout=20_000)
        failing = page.get_by_test_id("stMetric").filter(has_text="Failing")
        sync_api.expect(failing).to_have_text("Failing0")
        refused = MailboxCheck(
            mailbox_id=box.id,
            started_at=datetime.now(UTC),
            ok=False,
            failed_step="Sign-in",
            message="The server refused the password for support@example.com",
            latency_ms=10.0,
            problem="password refused",
        )
        mailboxes.record_checks([refused])
        sync_api.expect(failing).to_have_text("Failing1", timeout=15_000)
