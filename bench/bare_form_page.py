"""The widgets of bench/bare_form.py's one page (a page file, as the app's pages are)."""

import streamlit as st


def _follow() -> None:
    imap = st.session_state["bare.mailbox_type"] == "IMAP"
    ssl = st.session_state["bare.ssl_enabled"] == "Yes"
    st.session_state["bare.port"] = (993 if ssl else 143) if imap else (995 if ssl else 110)


#: The product's page-wide style and Enter script are one st.html element; so is this.
STYLE = "<style>button[aria-label='Show password']{display:none}</style>"


def form() -> None:
    st.title("New Mailbox")
    st.html(STYLE)
    st.session_state.setdefault("bare.port", 110)
    st.text_input("Name", key="bare.name", placeholder="Support inbox")
    kind, host, port = st.columns([1, 3, 1])
    kind.selectbox("Mailbox Type", ["POP3", "IMAP"], key="bare.mailbox_type", on_change=_follow)
    host.text_input("Host", key="bare.host", placeholder="pop.example.com")
    port.number_input("Port", min_value=1, max_value=65535, step=1, key="bare.port")
    account, password = st.columns(2)
    account.text_input("Account", key="bare.account", placeholder="JDoe@gmail.com")
    password.text_input("Password", key="bare.password", type="password")
    ssl, starttls, status = st.columns(3)
    ssl.radio(
        "SSL Enabled",
        ["Yes", "No"],
        index=1,
        key="bare.ssl_enabled",
        on_change=_follow,
        horizontal=True,
    )
    starttls.radio("STARTTLS", ["Yes", "No"], index=1, key="bare.starttls", horizontal=True)
    status.radio("Status", ["Active", "Not Active"], key="bare.status", horizontal=True)
    st.text_area("Comments", key="bare.comments", height=68)
    if st.session_state.get("bare.mailbox_type") == "IMAP":
        st.radio("Oauth Enabled", ["Yes", "No"], index=1, key="bare.oauth", horizontal=True)
    if not st.session_state.get("bare.plaintext"):
        st.caption("Without SSL or STARTTLS the connection is not encrypted.")
    with st.expander("Advanced"):
        st.toggle("Allow self-signed certificate", key="bare.self_signed")
        st.toggle("Allow sign-in without encryption", key="bare.plaintext")
        st.number_input("Check every (minutes)", min_value=1, value=5, key="bare.interval")
        st.text_input("Quota warnings (%)", value="80, 90, 95", key="bare.quota")
        st.number_input("Backlog alert after (minutes)", value=None, min_value=1, key="bare.bl")
        st.caption("Suggested backlog alert: 15 minutes (3× the check interval).")
    with st.container(horizontal=True):
        st.button("OK", type="primary")
        st.button("Test connection")
        st.button("Cancel")


form()
