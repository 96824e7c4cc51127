"""App-side resources: the one place that reads st.secrets and caches the service."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import streamlit as st

from mailbox_core.access import AccessPolicy
from mailbox_core.bootstrap import Services, open_services
from mailbox_core.checks import MailboxChecker
from mailbox_core.config import Settings, load_settings
from mailbox_core.connect import ConnectService
from mailbox_core.monitoring import Monitor
from mailbox_core.service import MailboxService

logging.basicConfig(
    level=os.environ.get("MAILBOX_LOG_LEVEL", "INFO"),
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)


def secrets() -> Mapping[str, Any]:
    """Streamlit's secrets as a plain mapping (empty without a secrets file)."""
    try:
        return st.secrets.to_dict()
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        return {}


def access_policy() -> AccessPolicy:
    """Roles and session age from the `[access]` secrets and the environment."""
    return AccessPolicy.load(os.environ, secrets())


def settings() -> Settings:
    """Settings from the environment and the `[mailbox]` table of Streamlit secrets."""
    return load_settings(os.environ, secrets())


@st.cache_resource(show_spinner=False)
def _services_for(config: Settings) -> Services:
    # One engine, secret box and token cache per configuration; cached, never mutated.
    return open_services(config)


def service() -> MailboxService:
    """The mailbox service for the current configuration (may raise MailboxCoreError)."""
    return _services_for(settings()).mailboxes


def checker() -> MailboxChecker:
    """The connection tester for the current configuration (may raise MailboxCoreError)."""
    return _services_for(settings()).checker


def monitor() -> Monitor:
    """Scheduled checks, alerts and history for the current configuration."""
    return _services_for(settings()).monitor


def connect() -> ConnectService:
    """Connect account for the current configuration (may raise MailboxCoreError)."""
    return _services_for(settings()).connect
