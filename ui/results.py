"""Showing a connection test: a headline, then each step with its time, detail and hint."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mailbox_core.probe import ProbeResult, StepStatus

ICONS = {
    StepStatus.PASSED: "✅",
    StepStatus.WARNING: "⚠️",
    StepStatus.FAILED: "❌",
    StepStatus.SKIPPED: "⏭️",
}


def show_probe(result: ProbeResult, title: str) -> None:
    """A passing test folds into one line (its steps inside); else headline, warnings, steps."""
    if result.ok and not result.warnings:
        with st.expander(f"{title}: {result.summary}", icon=":material/check_circle:"):
            steps_table(result)
        return
    if result.ok:
        st.success(f"{title}: {result.summary}", icon=":material/check_circle:")
    else:
        failed = result.failed_step
        hint = f" — {failed.hint}" if failed and failed.hint else ""
        st.error(f"{title}: {result.summary}{hint}", icon=":material/error:")
    for step in result.warnings:
        st.warning(f"{step.detail}. {step.hint}", icon=":material/warning:")
    steps_table(result)


def steps_table(result: ProbeResult) -> None:
    """Every step; a static table, so Detail and Hint wrap and show in full."""
    frame = pd.DataFrame(
        [
            {
                "Step": f"{ICONS[s.status]} {s.name}",
                "Result": s.status.value,
                "Time (ms)": f"{s.elapsed_ms:.0f}",
                "Detail": s.detail,
                "Hint": s.hint,
            }
            for s in result.steps
        ]
    )
    st.table(frame, hide_index=True)
