"""The sign-in gate and the acting user: the one place that reads st.user.

Hosted mode is Streamlit's `[auth]` in the secrets. Then nothing but the sign-in page
runs until the visitor signs in, a sign-in older than MAILBOX_SESSION_MAX_AGE ends, and
a user without a role sees only who they are. Without `[auth]` the app is in local mode:
the machine's user, every right, and a note saying so.
"""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from mailbox_core.access import Actor, ActorKind, Permission
from mailbox_core.errors import MailboxCoreError
from ui import runtime
from ui.navigation import APP_URL_PATHS

NO_ACCESS = "Signed in as {name}, but you have no access to Mailbox Manager — ask an admin."


def _claims() -> dict[str, Any]:
    # st.user holds every claim of the ID token (email, email_verified, groups, iat, sub).
    return dict(st.user.to_dict())


def hosted() -> bool:
    """True when sign-in is configured (Streamlit's [auth] secrets)."""
    return runtime.settings().sign_in


@functools.cache
def _machine_user() -> str:
    # getpass looks in the environment, then in the password database: once per process.
    return getpass.getuser()


def current_actor() -> Actor:
    """Who is acting in this session (a signed-in user, or the local machine's user)."""
    if not hosted():
        return Actor.local(_machine_user())
    if not _claims().get("is_logged_in"):
        return Actor(name="anonymous", role=None)
    return runtime.access_policy().actor_for(_claims())


def gate() -> Actor:
    """Run in the entrypoint before any page: sign in, session age, role; else stop."""
    try:
        actor = _admitted()
    except MailboxCoreError as exc:  # a broken [access] table or setting
        st.error(str(exc))
        st.stop()
    _sidebar(actor)
    return actor


def require(permission: Permission) -> Actor:
    """For a page: the actor, or a message and stop when the role does not allow it."""
    actor = current_actor()
    if not actor.can(permission):
        st.error(f"Your role does not allow you to {permission.value}.")
        st.stop()
    return actor


def _admitted() -> Actor:
    if not hosted():
        return Actor.local(_machine_user())
    claims = _claims()
    if not claims.get("is_logged_in"):
        _only(_sign_in_page, "Sign in")
    if runtime.access_policy().session_expired(claims):
        # iat, not auth_time: see AccessPolicy.session_expired. Logging out clears the
        # 30-day identity cookie; the next visit starts at the sign-in page.
        st.logout()
        st.stop()
    actor = current_actor()
    if actor.role is None:
        _only(_no_access_page, "No access")
    return actor


def _only(page: Callable[[], None], title: str) -> None:
    """Run ``page`` as the app's only page, then stop: whatever URL was opened, no other
    page runs and the sidebar lists none (a page file of pages/ is never reached).

    The app's own URLs are registered too, all showing ``page``: a shared link such as
    /edit_mailbox?id=3 then gets this page, not Streamlit's "Page not found" dialog.
    """
    same = [st.Page(page, title=title, url_path=path) for path in APP_URL_PATHS]
    st.navigation([st.Page(page, title=title, default=True), *same], position="hidden").run()
    st.stop()


def _no_access_page() -> None:
    st.title("Mailbox Manager")
    st.warning(NO_ACCESS.format(name=current_actor().name), icon=":material/lock:")
    st.button("Sign out", on_click=st.logout)


def _sign_in_page() -> None:
    """What an anonymous visitor sees, whatever URL they opened: a way to sign in."""
    st.title("Mailbox Manager")
    st.write("Sign in to see and manage the team's mailboxes.")
    providers = _providers(runtime.secrets())
    if len(providers) <= 1:
        st.button("Sign in", type="primary", on_click=_login, args=(providers[0],))
    else:
        for name in providers:
            st.button(f"Sign in with {name}", on_click=_login, args=(name,), key=f"login.{name}")


def _login(provider: str | None) -> None:
    if provider is None:
        st.login()
    else:
        st.login(provider)


def _providers(secrets: Mapping[str, Any]) -> list[str | None]:
    """Named providers ([auth.google], [auth.entra]…); a top-level client_id is the default."""
    auth = secrets.get("auth") or {}
    named: list[str | None] = [k for k, v in auth.items() if isinstance(v, Mapping)]
    if "client_id" in auth or not named:
        return [None, *named] if named else [None]
    return named


def _sidebar(actor: Actor) -> None:
    with st.sidebar:
        if actor.kind is ActorKind.LOCAL:
            st.caption(
                ":material/computer: Local mode — no sign-in. Anyone who can reach this "
                "address can change every mailbox; host it with sign-in for a team."
            )
            return
        role = actor.role.label if actor.role else "no role"
        st.caption(f":material/account_circle: Signed in as **{actor.name}** ({role})")
        st.button("Sign out", on_click=st.logout, key="access.sign_out")
