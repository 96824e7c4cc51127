"""The import flow on the Mailboxes page: hostile files (issue 11 D4), secrets after it (D10)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest

from mailbox_core.schemas import LABELS, SECRET_FIELDS
from tests.app.conftest import button, count_rows
from tests.conftest import SIGN_IN_PATHS, mailbox_data
from tests.core.test_hardening_input import HOSTILE_FILES, HOSTILE_IDS

UPLOADER = "mailboxes.import_file"
NEW_MAILBOX = "pages/new_mailbox.py"


def _texts(value: Any, seen: set[int]) -> Iterator[str]:
    """Every piece of text reachable from a session value (bytes of uploads included)."""
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _texts(k, seen)
            yield from _texts(v, seen)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _texts(item, seen)
    else:
        yield repr(value)
        if isinstance(value, io.BytesIO):  # an UploadedFile: the file's bytes
            yield value.getvalue().decode("utf-8", "replace")
        if isinstance(value, SecretStr):
            yield value.get_secret_value()


def places_holding(at: AppTest, secret: str) -> list[str]:
    """Where in the session or the page ``secret`` can be found."""
    state = at._session_state._state
    places = {
        "session_state": at.session_state.to_dict(),
        # Callback arguments live here for the whole session, not in to_dict().
        "widget metadata": [
            (m.callback_args, m.callback_kwargs)
            for m in state._new_widget_state.widget_metadata.values()
        ],
        "elements": [str(node.proto) for node in at._tree if getattr(node, "proto", None)],
    }
    return [
        name for name, value in places.items() if any(secret in t for t in _texts(value, set()))
    ]


def upload(at: AppTest, content: bytes, name: str = "boxes.json") -> None:
    at.file_uploader(key=UPLOADER).set_value((name, content, "application/json"))
    at.run()
    assert not at.exception, at.exception


def import_buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.button if b.label.startswith("Import ")]


def test_import_leaves_no_secret_in_the_session_or_on_the_page(app: AppTest) -> None:
    rows = [mailbox_data("password"), mailbox_data("gmail")]
    secrets = [
        SIGN_IN_PATHS[p][f]
        for p in ("password", "gmail")
        for f in SECRET_FIELDS
        if f in SIGN_IN_PATHS[p]
    ]
    upload(app, json.dumps(rows).encode())
    button(app, "Import 2 mailboxes").click()
    app.run()
    assert app.success[0].value == "Imported 2 mailboxes."
    assert {s: places_holding(app, s) for s in secrets} == {s: [] for s in secrets}
    # The uploader starts afresh: no preview of the old file, nothing to import twice.
    assert import_buttons(app) == []
    app.run()
    assert {s: places_holding(app, s) for s in secrets} == {s: [] for s in secrets}
    app.switch_page(NEW_MAILBOX)
    app.run()
    assert not app.exception
    assert {s: places_holding(app, s) for s in secrets} == {s: [] for s in secrets}


def test_a_second_file_can_be_imported_after_the_first(app: AppTest, data_dir: Path) -> None:
    upload(app, json.dumps([mailbox_data("password")]).encode())
    button(app, "Import 1 mailboxes").click()
    app.run()
    uploader = app.get("file_uploader")[0]
    uploader.set_value(("more.json", json.dumps([mailbox_data("gmail")]).encode(), "text/json"))
    app.run()
    button(app, "Import 1 mailboxes").click()
    app.run()
    assert [s.value for s in app.success] == ["Imported 1 mailboxes."]
    assert count_rows(data_dir) == 2


@pytest.mark.parametrize(("case", "content", "named"), HOSTILE_FILES, ids=HOSTILE_IDS)
def test_hostile_file_is_a_message_on_the_page_not_a_crash(
    app: AppTest, data_dir: Path, case: str, content: bytes, named: str | tuple[int, str]
) -> None:
    upload(app, content, "hostile.json")
    if isinstance(named, str):
        assert named in app.error[0].value
    else:
        assert app.error[0].value.startswith("Nothing can be imported")
        problems = app.dataframe[-1].value
        row, field = named
        assert (problems.loc[0, "Row"], problems.loc[0, "Field"]) == (row, LABELS.get(field, field))
    assert import_buttons(app) == []
    assert count_rows(data_dir) == 0
