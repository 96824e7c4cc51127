"""The error tree in errors.py's docstring names every error the core raises on purpose."""

from __future__ import annotations

import importlib
import pkgutil

import mailbox_core
from mailbox_core import errors


def subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= subclasses(sub)
    return found


def test_every_core_error_is_in_the_documented_tree() -> None:
    for module in pkgutil.walk_packages(mailbox_core.__path__, "mailbox_core."):
        if ".migrations" not in module.name and module.name != "mailbox_core.__main__":
            importlib.import_module(module.name)
    names = {cls.__name__ for cls in subclasses(errors.MailboxCoreError)}
    assert names, "no subclasses found"
    doc = errors.__doc__ or ""
    missing = sorted(name for name in names if f"── {name}" not in doc)
    assert missing == []
