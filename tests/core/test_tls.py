"""Certificate name matching, certificate facts and the TLS session cache."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from mailbox_core.tls import (
    SessionCache,
    certificate_names,
    client_context,
    name_matches,
)
from tests.support.tls import make_certificate


@pytest.mark.parametrize(
    "host, names, matches",
    [
        ("mail.example.com", ["mail.example.com"], True),
        ("MAIL.Example.COM", ["mail.example.com"], True),
        ("mail.example.com.", ["mail.example.com"], True),
        ("mail.example.com", ["Mail.Example.Com."], True),
        ("mail.example.com", ["other.example.com", "mail.example.com"], True),
        ("mail.example.com", ["example.com"], False),
        ("mail.example.com", [], False),
        # One wildcard, the whole left-most label, standing for exactly one label.
        ("mail.example.com", ["*.example.com"], True),
        ("a.mail.example.com", ["*.example.com"], False),
        ("example.com", ["*.example.com"], False),
        (".example.com", ["*.example.com"], False),
        ("mail.example.com", ["m*.example.com"], False),
        ("mail.example.com", ["*ail.example.com"], False),
        ("mail.example.com", ["mail.*.com"], False),
        ("mail.example.com", ["*.*.com"], False),
        ("mail.example.com", ["*"], False),
        ("example.com", ["*.com"], False),  # no wildcard over a whole top-level domain
        ("mail.example.org", ["*.example.com"], False),
        # IP addresses match only the same address, never a wildcard.
        ("127.0.0.1", ["127.0.0.1"], True),
        ("127.0.0.1", ["127.0.0.2", "localhost"], False),
        ("127.0.0.1", ["*.0.0.1"], False),
        ("::1", ["0:0:0:0:0:0:0:1"], True),
        ("[::1]", ["::1"], True),
        ("localhost", ["127.0.0.1"], False),
    ],
)
def test_name_matches(host: str, names: list[str], matches: bool) -> None:
    assert name_matches(host, names) is matches


def test_certificate_names_lists_dns_names_then_addresses(tmp_path: Path) -> None:
    cert, _ = make_certificate(tmp_path, "c", ["mail.example.com", "127.0.0.1", "*.example.net"])
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    assert certificate_names(der) == ["mail.example.com", "*.example.net", "127.0.0.1"]
    assert certificate_names(None) == []


def test_the_same_trust_setting_shares_one_context() -> None:
    assert client_context(None, False) is client_context(None, False)
    assert client_context(None, True) is not client_context(None, False)
    assert client_context(None, True).verify_mode is ssl.CERT_NONE
    assert client_context(None, False).verify_mode is ssl.CERT_REQUIRED


class _Session:
    """Stands in for an ssl.SSLSession (which only a handshake can make)."""


def test_the_session_cache_keys_on_context_host_and_port() -> None:
    cache = SessionCache()
    verifying, lenient = client_context(None, False), client_context(None, True)
    session = _Session()
    cache.put(verifying, "Mail.Example.com", 993, session)  # type: ignore[arg-type]
    assert cache.get(verifying, "mail.example.com", 993) is session
    assert cache.get(verifying, "mail.example.com", 995) is None
    assert cache.get(lenient, "mail.example.com", 993) is None, "another trust setting"
    cache.clear()
    assert cache.get(verifying, "mail.example.com", 993) is None


def test_the_session_cache_is_bounded_and_forgets_the_least_recent() -> None:
    cache = SessionCache(size=2)
    context = client_context(None, False)
    sessions = [_Session() for _ in range(3)]
    cache.put(context, "a.example.com", 993, sessions[0])  # type: ignore[arg-type]
    cache.put(context, "b.example.com", 993, sessions[1])  # type: ignore[arg-type]
    cache.put(context, "a.example.com", 993, sessions[0])  # type: ignore[arg-type]
    cache.put(context, "c.example.com", 993, sessions[2])  # type: ignore[arg-type]
    assert cache.get(context, "a.example.com", 993) is sessions[0]
    assert cache.get(context, "b.example.com", 993) is None
    assert cache.get(context, "c.example.com", 993) is sessions[2]


def test_a_kept_session_is_refreshed_only_when_missing_or_old() -> None:
    context = client_context(None, False)
    fresh, stale = SessionCache(), SessionCache(refresh_after=-1)
    for cache in (fresh, stale):
        assert cache.wants(context, "mail.example.com", 993)
        cache.put(context, "mail.example.com", 993, _Session())  # type: ignore[arg-type]
    assert not fresh.wants(context, "mail.example.com", 993)
    assert fresh.wants(context, "mail.example.com", 995)
    assert stale.wants(context, "mail.example.com", 993)
