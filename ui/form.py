"""The mailbox form, shared by every page that edits mailbox settings.

Widgets are keyed ``"<prefix>.<field>"`` and never also get ``value=``: defaults are
seeded into session state once. Which fields show comes from the core's
``visible_fields``, the same rule that decides what is saved.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

import streamlit as st

from mailbox_core.access import Actor
from mailbox_core.errors import MailboxCoreError, StoredSecretRefused, ValidationFailed
from mailbox_core.presets import oauth_server, suggest
from mailbox_core.probe import ProbeResult
from mailbox_core.schemas import (
    ADVANCED_FIELDS,
    BACKLOG_SUGGESTION,
    DEFAULT_CHECK_INTERVAL,
    LABELS,
    MAX_BACKLOG_MINUTES,
    MAX_CHECK_INTERVAL,
    SECRET_FIELDS,
    SETTING_FIELDS,
    AuthMethod,
    MailboxPublic,
    MailboxType,
    OAuthProvider,
    Status,
    default_port,
    parse_host,
    plain,
    required_fields,
    visible_fields,
)
from mailbox_core.service import MailboxService
from ui import twins

T = TypeVar("T")
YES_NO = ["Yes", "No"]
DEFAULTS: dict[str, Any] = {
    "mailbox_type": MailboxType.POP3.value,
    "port": default_port(MailboxType.POP3, ssl_enabled=False),
    "ssl_enabled": "No",
    "starttls": "No",
    "status": Status.ACTIVE.value,
    "oauth_enabled": "No",
    "oauth_provider": OAuthProvider.UNKNOWN.value,
    "auth_method": AuthMethod.PASSWORD.value,
    "allow_self_signed": False,
    "allow_plaintext_password": False,
    "check_interval": DEFAULT_CHECK_INTERVAL,
    "client_secret_expires": None,  # seeded, so st.date_input starts empty, not today
    "quota_warnings": "80, 90, 95",
    "backlog_minutes": None,  # seeded, so st.number_input starts empty (off), not at 1
}
MFA_HELP = (
    "Uses Microsoft's resource-owner password grant with Account and Password. Microsoft "
    "discourages it, and it fails for accounts with multi-factor authentication (MFA): "
    "prefer Connect account (delegated) or Client Secret for those."
)
#: Where ui/connect.py keeps the form's reference to its Connect account consent.
CONNECT_REF = "connect.form"

# Streamlit 1.67 quirk: typing a password and pressing Tab moves focus to the field's
# "Show password" button, and the value is never committed (the field shows dots, the
# server gets ""); neither blur nor `live=True` saves it. Without the button, Tab goes
# to the next widget and the value commits. Secrets are write-only anyway.
# tests/app/test_served_app.py types a password, presses Tab and saves, in Chromium.
HIDE_PASSWORD_REVEAL = "<style>button[aria-label='Show password']{display:none}</style>"

# Enter submits. The form cannot be an st.form (fields appear as the user answers, SPEC
# §2), and a button's shortcut="Enter" is ignored while the focus is in a text field. So
# this script (constant, no user input) clicks the page's submit button, keyed
# "<prefix>.submit", when Enter is pressed in a one-line field. It runs after Streamlit's
# own Enter handler (on React's root, below document), which has already committed the
# field's value. Selectboxes are inputs too: Enter picks an option there, so they are left
# alone. tests/app/test_served_app.py presses Enter in Chromium.
ENTER_SUBMITS = """<script>
(() => {
  if (window.mailboxManagerEnterSubmits) return;
  window.mailboxManagerEnterSubmits = true;
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.isComposing || event.shiftKey || event.altKey
        || event.ctrlKey || event.metaKey) return;
    const field = event.target;
    if (!(field instanceof HTMLInputElement)) return;
    if (!["text", "password", "number", "email"].includes(field.type)) return;
    if (field.getAttribute("role") === "combobox" || field.closest("[data-baseweb=select]")) return;
    const submit = document.querySelector("[class*='-submit'][class*='st-key-'] button");
    if (submit && !submit.disabled) setTimeout(() => submit.click(), 0);
  });
})();
</script>"""

#: Form rows: fields side by side (and their width shares), in SPEC order left to right.
ROWS: tuple[tuple[tuple[str, int], ...], ...] = (
    (("name", 1),),
    (("mailbox_type", 1), ("host", 3), ("port", 1)),
    (("account", 1), ("password", 1)),
    (("ssl_enabled", 1), ("starttls", 1), ("status", 1)),
    (("comments", 1),),
    (("oauth_enabled", 1), ("oauth_provider", 1), ("auth_method", 2)),
    (("client_id", 1), ("tenant_id", 1)),
    (("client_secret", 1), ("refresh_token", 1)),
)


def key(prefix: str, field: str) -> str:
    return f"{prefix}.{field}"


def is_fresh(prefix: str) -> bool:
    """True when the form's widgets are not in the session (first visit, or after leaving).

    Streamlit drops a widget's value once it is not rendered, e.g. after a page switch,
    while plain keys such as ``port_typed`` stay: those must not outlive the widgets.
    """
    return key(prefix, "name") not in st.session_state


def init_state(prefix: str) -> None:
    """Seed defaults when the form starts afresh (values seeded for a duplicate count)."""
    if is_fresh(prefix):
        clear_form(prefix)
    for field, value in DEFAULTS.items():
        st.session_state.setdefault(key(prefix, field), value)
    st.session_state.setdefault(key(prefix, "port_typed"), False)
    st.session_state.setdefault(key(prefix, "host_typed"), False)


def form_values(mailbox: MailboxPublic) -> dict[str, Any]:
    """A saved mailbox as widget values (no secrets: they are write-only)."""
    values: dict[str, Any] = {}
    for field in SETTING_FIELDS:
        value = plain(getattr(mailbox, field))
        if field == "client_secret_expires":  # st.date_input takes a date, not ISO text
            value = mailbox.client_secret_expires
        if field == "quota_warnings":  # stored "80,90,95"; people read "80, 90, 95"
            value = ", ".join(mailbox.quota_warnings.split(","))
        if isinstance(value, bool) and field not in ADVANCED_FIELDS:
            value = "Yes" if value else "No"
        values[field] = value if value is not None else DEFAULTS.get(field, "")
    return values


def seed(prefix: str, values: dict[str, Any], stored: dict[str, bool] | None = None) -> None:
    """Fill the form with saved values; a non-standard port counts as typed."""
    clear_form(prefix)
    for field, value in values.items():
        st.session_state[key(prefix, field)] = value
    standard = default_port(values["mailbox_type"], values["ssl_enabled"] == "Yes")
    st.session_state[key(prefix, "port_typed")] = values["port"] != standard
    # A saved (or copied) mailbox's server is its own: choosing a provider keeps it.
    st.session_state[key(prefix, "host_typed")] = bool(values.get("host"))
    if stored is not None:
        st.session_state[key(prefix, "stored")] = stored


def cleared_secrets(prefix: str) -> set[str]:
    """Stored secrets the user asked to remove (only where the field is shown)."""
    visible = set(visible_fields(current_values(prefix)))
    return {
        f for f in SECRET_FIELDS if f in visible and st.session_state.get(key(prefix, f"clear.{f}"))
    }


def current_values(prefix: str) -> dict[str, Any]:
    return {field: st.session_state.get(key(prefix, field)) for field in LABELS}


def submitted_values(prefix: str) -> dict[str, Any]:
    """Only what is visible is submitted: hidden answers are never saved."""
    values = current_values(prefix)
    return {field: values[field] for field in visible_fields(values)}


def clear_form(prefix: str) -> None:
    """Forget every value of the form, secrets included."""
    for name in [k for k in st.session_state if str(k).startswith(prefix + ".")]:
        del st.session_state[name]


# ---------------------------------------------------------------- callbacks


def _follow_port(prefix: str) -> None:
    """Port follows Mailbox Type and SSL until the user types one of their own."""
    if st.session_state.get(key(prefix, "port_typed")):
        return
    ssl = st.session_state.get(key(prefix, "ssl_enabled")) == "Yes"
    st.session_state[key(prefix, "port")] = default_port(
        st.session_state.get(key(prefix, "mailbox_type"), "POP3"), ssl
    )


def _port_typed(prefix: str) -> None:
    st.session_state[key(prefix, "port_typed")] = True


def _host_changed(prefix: str) -> None:
    """A pasted URL (imaps://imap.gmail.com:993) fills Mailbox Type, SSL and Port."""
    raw = st.session_state.get(key(prefix, "host")) or ""
    st.session_state[key(prefix, "host_typed")] = bool(raw.strip())
    if ":" not in raw:
        return
    try:
        spec = parse_host(raw)
    except ValueError:
        return  # reported when the form is submitted
    st.session_state[key(prefix, "host")] = spec.host
    if spec.mailbox_type:
        st.session_state[key(prefix, "mailbox_type")] = spec.mailbox_type.value
    if spec.ssl_enabled is not None:
        st.session_state[key(prefix, "ssl_enabled")] = "Yes" if spec.ssl_enabled else "No"
    if spec.port:
        st.session_state[key(prefix, "port")] = spec.port
        st.session_state[key(prefix, "port_typed")] = True
    else:
        _follow_port(prefix)


def _provider_chosen(prefix: str) -> None:
    """Gmail or Office365 fills its server (SSL, 993) unless the user typed a Host."""
    server = oauth_server(st.session_state.get(key(prefix, "oauth_provider")))
    if server is None or st.session_state.get(key(prefix, "host_typed")):
        return
    st.session_state[key(prefix, "host")] = server.host
    st.session_state[key(prefix, "ssl_enabled")] = "Yes"
    if not st.session_state.get(key(prefix, "port_typed")):
        st.session_state[key(prefix, "port")] = server.port


#: What changing a field does besides clearing its error.
_ON_CHANGE: dict[str, Callable[[str], None]] = {
    "mailbox_type": _follow_port,
    "ssl_enabled": _follow_port,
    "port": _port_typed,
    "host": _host_changed,
    "oauth_provider": _provider_chosen,
}


def _changed(prefix: str, field: str) -> None:
    """A field's error goes as soon as the field changes (the rest stay until submitted)."""
    errors: dict[str, str] | None = st.session_state.get(key(prefix, "errors"))
    if errors and field in errors:
        st.session_state[key(prefix, "errors")] = {f: m for f, m in errors.items() if f != field}
    if follow := _ON_CHANGE.get(field):
        follow(prefix)


def _watch(prefix: str, field: str) -> dict[str, Any]:
    return {"on_change": _changed, "args": (prefix, field)}


def _use_suggestion(prefix: str) -> None:
    values = current_values(prefix)
    found = suggest(values.get("account") or "", values.get("mailbox_type") or "POP3")
    if found is None:
        return
    st.session_state[key(prefix, "mailbox_type")] = found.mailbox_type.value
    st.session_state[key(prefix, "host")] = found.host
    st.session_state[key(prefix, "ssl_enabled")] = "Yes"
    st.session_state[key(prefix, "port")] = found.port
    st.session_state[key(prefix, "port_typed")] = False


def _attempt(prefix: str, action: Callable[[], T], *, confirmable: bool = False) -> T | None:
    """Run a core action for the form; problems are kept for the next run (None returned).

    ``confirmable``: a stored secret kept for a new destination may be confirmed (Save),
    so the page offers the confirmation; a test never sends it (no offer).
    """
    for name in ("errors", "failure", "moved", "errors_from"):
        st.session_state.pop(key(prefix, name), None)
    try:
        return action()
    except StoredSecretRefused as exc:
        st.session_state[key(prefix, "errors")] = exc.by_field()
        if confirmable:
            st.session_state[key(prefix, "moved")] = exc.secrets
    except ValidationFailed as exc:
        st.session_state[key(prefix, "errors")] = exc.by_field()
    except MailboxCoreError as exc:
        st.session_state[key(prefix, "failure")] = str(exc)
    return None


def submit_create(
    prefix: str, service: MailboxService, actor: Actor, on_saved: Callable[[str], None]
) -> None:
    """OK: validate and save in the core, or keep every problem to show under its field."""
    connected = st.session_state.get(key(prefix, CONNECT_REF))
    created = _attempt(
        prefix,
        lambda: service.create_mailbox(submitted_values(prefix), actor=actor, connected=connected),
    )
    if created is not None:
        clear_form(prefix)
        twins.after_save(service, created.id)
        on_saved(f"Mailbox “{created.name}” saved with ID {created.id}.")


def submit_update(
    prefix: str,
    service: MailboxService,
    mailbox_id: int,
    actor: Actor,
    on_saved: Callable[[str], None],
) -> None:
    """Save on the Edit page; blank secrets keep the stored ones."""
    saved = _attempt(
        prefix,
        lambda: service.update_mailbox(
            mailbox_id,
            submitted_values(prefix),
            expected_version=st.session_state[key(prefix, "version")],
            clear=cleared_secrets(prefix),
            keep_secrets_for_new_destination=bool(st.session_state.get(key(prefix, "keep_moved"))),
            actor=actor,
            connected=st.session_state.get(key(prefix, CONNECT_REF)),
        ),
        confirmable=True,
    )
    if saved is not None:
        clear_form(prefix)
        twins.after_save(service, saved.id)
        on_saved(f"Mailbox “{saved.name}” (ID {saved.id}) saved.")


def submit_test(prefix: str, test: Callable[[dict[str, Any]], ProbeResult]) -> None:
    """Test connection on the unsaved values; the result (no secrets) is kept to show."""
    st.session_state.pop(key(prefix, "probe"), None)
    result = _attempt(prefix, lambda: test(submitted_values(prefix)))
    if result is not None:
        st.session_state[key(prefix, "probe")] = result
    else:
        st.session_state[key(prefix, "errors_from")] = "test"


def problems(prefix: str) -> None:
    """What stopped the last OK / Save / Test connection, above the buttons' results."""
    errors: dict[str, str] = st.session_state.get(key(prefix, "errors")) or {}
    if errors:
        fields = [f for f in LABELS if f in errors]
        if st.session_state.get(key(prefix, "errors_from")) == "test":
            listed = "; ".join(f"{LABELS[f]} {errors[f]}" for f in fields)
            st.error(f"Cannot test yet: {listed}.", icon=":material/error:")
        else:
            listed = ", ".join(LABELS[f] for f in fields)
            st.error(f"Nothing was saved. Please correct: {listed}.", icon=":material/error:")
    if failure := st.session_state.get(key(prefix, "failure")):
        st.error(failure, icon=":material/error:")


def submit_button(prefix: str, label: str, **options: Any) -> None:
    """The page's OK / Save: Enter in a one-line field presses it (ENTER_SUBMITS)."""
    st.button(label, key=key(prefix, "submit"), type="primary", **options)


# ---------------------------------------------------------------- rendering


def render(prefix: str) -> dict[str, Any]:
    """Draw the visible fields in SPEC order, side by side in rows, each with its error.

    Returns the values drawn (``current_values``), for what the page shows under them.
    """
    st.html(HIDE_PASSWORD_REVEAL + ENTER_SUBMITS, unsafe_allow_javascript=True)
    values = current_values(prefix)
    errors: dict[str, str] = st.session_state.get(key(prefix, "errors")) or {}
    visible = set(visible_fields(values))
    for row in ROWS:
        shown = [(field, share) for field, share in row if field in visible]
        if not shown:
            continue
        # A field alone in its row needs no columns (each st.columns costs a rerun time).
        cells: list[AbstractContextManager[Any]] = (
            list(st.columns([s for _, s in shown])) if len(shown) > 1 else [nullcontext()]
        )
        for cell, (field, _) in zip(cells, shown, strict=True):
            with cell:
                _WIDGETS[field](prefix, values)
                if field in errors:
                    st.error(f"{LABELS[field]}: {errors[field]}", icon=":material/error:")
        if any(field == "account" for field, _ in shown):
            _offer_suggestion(prefix, values)
    if (
        values.get("oauth_enabled") == "Yes"
        and values.get("mailbox_type") == "IMAP"
        and values.get("oauth_provider") == OAuthProvider.UNKNOWN.value
    ):
        st.warning(
            "With provider Unknown no OAuth token can be obtained: the mailbox can be "
            "saved, but it signs in with Account and Password until a provider is "
            "chosen."
        )
    plaintext = "allow_plaintext_password" in visible
    if plaintext and not values.get("allow_plaintext_password"):
        st.caption(
            ":material/lock_open: Without SSL or STARTTLS the connection is not encrypted: "
            "the connection test will not send the password unless you allow it under "
            "Advanced."
        )
    with st.expander("Advanced"):
        st.toggle(
            LABELS["allow_self_signed"],
            key=key(prefix, "allow_self_signed"),
            help="Accept a server certificate no trusted CA signed. Off by default: "
            "only for test servers or appliances you control.",
            **_watch(prefix, "allow_self_signed"),
        )
        if plaintext:
            st.toggle(
                LABELS["allow_plaintext_password"],
                key=key(prefix, "allow_plaintext_password"),
                help="Send the password (or token) over a connection that is not "
                "encrypted. Off by default: anyone on the network path can read it. "
                "Only for a network you trust.",
                **_watch(prefix, "allow_plaintext_password"),
            )
        st.number_input(
            LABELS["check_interval"],
            min_value=1,
            max_value=MAX_CHECK_INTERVAL,
            step=1,
            key=key(prefix, "check_interval"),
            help="How often scheduled checks (check-due or the worker) test this mailbox.",
        )
        if "client_secret_expires" in visible_fields(values):
            st.date_input(
                LABELS["client_secret_expires"],
                key=key(prefix, "client_secret_expires"),
                help="When the app's client secret stops working (Entra ID: at most 24 "
                "months): warned 30 and 7 days ahead.",
            )
        _vital_thresholds(prefix, values)
        for field in ADVANCED_FIELDS:
            if field in errors:
                st.error(f"{LABELS[field]}: {errors[field]}", icon=":material/error:")
    return values


def _vital_thresholds(prefix: str, values: dict[str, Any]) -> None:
    """Quota warnings and the backlog threshold (issue 15), with a suggested backlog value."""
    st.text_input(
        LABELS["quota_warnings"],
        key=key(prefix, "quota_warnings"),
        help="One alert when the mailbox's quota passes each of these percentages (the "
        "highest one crossed), and one when it is back under them. Empty: no quota alerts. "
        "POP3 and servers without the QUOTA extension show the quota as unknown.",
    )
    interval = values.get("check_interval") or DEFAULT_CHECK_INTERVAL
    suggested = min(int(interval) * BACKLOG_SUGGESTION, MAX_BACKLOG_MINUTES)
    st.number_input(
        LABELS["backlog_minutes"],
        value=None,  # empty is off; seeded through session state (DEFAULTS), never both
        min_value=1,
        max_value=MAX_BACKLOG_MINUTES,
        step=1,
        placeholder=f"off (suggested: {suggested})",
        key=key(prefix, "backlog_minutes"),
        help="Alert when the oldest unseen message has waited this long: the helpdesk has "
        "stopped reading this mailbox. Empty: no backlog alert.",
    )
    st.caption(
        f"Suggested backlog alert: {suggested} minutes ({BACKLOG_SUGGESTION}× the check "
        "interval), so one late poll does not alert."
    )


def _offer_suggestion(prefix: str, values: dict[str, Any]) -> None:
    """Known provider and Host still empty: offer its settings in one click."""
    if values.get("host"):
        return
    found = suggest(values.get("account") or "", values.get("mailbox_type") or "POP3")
    if found is None:
        return
    hint, use = st.columns([4, 1])
    hint.info(f"Suggested for {found.summary}. {found.note}".strip(), icon=":material/lightbulb:")
    use.button(
        "Use suggested settings",
        key=key(prefix, "use_suggestion"),
        on_click=_use_suggestion,
        args=(prefix,),
    )


def _text(field: str, **options: Any) -> Callable[[str, dict[str, Any]], None]:
    def widget(prefix: str, values: dict[str, Any]) -> None:
        st.text_input(LABELS[field], key=key(prefix, field), **options, **_watch(prefix, field))

    return widget


def _secret(field: str, help_text: str) -> Callable[[str, dict[str, Any]], None]:
    def widget(prefix: str, values: dict[str, Any]) -> None:
        stored: dict[str, bool] | None = st.session_state.get(key(prefix, "stored"))
        st.text_input(
            LABELS[field],
            key=key(prefix, field),
            type="password",
            autocomplete="new-password",
            help=help_text,
            placeholder="set — leave blank to keep" if stored and stored.get(field) else "",
            # Kept while hidden on the page (Gmail hides Password); gone on save or leaving.
            persist_state="page",
            **_watch(prefix, field),
        )
        if stored is None:
            return
        if not stored.get(field):
            st.caption(f"{LABELS[field]}: not set")
            return
        st.caption(f"{LABELS[field]}: set (never shown). Type a new value to replace it.")
        if field not in required_fields(values):
            st.checkbox(f"Clear the stored {LABELS[field]}", key=key(prefix, f"clear.{field}"))

    return widget


def _choice(
    field: str,
    options: list[str],
    *,
    radio: bool = True,
    help_text: str | None = None,
) -> Callable[[str, dict[str, Any]], None]:
    def widget(prefix: str, values: dict[str, Any]) -> None:
        extra = _watch(prefix, field)
        if radio:
            st.radio(
                LABELS[field],
                options,
                key=key(prefix, field),
                horizontal=True,
                help=help_text,
                persist_state="page",
                **extra,
            )
        else:
            st.selectbox(
                LABELS[field],
                options,
                key=key(prefix, field),
                help=help_text,
                persist_state="page",
                **extra,
            )

    return widget


def _host(prefix: str, values: dict[str, Any]) -> None:
    imap = values.get("mailbox_type") == MailboxType.IMAP.value
    st.text_input(
        LABELS["host"],
        key=key(prefix, "host"),
        placeholder="imap.example.com" if imap else "pop.example.com",
        **_watch(prefix, "host"),
        help="Host name or IP address of the mail server. A pasted URL such as "
        "imaps://imap.gmail.com:993 also sets Mailbox Type, SSL and Port.",
    )


def _port(prefix: str, values: dict[str, Any]) -> None:
    st.number_input(
        LABELS["port"],
        min_value=1,
        max_value=65535,
        step=1,
        key=key(prefix, "port"),
        **_watch(prefix, "port"),
        help="POP3 uses 110 (995 with SSL), IMAP 143 (993 with SSL). The port "
        "follows your choices until you type one yourself.",
    )


def _password(prefix: str, values: dict[str, Any]) -> None:
    # Shown only where the sign-in uses it (schemas.visible_fields).
    if (
        values.get("oauth_provider") == OAuthProvider.OFFICE365.value
        and values.get("oauth_enabled") == "Yes"
    ):
        help_text = MFA_HELP
    else:
        help_text = (
            "The mailbox password. Gmail and Yahoo without OAuth need an app "
            "password (created in the account's security settings), not the "
            "normal sign-in password."
        )
    _secret("password", help_text)(prefix, values)


def _comments(prefix: str, values: dict[str, Any]) -> None:
    st.text_area(
        LABELS["comments"],
        key=key(prefix, "comments"),
        max_chars=2000,
        height=68,
        placeholder="Purpose of this mailbox",
        **_watch(prefix, "comments"),
    )


_WIDGETS: dict[str, Callable[[str, dict[str, Any]], None]] = {
    "name": _text(
        "name",
        max_chars=100,
        placeholder="Support inbox",
        help="A name people recognise; must be unique.",
    ),
    "mailbox_type": _choice("mailbox_type", [t.value for t in MailboxType], radio=False),
    "host": _host,
    "port": _port,
    "account": _text("account", placeholder="JDoe@gmail.com", help="The mailbox's email address."),
    "password": _password,
    "ssl_enabled": _choice(
        "ssl_enabled", YES_NO, help_text="Yes: implicit TLS from the first byte (ports 995/993)."
    ),
    "starttls": _choice(
        "starttls", YES_NO, help_text="Upgrade the plain connection to TLS before signing in."
    ),
    "status": _choice("status", [s.value for s in Status]),
    "comments": _comments,
    "oauth_enabled": _choice("oauth_enabled", YES_NO),
    "oauth_provider": _choice("oauth_provider", [p.value for p in OAuthProvider], radio=False),
    "auth_method": _choice("auth_method", [m.value for m in AuthMethod], help_text=MFA_HELP),
    "client_id": _text(
        "client_id",
        persist_state="page",
        help="Gmail: the OAuth client ID from Google Cloud. Office365: the "
        "Application (client) ID from Azure.",
    ),
    "tenant_id": _text(
        "tenant_id",
        persist_state="page",
        help="Directory (tenant) ID: a GUID or a domain such as contoso.onmicrosoft.com.",
    ),
    "client_secret": _secret("client_secret", "Stored encrypted; never shown again."),
    "refresh_token": _secret("refresh_token", "Stored encrypted; never shown again."),
}

assert set(_WIDGETS) | set(ADVANCED_FIELDS) == set(LABELS)
assert {field for row in ROWS for field, _ in row} == set(_WIDGETS)
assert set(SECRET_FIELDS) <= set(_WIDGETS)
