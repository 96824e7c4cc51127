"""The public surface of mailbox_core: what `from mailbox_core import …` offers, exactly."""

from __future__ import annotations

import pytest

import mailbox_core

EXPECTED = {
    "AccessDenied", "AccessPolicy", "Actor", "EgressMode", "EgressPolicy", "MailboxChecker",
    "MailboxCoreError", "MailboxCreate", "MailboxPublic", "MailboxService", "Permission",
    "ProbeResult", "Role", "Services", "Settings", "load_settings", "open_services",
    "read_secrets_file",
}  # fmt: skip


def test_all_is_the_public_surface() -> None:
    assert set(mailbox_core.__all__) == EXPECTED
    assert dir(mailbox_core) == sorted(EXPECTED)


def test_every_exported_name_resolves_to_what_its_module_defines() -> None:
    for name in mailbox_core.__all__:
        member = getattr(mailbox_core, name)
        assert getattr(member, "__name__", name) == name
        assert member.__module__.startswith("mailbox_core.")


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="nothing_here"):
        mailbox_core.nothing_here  # type: ignore[attr-defined]  # noqa: B018
