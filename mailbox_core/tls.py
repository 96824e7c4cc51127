"""Client TLS contexts (one per trust setting, reused), resumable sessions, certificate facts."""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from collections import OrderedDict
from functools import lru_cache

from cryptography import x509


@lru_cache(maxsize=8)
def client_context(ca_file: str | None = None, allow_self_signed: bool = False) -> ssl.SSLContext:
    """A verifying context (system CAs plus ``ca_file``), or one that accepts self-signed.

    imaplib.IMAP4_SSL / poplib.POP3_SSL without an explicit context do NOT verify
    certificates: always pass one of these.
    """
    if allow_self_signed:
        # The chain is not checked, but the host name still is (see name_matches).
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context()
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


_Key = tuple[ssl.SSLContext, str, int]


class SessionCache:
    """The last TLS session per (context, host, port), so the next handshake resumes it.

    Check all tests many mailboxes on one host (imap.gmail.com, outlook.office365.com): a
    resumed handshake skips the certificate and its signature checks on both sides. The
    context is part of the key because a session is only valid with the context (the trust
    setting) that verified it; bounded, and safe to share between threads.
    """

    def __init__(self, size: int = 256, refresh_after: float = 60.0) -> None:
        self.size = size
        self.refresh_after = refresh_after
        self._sessions: OrderedDict[_Key, tuple[ssl.SSLSession, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, context: ssl.SSLContext, host: str, port: int) -> ssl.SSLSession | None:
        with self._lock:
            entry = self._sessions.get((context, host.lower(), port))
        return entry[0] if entry else None

    def wants(self, context: ssl.SSLContext, host: str, port: int) -> bool:
        """Whether a new session is worth keeping: none is kept, or the kept one is old.

        Reading a connection's session copies it, certificates and all; a kept session
        that was just resumed still works, so most connections of a Check all skip that.
        """
        with self._lock:
            entry = self._sessions.get((context, host.lower(), port))
        return entry is None or time.monotonic() - entry[1] > self.refresh_after

    def put(self, context: ssl.SSLContext, host: str, port: int, session: ssl.SSLSession) -> None:
        with self._lock:
            key = (context, host.lower(), port)
            self._sessions[key] = (session, time.monotonic())
            self._sessions.move_to_end(key)
            while len(self._sessions) > self.size:
                self._sessions.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()


#: The process's sessions: shared by every probe, so Check all resumes across mailboxes.
sessions = SessionCache()


def certificate_names(der: bytes | None) -> list[str]:
    """DNS names and IPs a certificate is valid for (SAN, else the common name)."""
    if not der:
        return []
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [
            str(a.value) for a in cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
        ]
    names: list[str] = san.get_values_for_type(x509.DNSName)
    return names + [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def name_matches(host: str, names: list[str]) -> bool:
    """RFC 6125 matching: exact names, or one wildcard that is the whole left-most label.

    A wildcard stands for exactly one label and needs two labels after it (``*.com`` is
    no certificate for ``example.com``); an IP address matches only the same address.
    """
    try:
        wanted_ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return any(_dns_match(name, host) for name in names)
    return any(_same_ip(name, wanted_ip) for name in names)


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == host:
        return True
    wildcard, _, suffix = pattern.partition(".")
    if wildcard != "*" or suffix.count(".") < 1 or "*" in suffix:
        return False
    label, _, rest = host.partition(".")
    return bool(label) and rest == suffix


def _same_ip(name: str, wanted: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(name) == wanted
    except ValueError:
        return False
