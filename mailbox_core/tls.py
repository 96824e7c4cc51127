"""Client TLS contexts (one per trust setting, reused) and certificate facts for hints."""

from __future__ import annotations

import ipaddress
import ssl
from functools import lru_cache

from cryptography import x509


@lru_cache(maxsize=8)
def client_context(ca_file: str | None = None, allow_self_signed: bool = False) -> ssl.SSLContext:
    """A verifying context (system CAs plus ``ca_file``), or one that accepts self-signed.

    imaplib.IMAP4_SSL / poplib.POP3_SSL without an explicit context do NOT verify
    certificates: always pass one of these.
    """
    if allow_self_signed:
        # The chain is not checked, but the host name still is (see check_host_name).
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context()
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


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
    """RFC 6125 matching, one left-most wildcard label at most."""
    try:
        wanted_ip = ipaddress.ip_address(host)
    except ValueError:
        wanted_ip = None
    for name in names:
        if wanted_ip is not None:
            try:
                if ipaddress.ip_address(name) == wanted_ip:
                    return True
            except ValueError:
                continue
            continue
        pattern, target = name.lower().rstrip("."), host.lower().rstrip(".")
        if pattern == target:
            return True
        if pattern.startswith("*.") and "." in target and target.split(".", 1)[1] == pattern[2:]:
            return True
    return False
