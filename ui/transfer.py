"""Export buttons and the import flow (upload → preview → import) on the Mailboxes page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mailbox_core.errors import MailboxCoreError
from mailbox_core.listing import MailboxFilter
from mailbox_core.schemas import MailboxPublic
from mailbox_core.service import MailboxService
from mailbox_core.transfer import ImportFailed, read_rows, to_csv, to_json
from ui import access, runtime
from ui.navigation import flash, guarded

UPLOAD_KEY = "mailboxes.import_file"
ROUND_KEY = "mailboxes.import_round"


def _upload_key() -> str:
    # Streamlit cannot clear a file_uploader, and its value (the file, passwords and all)
    # stays in the session while it exists; after an import a fresh key replaces it, and
    # Streamlit drops the old widget's state at the end of that run.
    # tests/app/test_import_page.py pins that no secret is left in the session.
    round_ = st.session_state.get(ROUND_KEY, 0)
    return f"{UPLOAD_KEY}.{round_}" if round_ else UPLOAD_KEY


def export_buttons(service: MailboxService, where: MailboxFilter, matching: int) -> None:
    """Download the settings of the mailboxes the view matches, as CSV or JSON.

    The file is made when the button is pressed (a callable), not on every run of the
    page; secrets are never part of an export.
    """

    def rows() -> list[MailboxPublic]:
        return service.list_mailboxes(where)

    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        st.download_button(
            "Export CSV",
            lambda: to_csv(rows()),
            "mailboxes.csv",
            "text/csv",
            icon=":material/download:",
        )
        st.download_button(
            "Export JSON",
            lambda: to_json(rows()),
            "mailboxes.json",
            "application/json",
            icon=":material/download:",
        )
        noun = "mailbox" if matching == 1 else "mailboxes"
        st.caption(f"The {matching:,} {noun} this view matches, without secrets.")


def import_section(service: MailboxService) -> None:
    """Upload a file, see what it would create (or every problem), then import it all."""
    with st.expander("Import mailboxes from CSV or JSON"):
        st.caption(
            "Same rules as the form; all rows are imported or none. Columns are the "
            "field names of an export; password, client_secret and refresh_token "
            "may be included and are encrypted at once."
        )
        upload = st.file_uploader("Import file", type=["csv", "json"], key=_upload_key())
        if upload is None:
            return
        try:
            plan = service.plan_import(read_rows(upload.getvalue(), upload.name))
        except MailboxCoreError as exc:
            st.error(str(exc))
            return
        if not plan.ok:
            st.error(f"Nothing can be imported: {len(plan.problems)} problems.")
            st.dataframe(
                pd.DataFrame(
                    [
                        {"Row": p.row, "Field": p.error.label, "Problem": p.error.message}
                        for p in plan.problems
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
            return
        st.dataframe(pd.DataFrame(plan.preview()), hide_index=True, width="stretch")
        # No callback arguments: Streamlit keeps them with the widget for the session,
        # so rows (with their passwords) or the service (with its keys) would stay there.
        st.button(f"Import {len(plan.rows)} mailboxes", type="primary", on_click=_import)


@guarded
def _import() -> None:
    upload = st.session_state.get(_upload_key())
    if upload is None:
        flash("The import file is gone; upload it again.", error=True)
        return
    try:
        rows = read_rows(upload.getvalue(), upload.name)
        created = runtime.service().import_mailboxes(rows, actor=access.current_actor())
    except ImportFailed as exc:
        flash(str(exc), error=True)
    else:
        flash(f"Imported {len(created)} mailboxes.")
    finally:
        st.session_state.pop(_upload_key(), None)
        st.session_state[ROUND_KEY] = st.session_state.get(ROUND_KEY, 0) + 1
