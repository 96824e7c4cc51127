"""The egress guard: which addresses a user-aimed connection test may reach.

A mailbox's host is typed by a person, so a connection test is a way to make this server
dial anything: its own loopback services, the cloud metadata endpoint, the office LAN.
The recipe, in the order the probe follows it:

1. ``normalise_host`` the typed host (brackets, trailing dot, IDNA, case) and refuse numeric
   spellings such as ``0x7f000001`` that resolvers quietly turn into an address.
2. Resolve once, through the injected resolver.
3. Unwrap IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo).
4. Classify every answer; one refused answer refuses the host.
5. Connect only to the addresses checked here, never resolve again: a second lookup is
   what DNS rebinding exploits. TLS (SNI, certificate check) still uses the typed host name.

Nothing here opens a socket; resolver errors (``socket.gaierror``) pass through untouched.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from mailbox_core.errors import ConfigurationError, MailboxCoreError

#: ``socket.getaddrinfo(host, port, type=SOCK_STREAM)`` in shape:
#: (family, type, proto, canonname, sockaddr) tuples.
Resolver = Callable[[str, int], list[tuple[Any, ...]]]
IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

PRIVATE = "a private address"
RESERVED = "a reserved address"
NOT_GLOBAL = "not a globally routable address"
NOT_AN_ADDRESS = "not an IP address"
NUMERIC_SPELLING = "a numeric address in a non-standard spelling"
INVALID_NAME = "not a valid host name"

ALLOW_HINT = "An admin can allow this network with MAILBOX_EGRESS_ALLOW."
NUMERIC_HINT = "Write the address as four decimal numbers, e.g. 192.0.2.10."
NAME_HINT = "Enter a host name such as imap.example.com, or an IP address."


class EgressMode(StrEnum):
    """How far connection tests may reach."""

    PUBLIC = "public"  # only globally routable addresses
    PRIVATE = "private"  # also RFC 1918, shared 100.64/10, ULA and site-local (on-premises)
    OFF = "off"  # nothing refused (local mode)


class EgressRefused(MailboxCoreError):
    """The host, or one address it resolves to, is off limits under the egress policy."""

    def __init__(self, host: str, address: str | None, reason: str, hint: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        self.hint = hint
        subject = address if address is not None else (host.strip() or '""')
        super().__init__(f"Egress refused: {subject} is {reason}.")


def _networks(*texts: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(text) for text in texts)


# First match wins: metadata and the other always-refused kinds come before the private
# ranges because 100.100.100.200 and fd00:ec2::254 sit inside them, and PRIVATE mode must
# still refuse those.
_CATEGORIES: tuple[tuple[str, tuple[IPNetwork, ...]], ...] = (
    (
        "the cloud metadata address",
        # 168.63.129.16 is Azure's WireServer: a public-looking address, same risk.
        _networks(
            "169.254.169.254/32", "100.100.100.200/32", "168.63.129.16/32", "fd00:ec2::254/128"
        ),
    ),
    ("an unspecified address", _networks("0.0.0.0/32", "::/128")),
    ("a broadcast address", _networks("255.255.255.255/32")),
    ("a loopback address (this server itself)", _networks("127.0.0.0/8", "::1/128")),
    ("a link-local address", _networks("169.254.0.0/16", "fe80::/10")),
    ("a multicast address", _networks("224.0.0.0/4", "ff00::/8")),
    (
        RESERVED,
        _networks(
            "0.0.0.0/8",  # "this network" (RFC 1122): never a remote server
            "240.0.0.0/4",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "198.18.0.0/15",
            "2001:db8::/32",
            "3fff::/20",  # IPv6 documentation since RFC 9637; Python 3.11 calls it global
            "100::/64",
        ),
    ),
    (
        PRIVATE,
        _networks(
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "fc00::/7",
            "fec0::/10",
        ),
    ),
)

# Translation prefixes are judged by the IPv4 address they carry. The stdlib's own view of
# them is no help: it calls NAT64 reserved (it lies in ::/8), Teredo not global, and 6to4
# private since 3.13 — trusting it would refuse every IPv6-only host behind DNS64.
_NAT64 = _networks("64:ff9b::/96", "64:ff9b:1::/48")
_TRANSLATION = (*_NAT64, *_networks("2002::/16", "2001::/32"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

# The WHATWG URL standard's "ends in a number": inet_aton-style resolvers read such a host
# as an IPv4 address in whatever base or dot count it is written, so only one spelling passes.
_NUMBER = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")


@dataclass(frozen=True)
class EgressPolicy:
    """Where connection tests may go: a mode plus networks an admin allowed explicitly."""

    mode: EgressMode = EgressMode.OFF
    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, mode: str, allow: str) -> EgressPolicy:
        """Build a policy from the MAILBOX_EGRESS and MAILBOX_EGRESS_ALLOW texts."""
        return cls(mode=_parse_mode(mode), allow=_parse_allow(allow))

    def refusal(self, address: str) -> str | None:
        """Why a connection to ``address`` is refused, or None when it may go ahead."""
        if self.mode is EgressMode.OFF:
            return None
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return NOT_AN_ADDRESS  # fail closed on whatever an odd resolver hands back
        for form in _forms(ip):
            reason = self._form_refusal(form)
            if reason is not None:
                return reason
        return None

    def resolve(self, host: str, port: int, resolver: Resolver) -> list[tuple[Any, ...]]:
        """Resolve ``host`` once and return the addrinfo entries a probe may dial."""
        answers = resolver(normalise_host(host), port)
        for answer in answers:
            address = str(answer[4][0])
            reason = self.refusal(address)
            if reason is not None:
                raise EgressRefused(host, address, reason, ALLOW_HINT)
        return list(dict.fromkeys(answers))

    def _form_refusal(self, ip: IPAddress) -> str | None:
        if _within(ip, self.allow):
            return None
        reason = _category(ip)
        if reason == PRIVATE and self.mode is EgressMode.PRIVATE:
            return None
        return reason


#: Local mode's policy: refuses nothing but odd spellings (the default of every caller).
UNGUARDED = EgressPolicy(EgressMode.OFF)


def normalise_host(host: str) -> str:
    """The host as the resolver should see it; refuses spellings that hide an IPv4 address."""
    text = _bare(host)
    if not text:
        raise EgressRefused(host, None, INVALID_NAME, NAME_HINT)
    if ":" in text:
        return _ipv6_literal(host, text)
    if _NUMBER.fullmatch(text.rsplit(".", 1)[-1]):
        return _dotted_quad(host, text)
    return text.lower()


def _bare(host: str) -> str:
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text.isascii():
        # Before the numeric check: IDNA maps full-width digits and ideographic dots
        # ("127。0。0。1") to ASCII ones.
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise EgressRefused(host, None, INVALID_NAME, NAME_HINT) from exc
    return text.removesuffix(".")


def _ipv6_literal(host: str, text: str) -> str:
    # Only IPv6 literals may hold a colon; keep the zone (%eth0) as written, case and all.
    try:
        return str(IPv6Address(text))
    except ValueError as exc:
        raise EgressRefused(host, None, INVALID_NAME, NAME_HINT) from exc


def _dotted_quad(host: str, text: str) -> str:
    # ipaddress accepts exactly four decimal octets without leading zeros (since 3.9.5),
    # which is the one spelling every resolver reads the same way.
    try:
        return str(IPv4Address(text))
    except ValueError as exc:
        raise EgressRefused(host, None, NUMERIC_SPELLING, NUMERIC_HINT) from exc


def _forms(ip: IPAddress) -> tuple[IPAddress, ...]:
    """Every address a connection to ``ip`` may really reach, embedded IPv4 first."""
    if isinstance(ip, IPv4Address):
        return (ip,)
    if ip.ipv4_mapped is not None:
        # The kernel sends this over IPv4; the IPv6 spelling is only a disguise.
        return (ip.ipv4_mapped,)
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # :: and ::1 are themselves, not IPv4
        return (IPv4Address(int(ip)),)
    return (*_embedded_ipv4(ip), ip)


def _embedded_ipv4(ip: IPv6Address) -> tuple[IPv4Address, ...]:
    if ip.teredo is not None:
        return ip.teredo  # (server, client)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if _within(ip, _NAT64):
        return (IPv4Address(int(ip) & 0xFFFFFFFF),)
    return ()


def _category(ip: IPAddress) -> str | None:
    """The kind of address ``ip`` is when that kind is refused in some mode, else None."""
    for reason, networks in _CATEGORIES:
        if _within(ip, networks):
            return reason
    if _within(ip, _TRANSLATION):
        return None  # see _TRANSLATION: the embedded IPv4, classified separately, decides
    if ip.is_reserved:
        return RESERVED
    if not ip.is_global:
        return NOT_GLOBAL
    return None


def _within(ip: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    # Membership across IP versions is simply False, so mixed lists need no filtering.
    return any(ip in network for network in networks)


def _parse_mode(text: str) -> EgressMode:
    value = text.strip().lower() or EgressMode.OFF.value
    try:
        return EgressMode(value)
    except ValueError as exc:
        choices = ", ".join(mode.value for mode in EgressMode)
        raise ConfigurationError(f"MAILBOX_EGRESS must be one of {choices}; got {text!r}.") from exc


def _parse_allow(text: str) -> tuple[IPNetwork, ...]:
    entries = (entry.strip() for entry in text.split(","))
    return tuple(_parse_network(entry) for entry in entries if entry)


def _parse_network(entry: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(entry)
    except ValueError as exc:
        raise ConfigurationError(
            f"MAILBOX_EGRESS_ALLOW has {entry!r}, which is not a network such as "
            f"10.20.0.0/16 or a single address ({exc})."
        ) from exc
