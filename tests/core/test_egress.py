"""The egress guard: host normalisation, address classes per mode, allow-lists, settings.

Every address reaches the guard through a fake resolver; nothing here resolves or dials,
because the point of the guard is that it refuses before anything is dialed.
"""

from __future__ import annotations

import socket
from ipaddress import ip_network
from typing import Any

import pytest

from mailbox_core.egress import EgressMode, EgressPolicy, EgressRefused, normalise_host
from mailbox_core.errors import ConfigurationError

PORT = 993
PUBLIC, PRIVATE, OFF = EgressMode.PUBLIC, EgressMode.PRIVATE, EgressMode.OFF

LOOPBACK = "a loopback address (this server itself)"
PRIVATE_ADDRESS = "a private address"
METADATA = "the cloud metadata address"
LINK_LOCAL = "a link-local address"
MULTICAST = "a multicast address"
UNSPECIFIED = "an unspecified address"
BROADCAST = "a broadcast address"
RESERVED = "a reserved address"
NOT_GLOBAL = "not a globally routable address"
NUMERIC = "a numeric address in a non-standard spelling"
INVALID = "not a valid host name"
ALLOWED = None


def addrinfo(address: str, port: int = PORT) -> tuple[Any, ...]:
    """One getaddrinfo entry, as socket.getaddrinfo(..., type=SOCK_STREAM) shapes it."""
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))


class FakeResolver:
    """Answers from a script, one list of addresses per call (the last repeats).

    Without a script it echoes the name it is given, as getaddrinfo does for an IP literal.
    """

    def __init__(self, *script: list[str]) -> None:
        self.script = script
        self.calls: list[tuple[str, int]] = []
        self.answered: list[str] = []

    def __call__(self, host: str, port: int) -> list[tuple[Any, ...]]:
        self.calls.append((host, port))
        step = min(len(self.calls), len(self.script)) - 1
        self.answered = self.script[step] if self.script else [host]
        return [addrinfo(address, port) for address in self.answered]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard is pure logic: a real lookup or socket from it would be a bug."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the egress guard touched the network")

    for name in ("getaddrinfo", "gethostbyname", "create_connection", "socket"):
        monkeypatch.setattr(socket, name, refuse)


# host, answers (None: the resolver echoes the literal), outcome in public, private, off.
ADDRESS_CASES: list[tuple[str, list[str] | None, str | None, str | None, str | None]] = [
    ("localhost", ["127.0.0.1", "::1"], LOOPBACK, LOOPBACK, ALLOWED),
    ("::1", None, LOOPBACK, LOOPBACK, ALLOWED),
    ("[::1]", None, LOOPBACK, LOOPBACK, ALLOWED),
    ("::ffff:127.0.0.1", None, LOOPBACK, LOOPBACK, ALLOWED),
    ("127.0.0.1", None, LOOPBACK, LOOPBACK, ALLOWED),
    ("10.0.0.1", None, PRIVATE_ADDRESS, ALLOWED, ALLOWED),
    ("172.16.5.4", None, PRIVATE_ADDRESS, ALLOWED, ALLOWED),
    ("192.168.1.1", None, PRIVATE_ADDRESS, ALLOWED, ALLOWED),
    ("100.64.0.1", None, PRIVATE_ADDRESS, ALLOWED, ALLOWED),
    ("fd12:3456::1", None, PRIVATE_ADDRESS, ALLOWED, ALLOWED),
    ("fec0::1", None, PRIVATE_ADDRESS, ALLOWED, ALLOWED),
    ("169.254.169.254", None, METADATA, METADATA, ALLOWED),
    ("fd00:ec2::254", None, METADATA, METADATA, ALLOWED),
    ("100.100.100.200", None, METADATA, METADATA, ALLOWED),
    ("168.63.129.16", None, METADATA, METADATA, ALLOWED),
    ("169.254.1.1", None, LINK_LOCAL, LINK_LOCAL, ALLOWED),
    ("fe80::1", None, LINK_LOCAL, LINK_LOCAL, ALLOWED),
    ("224.0.0.1", None, MULTICAST, MULTICAST, ALLOWED),
    ("ff02::1", None, MULTICAST, MULTICAST, ALLOWED),
    ("0.0.0.0", None, UNSPECIFIED, UNSPECIFIED, ALLOWED),
    ("::", None, UNSPECIFIED, UNSPECIFIED, ALLOWED),
    ("255.255.255.255", None, BROADCAST, BROADCAST, ALLOWED),
    ("240.0.0.1", None, RESERVED, RESERVED, ALLOWED),
    ("0.1.2.3", None, RESERVED, RESERVED, ALLOWED),
    ("192.0.0.9", None, RESERVED, RESERVED, ALLOWED),
    ("192.0.2.10", None, RESERVED, RESERVED, ALLOWED),
    ("198.18.0.1", None, RESERVED, RESERVED, ALLOWED),
    ("2001:db8::1", None, RESERVED, RESERVED, ALLOWED),
    ("100::1", None, RESERVED, RESERVED, ALLOWED),
    ("4000::1", None, RESERVED, RESERVED, ALLOWED),  # only the stdlib's reserved list has it
    ("2001:10::1", None, NOT_GLOBAL, NOT_GLOBAL, ALLOWED),
    ("93.184.215.14", None, ALLOWED, ALLOWED, ALLOWED),
    ("2606:4700::1111", None, ALLOWED, ALLOWED, ALLOWED),
    # IPv4 carried inside IPv6: the embedded address decides.
    ("::7f00:1", None, LOOPBACK, LOOPBACK, ALLOWED),  # IPv4-compatible 127.0.0.1
    ("64:ff9b::a00:1", None, PRIVATE_ADDRESS, ALLOWED, ALLOWED),  # NAT64 of 10.0.0.1
    ("64:ff9b::7f00:1", None, LOOPBACK, LOOPBACK, ALLOWED),
    ("64:ff9b:1::a9fe:a9fe", None, METADATA, METADATA, ALLOWED),  # local-use NAT64
    ("64:ff9b::5db8:d70e", None, ALLOWED, ALLOWED, ALLOWED),  # DNS64 of 93.184.215.14
    ("2002:a00:1::", None, PRIVATE_ADDRESS, ALLOWED, ALLOWED),  # 6to4 of 10.0.0.1
    ("2002:7f00:1::1", None, LOOPBACK, LOOPBACK, ALLOWED),
    # Teredo: server 65.54.227.120, client 10.0.0.1 and 127.0.0.1 (stored bit-inverted).
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", None, PRIVATE_ADDRESS, ALLOWED, ALLOWED),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", None, LOOPBACK, LOOPBACK, ALLOWED),
]


def _by_mode(refused: bool) -> list[Any]:
    rows = []
    for host, answers, *outcomes in ADDRESS_CASES:
        for mode, reason in zip((PUBLIC, PRIVATE, OFF), outcomes, strict=True):
            if (reason is not None) == refused:
                row = (host, answers, mode, reason) if refused else (host, answers, mode)
                rows.append(pytest.param(*row, id=f"{host}-{mode}"))
    return rows


@pytest.mark.parametrize(("host", "answers", "mode", "reason"), _by_mode(refused=True))
def test_refused_addresses_raise_naming_the_address_and_its_kind(
    host: str, answers: list[str] | None, mode: EgressMode, reason: str
) -> None:
    resolver = FakeResolver(answers) if answers else FakeResolver()
    with pytest.raises(EgressRefused) as caught:
        EgressPolicy(mode).resolve(host, PORT, resolver)
    assert caught.value.reason == reason
    assert caught.value.address == resolver.answered[0]
    assert caught.value.host == host
    assert str(caught.value) == f"Egress refused: {resolver.answered[0]} is {reason}."


@pytest.mark.parametrize(("host", "answers", "mode"), _by_mode(refused=False))
def test_allowed_addresses_come_back_to_be_dialed(
    host: str, answers: list[str] | None, mode: EgressMode
) -> None:
    resolver = FakeResolver(answers) if answers else FakeResolver()
    infos = EgressPolicy(mode).resolve(host, PORT, resolver)
    assert infos == [addrinfo(address) for address in resolver.answered]
    assert len(resolver.calls) == 1


NUMERIC_SPELLINGS = [
    "2130706433",
    "0x7f000001",
    "0X7F000001",
    "127.1",
    "0177.0.0.1",
    "127.0.0.01",
    "0x7f.1",
    "1.2.3",
    "10.0.0.1.5",
    "mail.example.123",
    "0x",
    "0x7f。1",  # an ideographic full stop is a dot to IDNA
    "０ｘ７ｆ.1",  # full-width digits become ASCII ones
]


@pytest.mark.parametrize("mode", list(EgressMode))
@pytest.mark.parametrize("host", NUMERIC_SPELLINGS)
def test_numeric_spellings_are_refused_in_every_mode_before_resolving(
    host: str, mode: EgressMode
) -> None:
    resolver = FakeResolver(["93.184.215.14"])
    with pytest.raises(EgressRefused) as caught:
        EgressPolicy(mode).resolve(host, PORT, resolver)
    assert caught.value.reason == NUMERIC
    assert caught.value.address is None
    assert caught.value.hint == "Write the address as four decimal numbers, e.g. 192.0.2.10."
    assert str(caught.value) == f"Egress refused: {host} is {NUMERIC}."
    assert resolver.calls == []


@pytest.mark.parametrize("host", ["", "   ", ".", "[]", "mail:example", "bücher..example"])
def test_hosts_that_are_no_name_are_refused_even_when_egress_is_off(host: str) -> None:
    resolver = FakeResolver(["93.184.215.14"])
    with pytest.raises(EgressRefused) as caught:
        EgressPolicy(OFF).resolve(host, PORT, resolver)
    assert caught.value.reason == INVALID
    assert resolver.calls == []


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("  Mail.Example.COM  ", "mail.example.com"),
        ("mail.example.com.", "mail.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("Bücher.Example.", "xn--bcher-kva.example"),
        ("ＭＡＩＬ.example", "mail.example"),
        ("[::1]", "::1"),
        ("[0:0:0:0:0:0:0:1]", "::1"),
        ("2606:4700:0:0:0:0:0:1111", "2606:4700::1111"),
        ("FE80::1%eth0", "fe80::1%eth0"),
        ("192.0.2.10", "192.0.2.10"),
        ("127。0。0。1", "127.0.0.1"),  # IDNA dots spell the canonical address, checked later
        ("mail.0x1g", "mail.0x1g"),  # not hex, so a name
    ],
)
def test_normalise_host_gives_the_name_the_resolver_sees(host: str, expected: str) -> None:
    assert normalise_host(host) == expected


def test_idna_name_reaches_the_resolver_encoded_without_its_trailing_dot() -> None:
    resolver = FakeResolver(["93.184.215.14"])
    EgressPolicy(PUBLIC).resolve("bücher.example.", PORT, resolver)
    assert resolver.calls == [("xn--bcher-kva.example", PORT)]


@pytest.mark.parametrize("mode", [PUBLIC, PRIVATE])
def test_one_refused_answer_refuses_the_host_and_names_that_answer(mode: EgressMode) -> None:
    resolver = FakeResolver(["93.184.215.14", "10.0.0.7", "127.0.0.1"])
    with pytest.raises(EgressRefused) as caught:
        EgressPolicy(mode).resolve("mixed.example", PORT, resolver)
    expected = "10.0.0.7" if mode is PUBLIC else "127.0.0.1"
    assert caught.value.address == expected


def test_rebinding_resolver_is_asked_once_and_only_its_first_answer_is_dialed() -> None:
    resolver = FakeResolver(["93.184.215.14"], ["127.0.0.1"])
    infos = EgressPolicy(PUBLIC).resolve("rebind.example", PORT, resolver)
    assert infos == [addrinfo("93.184.215.14")]
    assert resolver.calls == [("rebind.example", PORT)]


def test_duplicate_answers_are_dialed_once_in_resolver_order() -> None:
    resolver = FakeResolver(["2606:4700::1111", "93.184.215.14", "2606:4700::1111"])
    infos = EgressPolicy(PUBLIC).resolve("mail.example", PORT, resolver)
    assert infos == [addrinfo("2606:4700::1111"), addrinfo("93.184.215.14")]


def test_refusal_shows_the_address_as_the_resolver_returned_it() -> None:
    resolver = FakeResolver(["::ffff:127.0.0.1"])
    with pytest.raises(EgressRefused) as caught:
        EgressPolicy(PRIVATE).resolve("mapped.example", PORT, resolver)
    expected = "Egress refused: ::ffff:127.0.0.1 is a loopback address (this server itself)."
    assert str(caught.value) == expected


def test_private_address_in_public_mode_has_the_exact_message_and_hint() -> None:
    with pytest.raises(EgressRefused) as caught:
        EgressPolicy(PUBLIC).resolve("10.0.0.5", PORT, FakeResolver())
    assert str(caught.value) == "Egress refused: 10.0.0.5 is a private address."
    assert caught.value.hint == "An admin can allow this network with MAILBOX_EGRESS_ALLOW."


@pytest.mark.parametrize("mode", [PUBLIC, PRIVATE])
def test_an_answer_that_is_no_address_is_refused(mode: EgressMode) -> None:
    assert EgressPolicy(mode).refusal("mail.example") == "not an IP address"


@pytest.mark.parametrize(
    ("allow", "address", "reason"),
    [
        ("127.0.0.0/8", "127.0.0.1", ALLOWED),
        ("127.0.0.0/8", "::ffff:127.0.0.1", ALLOWED),
        ("127.0.0.0/8", "10.0.0.1", PRIVATE_ADDRESS),
        ("127.0.0.0/8", "::1", LOOPBACK),
        ("169.254.169.254", "169.254.169.254", ALLOWED),
        ("10.0.0.0/8", "64:ff9b::a00:1", ALLOWED),
        # Allowing the translator's prefix does not open the network behind it.
        ("64:ff9b::/96", "64:ff9b::a00:1", PRIVATE_ADDRESS),
    ],
)
def test_allow_list_admits_its_networks_in_public_mode_and_nothing_else(
    allow: str, address: str, reason: str | None
) -> None:
    assert EgressPolicy.parse("public", allow).refusal(address) == reason


@pytest.mark.parametrize(
    ("mode", "allow", "expected"),
    [
        ("PUBLIC", "", EgressPolicy(PUBLIC)),
        (" Private ", "", EgressPolicy(PRIVATE)),
        ("", "", EgressPolicy(OFF)),
        (
            "off",
            " 10.20.0.0/16 , 2001:db8::/32,,192.0.2.7 ",
            EgressPolicy(
                OFF,
                (ip_network("10.20.0.0/16"), ip_network("2001:db8::/32"), ip_network("192.0.2.7")),
            ),
        ),
    ],
)
def test_parse_reads_the_settings_text(mode: str, allow: str, expected: EgressPolicy) -> None:
    assert EgressPolicy.parse(mode, allow) == expected


@pytest.mark.parametrize(
    ("mode", "allow", "setting", "bad"),
    [
        ("strict", "", "MAILBOX_EGRESS", "'strict'"),
        ("public", "10.0.0.0/33", "MAILBOX_EGRESS_ALLOW", "'10.0.0.0/33'"),
        ("public", "10.0.0.0/8, 10.0.0.1/8", "MAILBOX_EGRESS_ALLOW", "'10.0.0.1/8'"),
        ("public", "mail.example", "MAILBOX_EGRESS_ALLOW", "'mail.example'"),
    ],
)
def test_parse_errors_name_the_setting_and_the_bad_value(
    mode: str, allow: str, setting: str, bad: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        EgressPolicy.parse(mode, allow)
    assert str(caught.value).split()[0] == setting
    assert bad in str(caught.value)
