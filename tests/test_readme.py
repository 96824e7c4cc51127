"""The README's settings table is the list of settings config.py declares, no more, no less."""

from __future__ import annotations

import re

from mailbox_core.config import SETTINGS
from tests.conftest import ROOT


def test_the_settings_table_lists_every_declared_setting() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `(MAILBOX_[A-Z_]+)` \|", section, re.M)
    assert len(listed) == len(set(listed)), "a setting is listed twice"
    assert sorted(listed) == sorted(SETTINGS)
