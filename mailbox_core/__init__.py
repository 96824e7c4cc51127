"""Mailbox Manager core: models, validation, secrets and storage. Never imports streamlit.

The names below are the package's public surface (tests/core/test_exported_members.py pins
it). They are imported on first use, so ``import mailbox_core.errors`` stays light and no
module of the package imports another through this file.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AccessDenied": "mailbox_core.access",
    "AccessPolicy": "mailbox_core.access",
    "Actor": "mailbox_core.access",
    "Permission": "mailbox_core.access",
    "Role": "mailbox_core.access",
    "Services": "mailbox_core.bootstrap",
    "open_services": "mailbox_core.bootstrap",
    "MailboxChecker": "mailbox_core.checks",
    "Settings": "mailbox_core.config",
    "load_settings": "mailbox_core.config",
    "read_secrets_file": "mailbox_core.config",
    "EgressMode": "mailbox_core.egress",
    "EgressPolicy": "mailbox_core.egress",
    "MailboxCoreError": "mailbox_core.errors",
    "ProbeResult": "mailbox_core.probe",
    "MailboxCreate": "mailbox_core.schemas",
    "MailboxPublic": "mailbox_core.schemas",
    "MailboxService": "mailbox_core.service",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mailbox_core' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
