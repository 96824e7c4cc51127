"""Showing a connection test: a headline, then each step with its time and hint."""

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
    """Render one result: success or error headline, warnings, and the step table."""
    if result.ok:
        st.success(f"{title}: {result.summary}", icon=":material/check_circle:")
    else:
        failed = result.failed_step
        hint = f" — {failed.hint}" if failed and failed.hint else ""
        st.error(f"{title}: {result.summary}{hint}", icon=":material/error:")
    for step in result.warnings:
        st.warning(f"{step.detail}. {step.hint}", icon=":material/warning:")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Step": f"{ICONS[s.status]} {s.name}",
                    "Result": s.status.value,
                    "Time (ms)": s.elapsed_ms,
                    "Detail": s.detail,
                    "Hint": s.hint,
                }
                for s in result.steps
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={"Time (ms)": st.column_config.NumberColumn(format="%.0f")},
    )
