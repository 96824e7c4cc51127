"""Check all with a progress bar, and Test connection for selected mailboxes."""

from __future__ import annotations

import streamlit as st

from mailbox_core.access import Actor
from mailbox_core.checks import MailboxChecker
from mailbox_core.probe import ProbeResult
from mailbox_core.schemas import MailboxPublic

RESULTS_KEY = "mailboxes.test_results"


def check_all(checker: MailboxChecker, actor: Actor) -> None:
    """Check every active mailbox, showing progress as each one finishes."""
    with st.status("Checking active mailboxes…", expanded=True) as status:
        bar = st.progress(0.0, text="Starting…")

        def progress(done: int, total: int, mailbox: MailboxPublic, result: ProbeResult) -> None:
            mark = "✅" if result.ok else "❌"
            bar.progress(done / total, text=f"{done} of {total} · {mark} {mailbox.name}")

        results = checker.check_many(actor=actor, on_progress=progress)
        failed = sum(not r.ok for r in results.values())
        if not results:
            bar.progress(1.0, text="No active mailboxes.")
        label = (
            f"Checked {len(results)} active mailboxes: {len(results) - failed} OK, "
            f"{failed} failing."
        )
        status.update(label=label, state="error" if failed else "complete", expanded=False)


def test_selected(checker: MailboxChecker, mailbox_ids: list[int], actor: Actor) -> None:
    """Test the selected mailboxes; results are kept (no secrets) to show after the rerun."""
    st.session_state[RESULTS_KEY] = {i: checker.check_mailbox(i, actor=actor) for i in mailbox_ids}


def stored_results() -> dict[int, ProbeResult]:
    results: dict[int, ProbeResult] = st.session_state.get(RESULTS_KEY) or {}
    return results
