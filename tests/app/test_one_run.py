"""One script run reads the settings once (ui.runtime.one_run), and the next run reads
them again: a changed environment is never hidden by what an earlier run read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from ui import runtime


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every time the settings are read from the environment and secrets."""
    found: list[Any] = []
    original = runtime._read_settings

    def counted() -> Any:
        found.append(settings := original())
        return settings

    monkeypatch.setattr(runtime, "_read_settings", counted)
    return found


def test_a_run_of_new_mailbox_reads_the_settings_once(app: AppTest, reads: list[Any]) -> None:
    app.switch_page("pages/new_mailbox.py").run()
    reads.clear()
    [kind] = [s for s in app.selectbox if s.label == "Mailbox Type"]
    kind.set_value("IMAP").run()
    assert not app.exception
    # The gate, the page, the service and the checker each ask; one read serves them.
    assert len(reads) == 1


def test_the_next_run_reads_a_changed_environment(
    app: AppTest, reads: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not [e for e in app.error]
    monkeypatch.setenv("MAILBOX_DATABASE_URL", "nosuchdb://nowhere")
    app.run()
    assert not app.exception
    assert any("MAILBOX_DATABASE_URL names a database" in e.value for e in app.error)
    monkeypatch.delenv("MAILBOX_DATABASE_URL")
    app.run()
    assert not [e for e in app.error]
    assert len(reads) >= 2


def test_outside_a_run_every_call_reads_afresh(reads: list[Any], data_dir: Path) -> None:
    runtime.settings()
    runtime.settings()
    assert len(reads) == 2
    with runtime.one_run():
        first = runtime.settings()
        assert runtime.settings() is first
    assert len(reads) == 3
