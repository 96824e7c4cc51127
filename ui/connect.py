"""Connect account on the mailbox forms, and the page the provider sends the browser back to.

On a form (``section``): "Connect with Google" (or Microsoft) starts a consent in the core,
then a link opens the provider's consent page in a new tab. While the consent waits, a
fragment asks the core every ``POLL_SECONDS`` (``run_every``); when the callback tab has
finished, the page reruns (every unsaved value stays: same session, same widgets), shows
"Connected as … at HH:MM" and runs Test connection once.

The session holds no token: only a random reference to the form's consent
(``form.CONNECT_REF``) and, while it waits, the consent page's URL (its ``state`` must
reach the browser anyway; only the core can check it, against the hash it stored).

The callback page (``callback_page``) runs in a new session in the signed-in user's
browser, after the sign-in gate: the core finishes the consent only for the user who
started it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

from mailbox_core.connect import (
    PROVIDER_NAMES,
    ConnectRefused,
    ConnectState,
    ConnectStatus,
    connectable,
)
from mailbox_core.errors import MailboxCoreError
from mailbox_core.probe import ProbeResult
from mailbox_core.schemas import OAuthProvider
from ui import access, form, runtime

POLL_SECONDS = 2
URL = "connect.url"  # the consent page of the waiting consent
SEEN = "connect.seen"  # the connection Test connection already ran for
CALLBACK_RESULT = "connect_callback.result"
CALLBACK_SEEN = "connect_callback.seen"


def reference(prefix: str) -> str:
    """The form's random reference to its consents (made on first use, gone with the form)."""
    name = form.key(prefix, form.CONNECT_REF)
    if name not in st.session_state:
        st.session_state[name] = secrets.token_urlsafe(24)
    return str(st.session_state[name])


def section(
    prefix: str,
    *,
    test: Callable[[dict[str, Any]], ProbeResult],
    values: Mapping[str, Any],
    mailbox_id: int | None = None,
) -> None:
    """The Connect part of a form, when its ``values`` (form.render's) sign in through a
    consent page."""
    provider = connectable(values)
    if provider is None:
        return
    name = PROVIDER_NAMES[provider]
    try:
        status = runtime.connect().status(reference(prefix), actor=access.current_actor())
    except MailboxCoreError as exc:
        st.error(str(exc))
        return
    st.markdown("**Connect account**")
    _operator_note(prefix, provider)
    if status is not None and status.state is ConnectState.CONNECTED:
        _connected(prefix, status, test)
    st.button(
        f"Connect with {name}",
        key=form.key(prefix, "connect.start"),
        icon=":material/link:",
        on_click=_start,
        args=(prefix, mailbox_id),
        help=f"Sign in at {name} as the mailbox's Account; the refresh token is stored "
        "encrypted, never shown.",
    )
    if status is None or status.state is ConnectState.CONNECTED:
        return
    if status.state is ConnectState.WAITING:
        _waiting(prefix, name)
    else:
        st.error(f"{status.message} {status.hint}".strip(), icon=":material/link_off:")


def _operator_note(prefix: str, provider: OAuthProvider) -> None:
    checks = runtime.settings().checks
    app = checks.google_app if provider is OAuthProvider.GMAIL else checks.microsoft_app
    if app and not (st.session_state.get(form.key(prefix, "client_id")) or "").strip():
        st.caption("Client ID blank: the operator's app signs in (no Client Secret needed).")


def _connected(
    prefix: str, status: ConnectStatus, test: Callable[[dict[str, Any]], ProbeResult]
) -> None:
    st.success(
        f"Connected as {status.account} at {_clock(status.at)}.", icon=":material/check_circle:"
    )
    st.caption(
        "The refresh token waits on the server, encrypted, until this form is saved; "
        "leaving the form drops it."
    )
    seen = f"{status.account} {status.at.isoformat()}"
    if st.session_state.get(form.key(prefix, SEEN)) != seen:
        st.session_state[form.key(prefix, SEEN)] = seen
        st.session_state.pop(form.key(prefix, URL), None)
        form.submit_test(prefix, test)
        # The Edit page shows a test's result above the form, already drawn: show it now.
        st.rerun()


def _waiting(prefix: str, name: str) -> None:
    url = st.session_state.get(form.key(prefix, URL))
    if url:
        st.link_button(
            f"Open the {name} sign-in (new tab)",
            url,
            type="primary",
            icon=":material/open_in_new:",
        )
    _poll(prefix)


@st.fragment(run_every=POLL_SECONDS)
def _poll(prefix: str) -> None:
    """Ask the core until the consent came back, then rerun the whole page to show it."""
    try:
        status = runtime.connect().status(reference(prefix), actor=access.current_actor())
    except MailboxCoreError as exc:
        st.error(str(exc))
        return
    if status is None or status.state is not ConnectState.WAITING:
        st.rerun()
    st.caption(
        ":material/hourglass_top: Waiting for the sign-in in the other tab — this form "
        "updates itself. The link works for 10 minutes."
    )


def _start(prefix: str, mailbox_id: int | None) -> None:
    st.session_state.pop(form.key(prefix, URL), None)
    url = form._attempt(
        prefix,
        lambda: runtime.connect().start(
            form.current_values(prefix),
            form=reference(prefix),
            redirect_uri=redirect_uri(),
            actor=access.current_actor(),
            mailbox_id=mailbox_id,
        ),
    )
    if url is not None:
        st.session_state[form.key(prefix, URL)] = url


def redirect_uri() -> str:
    """Where the provider sends the browser back (register it with the provider)."""
    return runtime.settings().connect.redirect_uri(
        int(st.get_option("server.port")), str(st.get_option("server.baseUrlPath") or "")
    )


def _clock(moment: datetime) -> str:
    """HH:MM in the browser's time zone, else in UTC (and says so)."""
    try:
        zone = ZoneInfo(st.context.timezone or "")
    except (ZoneInfoNotFoundError, ValueError):
        return f"{moment.astimezone(UTC):%H:%M} UTC"
    return f"{moment.astimezone(zone):%H:%M}"


# ---------------------------------------------------------------- the callback page


def callback_page() -> None:
    """Finish the consent the query string names, once; then say what happened."""
    st.title("Connect account")
    params = {
        name: str(st.query_params.get(name) or "")
        for name in ("state", "code", "error", "error_description")
    }
    if any(params.values()):
        # The code leaves the address bar (and a reload cannot send it again).
        st.query_params.clear()
        seen = hashlib.sha256(params["state"].encode()).hexdigest()
        if st.session_state.get(CALLBACK_SEEN) != seen:
            st.session_state[CALLBACK_SEEN] = seen
            st.session_state[CALLBACK_RESULT] = _complete(params)
    result: tuple[bool, str, str] | None = st.session_state.get(CALLBACK_RESULT)
    if result is None:
        st.info(
            "This is where Google or Microsoft sends you back after Connect account. "
            "Start from a mailbox form: choose Gmail (or Office365 with Connect account) "
            "and press Connect.",
            icon=":material/link:",
        )
        return
    ok, message, hint = result
    if ok:
        st.success(message, icon=":material/check_circle:")
        st.caption(hint)
    else:
        st.error(message, icon=":material/link_off:")
        if hint:
            st.info(hint, icon=":material/lightbulb:")


def _complete(params: dict[str, str]) -> tuple[bool, str, str]:
    try:
        outcome = runtime.connect().complete(params, actor=access.current_actor())
    except ConnectRefused as exc:
        return False, f"Nothing was connected: {exc}", exc.hint
    except MailboxCoreError as exc:
        return False, f"Nothing was connected: {exc}", ""
    if outcome.ok:
        return True, outcome.message, f"{outcome.account}: the mailbox form shows it now."
    return False, f"Nothing was connected: {outcome.message}", outcome.hint
