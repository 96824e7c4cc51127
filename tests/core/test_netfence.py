"""The network fence (tests/support/netfence.py): loopback works, anything else is refused."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support import netfence

FORBIDDEN = [
    "10.0.0.1",  # private
    "172.16.5.4",  # private
    "192.168.1.1",  # private
    "100.64.0.1",  # carrier-grade NAT
    "169.254.169.254",  # link-local: cloud metadata
    "93.184.215.14",  # public
    "0.0.0.0",  # "any": not a loopback destination
    "::ffff:10.0.0.1",  # a private address in IPv6 clothing
    "2001:db8::1",  # public-looking IPv6
]


def refused(pattern: str) -> list[netfence.Violation]:
    """Violations mentioning ``pattern``; clears them so the autouse fixture passes the test."""
    found = [v for v in netfence.violations() if pattern in v.destination]
    netfence.clear()
    return found


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        yield server


def test_the_fence_is_installed_for_the_suite() -> None:
    assert netfence.installed()
    assert os.environ[netfence.ENV_FLAG] == "1"
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0] == netfence.SITE_DIR


def test_loopback_connections_work(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=2) as client:
        peer, _ = listener.accept()
        with peer:
            client.sendall(b"ping")
            assert peer.recv(4) == b"ping"
    with socket.create_connection(("localhost", port), timeout=2):
        listener.accept()[0].close()
    with socket.socket() as raw:
        raw.settimeout(2)
        assert raw.connect_ex(("127.0.0.1", port)) == 0
        listener.accept()[0].close()
    assert netfence.violations() == []


@pytest.mark.parametrize("address", FORBIDDEN)
def test_non_loopback_connect_is_refused_before_any_packet(address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.05)
        with pytest.raises(netfence.NetworkFenceError, match="network fence"):
            sock.connect((address, 993))
        with pytest.raises(netfence.NetworkFenceError):
            sock.connect_ex((address, 993))
    assert [v.action for v in refused(address)] == ["connect", "connect_ex"]


def test_the_refusal_is_not_an_oserror_so_polite_handlers_do_not_hide_it() -> None:
    assert not issubclass(netfence.NetworkFenceError, OSError)
    with pytest.raises(netfence.NetworkFenceError):
        try:
            socket.create_connection(("10.0.0.1", 993), timeout=0.05)
        except OSError:  # what code under test does with "could not connect"
            pytest.fail("the refusal was caught as an OSError")
    assert refused("10.0.0.1")


def test_a_swallowed_refusal_is_still_recorded() -> None:
    with contextlib.suppress(Exception):  # as careless code under test would
        socket.create_connection(("192.168.1.1", 143), timeout=0.05)
    [violation] = refused("192.168.1.1")
    assert violation.where.startswith("tests/core/test_netfence.py:")


def test_udp_sendto_outside_loopback_is_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with pytest.raises(netfence.NetworkFenceError):
            sock.sendto(b"query", ("8.8.8.8", 53))
        with pytest.raises(netfence.NetworkFenceError):
            sock.sendto(b"query", 0, ("169.254.169.254", 53))
        with pytest.raises(netfence.NetworkFenceError):
            sock.connect(("8.8.8.8", 80))  # the "which interface am I on" trick
    assert len(refused("8.8.8.8")) == 2
    assert refused("169.254.169.254") == []  # cleared above with the rest


def test_udp_to_loopback_works() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        server.bind(("127.0.0.1", 0))
        server.settimeout(2)
        client.sendto(b"hello", server.getsockname())
        assert server.recvfrom(5)[0] == b"hello"


@pytest.mark.parametrize("name", ["imap.gmail.com", "outlook.office365.com", "pop.gmail.com"])
def test_resolving_a_real_name_is_refused_and_recorded(name: str) -> None:
    with pytest.raises(socket.gaierror, match="network fence"):
        socket.getaddrinfo(name, 993)
    with pytest.raises(socket.gaierror):
        socket.gethostbyname(name)
    with pytest.raises(socket.gaierror):
        socket.gethostbyname_ex(name)
    with pytest.raises(socket.gaierror), socket.socket() as sock:
        sock.connect((name, 993))  # a name handed to connect() is vetted too
    assert len(refused(name)) == 4


@pytest.mark.parametrize(
    "name",
    [
        "nothing.invalid",
        "mailbox-manager-test.invalid",
        "mail.test",
        "host.example",
        "example.com",
        "pop.example.com",
        "mail.example.org.",
        "EXAMPLE.NET",
    ],
)
def test_reserved_names_are_not_found_without_a_violation(name: str) -> None:
    with pytest.raises(socket.gaierror) as caught:
        socket.getaddrinfo(name, 110)
    assert caught.value.errno == socket.EAI_NONAME
    with pytest.raises(socket.gaierror):
        socket.gethostbyname(name)
    with pytest.raises(socket.gaierror):
        socket.create_connection((name, 110), timeout=0.05)
    assert netfence.violations() == []


@pytest.mark.parametrize("name", ["localhost", "localhost.", "LocalHost", "imap.localhost"])
def test_localhost_names_resolve_to_loopback(name: str) -> None:
    infos = socket.getaddrinfo(name, 993, type=socket.SOCK_STREAM)
    assert infos
    assert all(netfence.allowed_address(info[4]) for info in infos)
    assert netfence.allowed_address((socket.gethostbyname(name), 0))
    assert netfence.violations() == []


def test_ip_literals_pass_through_the_resolver() -> None:
    assert socket.getaddrinfo("10.0.0.1", 993)[0][4][0] == "10.0.0.1"  # connect() refuses it
    assert socket.gethostbyname("127.0.0.1") == "127.0.0.1"
    assert netfence.violations() == []


def test_allowed_address() -> None:
    for address in ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"]:
        assert netfence.allowed_address((address, 1)), address
    for address in [*FORBIDDEN, "", "localhost", "<broadcast>"]:
        assert not netfence.allowed_address((address, 1)), address


def test_unix_sockets_keep_working(tmp_path: Path) -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"unix")
        assert right.recv(4) == b"unix"
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(path)
        server.listen(1)
        client.connect(path)
        client.sendall(b"x")
        assert server.accept()[0].recv(1) == b"x"
    assert netfence.violations() == []


def test_asyncio_still_runs_on_its_socketpair() -> None:
    import asyncio

    async def echo_roundtrip() -> bytes:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.read(4))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("localhost", port)
        writer.write(b"loop")
        answer = await reader.read(4)
        writer.close()
        server.close()
        await server.wait_closed()
        return answer

    assert asyncio.run(echo_roundtrip()) == b"loop"
    assert netfence.violations() == []


def fenced_child(code: str) -> subprocess.CompletedProcess[str]:
    """``python -c CODE`` with the environment the conftest gives every child."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=netfence.subprocess_env({"PATH": "/usr/bin:/bin"}),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_python_subprocess_is_fenced_and_says_so_on_stderr() -> None:
    done = fenced_child("import socket; socket.create_connection(('10.0.0.1', 993), timeout=0.2)")
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("network fence:")]
    assert len(lines) == 1, done.stderr
    assert re.fullmatch(
        r"network fence: refused connection to 10\.0\.0\.1:993 \(connect\) "
        r"from <string>:1 \[pid \d+\]",
        lines[0],
    )
    assert "NetworkFenceError" in done.stderr
    # The child also told this process, so a refusal it swallowed would still fail the test.
    assert [v.where for v in refused("10.0.0.1:993")] == ["<string>:1"]


def test_a_refusal_swallowed_in_a_subprocess_reaches_the_parent() -> None:
    done = fenced_child(
        "import socket\n"
        "try:\n"
        "    socket.getaddrinfo('imap.gmail.com', 993)\n"
        "except OSError:\n"
        "    print('could not connect')\n"
    )
    assert (done.returncode, done.stdout) == (0, "could not connect\n")
    assert "network fence: refused connection to imap.gmail.com" in done.stderr
    assert len(refused("imap.gmail.com")) == 1


def test_a_child_given_the_environment_minus_mailbox_settings_is_still_fenced() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOX_")}
    done = subprocess.run(
        [sys.executable, "-c", "import socket; socket.socket().connect(('100.64.0.1', 443))"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "network fence: refused connection to 100.64.0.1:443" in done.stderr
    assert len(refused("100.64.0.1")) == 1


def test_the_checkout_and_loopback_still_work_in_a_subprocess(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    done = fenced_child(
        "import socket, mailbox_core\n"
        f"socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
        "import sitecustomize, sys; print(sys.modules['mailbox_test_netfence'].installed())\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True\n"
    assert netfence.violations() == []


def test_a_sitecustomize_further_down_the_path_still_runs(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import os\nos.environ['CHAINED'] = 'yes'\n")
    env = netfence.subprocess_env({"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)})
    assert env["PYTHONPATH"].split(os.pathsep) == [netfence.SITE_DIR, str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-c", "import os, socket; print(os.environ.get('CHAINED'))"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, "yes\n"), done.stderr
