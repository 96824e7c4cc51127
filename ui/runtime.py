"""App-side resources: the one place that reads st.secrets and caches the service."""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import streamlit as st

from mailbox_core.access import AccessPolicy
from mailbox_core.bootstrap import Services, open_services
from mailbox_core.checks import MailboxChecker
from mailbox_core.config import SETTINGS, Settings, load_settings
from mailbox_core.connect import ConnectService
from mailbox_core.monitoring import Monitor
from mailbox_core.service import MailboxService

T = TypeVar("T")

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


#: What one script run has read already (``one_run``); each session runs in its own thread.
_this_run = threading.local()


@contextmanager
def one_run() -> Iterator[None]:
    """Within the block (the entrypoint's whole run), settings and services are read once.

    The gate, the page and the service each ask for them, and every read asks the
    environment and Streamlit's secrets again (without a secrets file Streamlit looks for
    one on each access). Outside the block (a callback, a fragment's own rerun) every call
    reads afresh. Nothing is kept past the run: a changed environment or secrets file is
    seen by the next one.
    """
    earlier = getattr(_this_run, "memo", None)
    _this_run.memo = {} if earlier is None else earlier
    try:
        yield
    finally:
        _this_run.memo = earlier


def _once(name: str, read: Callable[[], T]) -> T:
    memo: dict[str, Any] | None = getattr(_this_run, "memo", None)
    if memo is None:
        return read()
    if name not in memo:
        memo[name] = read()
    found: T = memo[name]
    return found


def settings() -> Settings:
    """Settings from the environment and the `[mailbox]` table of Streamlit secrets."""
    return _once("settings", _read_settings)


def _read_settings() -> Settings:
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


#: One engine, secret box and token cache per configuration (the frozen Settings, keys
#: included: another key set is another service), for the whole process.
_opened: dict[Settings, Services] = {}
_opening = threading.Lock()


def _services_for(config: Settings) -> Services:
    # What st.cache_resource keeps, without its hashing on every call: a dict lookup.
    # Never mutated once opened; a failure is not kept.
    found = _opened.get(config)
    if found is None:
        with _opening:
            found = _opened.get(config)
            if found is None:
                found = _opened[config] = open_services(config)
    return found


def _services() -> Services:
    return _once("services", lambda: _services_for(settings()))


def service() -> MailboxService:
    """The mailbox service for the current configuration (may raise MailboxCoreError)."""
    return _services().mailboxes


def checker() -> MailboxChecker:
    """The connection tester for the current configuration (may raise MailboxCoreError)."""
    return _services().checker


def monitor() -> Monitor:
    """Scheduled checks, alerts and history for the current configuration."""
    return _services().monitor


def connect() -> ConnectService:
    """Connect account for the current configuration (may raise MailboxCoreError)."""
    return _services().connect
