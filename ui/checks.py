"""Check all, and Test connection of selected mailboxes: concurrent, with progress that tells
what it still waits for, ending with the failures and their messages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from mailbox_core.access import Actor
from mailbox_core.checks import MailboxChecker
from mailbox_core.probe import ProbeResult
from mailbox_core.schemas import MailboxPublic

RESULTS_KEY = "mailboxes.test_results"
REPORT_KEY = "mailboxes.check_report"
#: How many of the checks still running the progress line names.
NAMED = 3


@dataclass(frozen=True)
class Failure:
    """One failed check as the report lists it (no secrets: name, step and message)."""

    mailbox_id: int
    name: str
    step: str
    message: str


@dataclass(frozen=True)
class Report:
    """The end of a run of checks: a headline and every failure."""

    label: str
    failures: tuple[Failure, ...]


def waiting_text(running: list[tuple[MailboxPublic, float]]) -> str:
    """ "waiting for: Stalled server, 8 s; Slow one, 3 s (and 2 more)"."""
    if not running:
        return ""
    named = "; ".join(f"{m.name}, {seconds:.0f} s" for m, seconds in running[:NAMED])
    more = f" (and {len(running) - NAMED} more)" if len(running) > NAMED else ""
    return f"waiting for: {named}{more}"


def _run(
    verb: str,
    noun: str,
    checker: MailboxChecker,
    mailbox_ids: list[int] | None,
    actor: Actor,
) -> tuple[dict[int, tuple[str, ProbeResult]], Report]:
    """Run the checks under a status box with one progress bar; returns results and report."""
    results: dict[int, tuple[str, ProbeResult]] = {}
    running_label = {"Checked": "Checking", "Tested": "Testing"}.get(verb, verb)
    with st.status(f"{running_label} {noun}…", expanded=True) as status:
        bar = st.progress(0.0, text="Starting…")
        last = ""

        def progress(done: int, total: int, mailbox: MailboxPublic, result: ProbeResult) -> None:
            nonlocal last
            results[mailbox.id] = (mailbox.name, result)
            last = f"{done:,} of {total:,} · {'✅' if result.ok else '❌'} {mailbox.name}"
            bar.progress(done / total, text=last)

        def waiting(done: int, total: int, running: list[tuple[MailboxPublic, float]]) -> None:
            head = last or f"0 of {total:,}"
            bar.progress(done / total, text=f"{head} · {waiting_text(running)}")

        checker.check_many(mailbox_ids, actor=actor, on_progress=progress, on_wait=waiting)
        report = _report(verb, noun, results)
        if not results:
            bar.progress(1.0, text="Nothing to check.")
        status.update(label=report.label, state="error" if report.failures else "complete")
        show_failures(report)
    return results, report


def _report(verb: str, noun: str, results: dict[int, tuple[str, ProbeResult]]) -> Report:
    failures = tuple(
        _failure(mailbox_id, name, result)
        for mailbox_id, (name, result) in sorted(results.items())
        if not result.ok
    )
    ok = len(results) - len(failures)
    label = f"{verb} {len(results):,} {noun}: {ok:,} OK, {len(failures):,} failing."
    return Report(label, failures)


def _failure(mailbox_id: int, name: str, result: ProbeResult) -> Failure:
    step = result.failed_step
    hint = f" — {step.hint}" if step and step.hint else ""
    return Failure(mailbox_id, name, step.name if step else "Check", result.summary + hint)


def show_failures(report: Report) -> None:
    """The failures of a run, each with its step and message (nothing when all passed)."""
    if not report.failures:
        return
    rows = [
        {"Mailbox": f.name, "ID": f.mailbox_id, "Step": f.step, "Message": f.message}
        for f in report.failures
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={"Message": st.column_config.TextColumn(width="large")},
    )


def check_all(checker: MailboxChecker, actor: Actor) -> None:
    """Check every active mailbox; the report stays until the next check."""
    _, report = _run("Checked", "active mailboxes", checker, None, actor)
    st.session_state[REPORT_KEY] = report


def last_report() -> None:
    """The last Check all's report, folded, on later runs of the page."""
    report: Report | None = st.session_state.get(REPORT_KEY)
    if report is None:
        return
    with st.expander(report.label, icon=":material/network_check:", expanded=False):
        show_failures(report)
        if not report.failures:
            st.caption("Every check passed.")


def test_selected(checker: MailboxChecker, mailbox_ids: list[int], actor: Actor) -> None:
    """Test the chosen mailboxes concurrently; results (no secrets) are kept to show."""
    results, _ = _run("Tested", "mailboxes", checker, mailbox_ids, actor)
    st.session_state[RESULTS_KEY] = results


def stored_results() -> dict[int, tuple[str, ProbeResult]]:
    results: dict[int, tuple[str, ProbeResult]] = st.session_state.get(RESULTS_KEY) or {}
    return results


#: Results shown one by one; a bigger run shows its failures as one table.
SHOWN_ONE_BY_ONE = 20


def show_results(show: Callable[[ProbeResult, str], None]) -> None:
    """The last Test connection's results under the buttons, failures first."""
    results = stored_results()
    ordered = sorted(results.items(), key=lambda item: (item[1][1].ok, item[0]))
    if len(ordered) > SHOWN_ONE_BY_ONE:
        report = _report("Tested", "mailboxes", results)
        st.caption(report.label)
        show_failures(report)
        return
    for mailbox_id, (name, result) in ordered:
        show(result, f"{name} (ID {mailbox_id})")
