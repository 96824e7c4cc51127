"""AppTest helpers: drive the pages by their labels, as a person would."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from mailbox_core.schemas import LABELS
from tests.conftest import ROOT

ENTRYPOINT = str(ROOT / "streamlit_app.py")
WIDGET_KINDS = ("text_input", "number_input", "selectbox", "radio", "toggle", "text_area")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty embedded deployment: SQLite and key file under a temp dir."""
    directory = tmp_path / "data"
    monkeypatch.setenv("MAILBOX_DATA_DIR", str(directory))
    monkeypatch.delenv("MAILBOX_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILBOX_ENCRYPTION_KEYS", raising=False)
    return directory


@pytest.fixture
def app(data_dir: Path) -> Iterator[AppTest]:
    """The app, started on the Mailboxes page."""
    at = AppTest.from_file(ENTRYPOINT, default_timeout=30)
    at.run()
    assert not at.exception
    yield at


def widget(at: AppTest, label: str) -> Any:
    """The one visible widget with this label."""
    found = [w for kind in WIDGET_KINDS for w in getattr(at, kind) if w.label == label]
    assert len(found) == 1, f"expected one widget labelled {label!r}, found {len(found)}"
    return found[0]


def labels(at: AppTest) -> list[str]:
    """Labels of the form's fields, in page order."""
    order = list(LABELS.values())
    shown = {w.label for kind in WIDGET_KINDS for w in getattr(at, kind)}
    return [label for label in order if label in shown]


def set_field(at: AppTest, field: str, value: Any) -> None:
    """Answer one field and rerun, like a person leaving the field."""
    target = widget(at, LABELS[field])
    if (
        hasattr(target, "input")
        and not isinstance(value, bool)
        and target.type in {"text_input", "text_area"}
    ):
        target.input(value)
    else:
        target.set_value(value)
    at.run()
    assert not at.exception, at.exception


def fill(at: AppTest, values: dict[str, Any]) -> None:
    """Answer fields in form order (so conditional fields exist when their turn comes)."""
    for field in LABELS:
        if field in values:
            set_field(at, field, values[field])


def button(at: AppTest, label: str) -> Any:
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}"
    return found[0]


def open_new_mailbox(at: AppTest) -> None:
    button(at, "New Mailbox").click()
    at.run()
    assert [t.value for t in at.title] == ["New Mailbox"]


def press_ok(at: AppTest) -> None:
    button(at, "OK").click()
    at.run()
    assert not at.exception, at.exception


def count_rows(data_dir: Path) -> int:
    database = data_dir / "mailboxes.db"
    if not database.exists():
        return 0
    with sqlite3.connect(database) as conn:
        return int(conn.execute("SELECT count(*) FROM mailbox").fetchone()[0])


def raw_database_bytes(data_dir: Path) -> bytes:
    """The SQLite file and its WAL, as stored on disk."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("mailboxes.db*")))
