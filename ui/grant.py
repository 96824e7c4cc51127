"""The "Grant" line of an OAuth mailbox's Edit page: what the token endpoint last showed."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from mailbox_core.errors import MailboxCoreError
from mailbox_core.grant import DIFFERS, MATCHES, GrantPublic
from mailbox_core.monitoring import Monitor
from mailbox_core.oauth import GrantProblem

#: How each class of token failure reads.
FAILURES = {
    GrantProblem.REVOKED.value: "revoked or expired grant",
    GrantProblem.CONSENT.value: "consent required",
    GrantProblem.CLIENT.value: "client refused",
    GrantProblem.UNREACHABLE.value: "token endpoint unreachable",
}


def section(monitor: Monitor, mailbox_id: int) -> None:
    """Grant: last used, rotated, subject against the Account, the last failure, a warning."""
    try:
        found = monitor.grant_of(mailbox_id)
    except MailboxCoreError as exc:
        st.error(str(exc))
        return
    if found is None:
        return  # not an OAuth mailbox: nothing to say
    st.markdown(line(found))
    if found.failure_message:
        what = FAILURES.get(found.failure or "", "refused")
        hint = f" {found.failure_hint}" if found.failure_hint else ""
        st.error(
            f"Last token failure ({what}, {_when(found.failure_at)}): "
            f"{found.failure_message}.{hint}"
        )
    if found.warning:
        st.warning(found.warning, icon=":material/schedule:")


def line(grant: GrantPublic) -> str:
    """ "**Grant:** last used …, rotated …, subject …" (markdown)."""
    subject = {
        MATCHES: f"{grant.subject} (matches the Account)",
        DIFFERS: f"{grant.subject} (differs from the Account {grant.account})",
    }.get(grant.subject_match, "not known (the provider sent no ID token)")
    return (
        f"**Grant:** last used {_when(grant.last_used_at)} · rotated "
        f"{_when(grant.rotated_at, 'never seen')} · subject {subject}"
    )


def _when(moment: datetime | None, missing: str = "not known") -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else missing
