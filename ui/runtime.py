"""App-side resources: the one place that reads st.secrets and caches the service."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import pickle
from collections.abc import Mapping
from typing import Any

import streamlit as st

from mailbox_core.access import AccessPolicy
from mailbox_core.bootstrap import Services, open_services
from mailbox_core.checks import MailboxChecker
from mailbox_core.config import SETTINGS, Settings, load_settings
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
    environment = tuple((name, os.environ.get(name)) for name in SETTINGS)
    try:
        table = st.secrets.get("mailbox") or {}
        auth = st.secrets.get("auth")
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        table, auth = {}, None
    mailbox = table.to_dict() if hasattr(table, "to_dict") else dict(table)
    # Of [auth], load_settings reads only whether it exists and its redirect_uri.
    sign_in = None if not auth else str(auth.get("redirect_uri") or "")
    return _settings_for(environment, json.dumps(mailbox, sort_keys=True, default=str), sign_in)


@functools.lru_cache(maxsize=16)
def _settings_for(
    environment: tuple[tuple[str, str | None], ...], mailbox_json: str, sign_in: str | None
) -> Settings:
    # Every run asks for the settings several times (gate, page, service): resolve each
    # configuration once, keyed by exactly what load_settings reads (the environment,
    # the [mailbox] table, whether [auth] exists and its redirect_uri).
    values = {name: value for name, value in environment if value is not None}
    auth = None if sign_in is None else {"redirect_uri": sign_in, "configured": True}
    secrets = {"mailbox": json.loads(mailbox_json), "auth": auth}
    return load_settings(values, secrets)


@functools.lru_cache(maxsize=16)
def _fingerprint(config: Settings) -> str:
    # Streamlit's own hashing walks the dataclass on every run; one digest of its pickle
    # (keys included, so another key set is another service) is enough.
    return hashlib.sha256(pickle.dumps(config)).hexdigest()


@st.cache_resource(show_spinner=False, hash_funcs={Settings: _fingerprint})
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
