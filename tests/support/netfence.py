"""A network fence for the test suite: only loopback may be dialed or resolved.

Project rule: tests, benches and the servers they start talk to 127.0.0.0/8 and ::1 only.
``install()`` patches, in the current process:

* ``socket.socket.connect`` / ``connect_ex`` / ``sendto`` / ``sendmsg`` for AF_INET and
  AF_INET6: a destination that is not loopback raises ``NetworkFenceError`` *before* the
  real call, so no packet leaves. AF_UNIX (socketpair, asyncio, multiprocessing) is untouched.
* ``socket.getaddrinfo`` / ``gethostbyname`` / ``gethostbyname_ex`` (and so
  ``socket.create_connection``, urllib3, httpx, asyncio, tornado): IP literals pass through;
  ``localhost``, ``localhost.`` and ``*.localhost`` resolve to loopback; names that by
  RFC 6761 / RFC 2606 never exist (``*.invalid``, ``*.test``, ``*.example``,
  ``example.com|net|org`` and their subdomains) raise ``socket.gaierror(EAI_NONAME)`` without
  a lookup and without a violation; any other name is a violation and raises
  ``socket.gaierror`` (a real lookup would ask a DNS server on the network).

``NetworkFenceError`` is deliberately *not* an ``OSError``: code under test that turns
OSError into a polite "could not connect" result must not hide a forgotten override.
Because code may still swallow it (``except Exception``), every violation is also recorded;
``violations()`` / ``clear()`` let a fixture fail the test at teardown.

Subprocesses: ``subprocess_env()`` returns an environment whose PYTHONPATH starts with
``fence_site/`` (its ``sitecustomize`` calls ``install()`` unless MAILBOX_TEST_NETFENCE=0).
A fenced child prints one ``network fence: refused connection to …`` line to stderr per
violation and appends it to the parent's log file (env NETFENCE_LOG), which the
parent's ``violations()`` reads back, so even a swallowed refusal in a child fails the test.

This file is also loaded by path from ``fence_site/sitecustomize.py`` in children whose
``sys.path`` does not hold the checkout, so it imports only the standard library.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import sys
import threading
from collections.abc import Mapping
from typing import Any

ENV_FLAG = "MAILBOX_TEST_NETFENCE"
LOG_ENV = "NETFENCE_LOG"  # not MAILBOX_*: tests strip those from a child's environment
SITE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fence_site")
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Names that must never resolve (RFC 6761 §6.4 "invalid", RFC 2606 "test"/"example" and the
# example second-level domains). Matching is on the name itself or any subdomain.
NEVER_RESOLVE = ("invalid", "test", "example", "example.com", "example.net", "example.org")
INET_FAMILIES = (socket.AF_INET, socket.AF_INET6)


class NetworkFenceError(RuntimeError):
    """A test tried to reach a non-loopback address. Not an OSError on purpose."""


class Violation:
    """One refused destination: what was attempted, to where, and from which code."""

    __slots__ = ("action", "destination", "pid", "where")

    def __init__(self, action: str, destination: str, where: str, pid: int) -> None:
        self.action = action
        self.destination = destination
        self.where = where
        self.pid = pid

    def __str__(self) -> str:
        return f"{self.destination} ({self.action}) from {self.where} [pid {self.pid}]"

    __repr__ = __str__

    def line(self) -> str:
        return f"network fence: refused connection to {self}"


_lock = threading.Lock()
_violations: list[Violation] = []
_original: dict[str, Any] = {}
_owned_log: str | None = None  # the log file this process created (the pytest process)
_owner_pid: int | None = None


# ---------------------------------------------------------------- address and name policy


def _host_text(host: object) -> str | None:
    if host is None:
        return None
    if isinstance(host, bytes | bytearray):
        return bytes(host).decode("ascii", "replace")
    return str(host)


def _loopback_ip(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback  # ::ffff:127.0.0.1 (not is_loopback before 3.13)
    return ip.is_loopback


def allowed_address(sockaddr: object) -> bool:
    """True when an AF_INET/AF_INET6 sockaddr (or a bare host string) is a loopback literal.

    Names are not addresses: ``("localhost", 80)`` is False here (``connect`` resolves names
    through the fenced resolver first). ``""``, ``0.0.0.0``, ``::`` and ``<broadcast>`` are
    False.
    """
    host = sockaddr[0] if isinstance(sockaddr, tuple) and sockaddr else sockaddr
    text = _host_text(host)
    return _loopback_ip(text) if text else False


def _is_ip_literal(host: str) -> bool:
    """Numeric host (any form the C resolver accepts, e.g. ``127.1``, ``fe80::1%lo``)?"""
    try:
        _original["getaddrinfo"](host, None, 0, 0, 0, socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return False
    return True


def _normalise(name: str) -> str:
    return name.rstrip(".").lower()


def _is_localhost(name: str) -> bool:
    name = _normalise(name)
    return name == "localhost" or name.endswith(".localhost")


def _never_resolves(name: str) -> bool:
    name = _normalise(name)
    return any(name == zone or name.endswith("." + zone) for zone in NEVER_RESOLVE)


def _vet_name(host: str, action: str) -> str:
    """The name to hand to the real resolver, or raise gaierror (recording violations).

    ``*.localhost`` is resolved as ``localhost`` (RFC 6761 §6.3): a real lookup of a name
    missing from /etc/hosts would go to the DNS server.
    """
    if _is_localhost(host):
        return "localhost"
    if _never_resolves(host):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    _refuse(action, host, error=False)
    raise socket.gaierror(
        socket.EAI_NONAME,
        f"network fence: refused to resolve {host!r}; tests may only use loopback, "
        "'localhost' or a name under .invalid/.test/.example",
    )


# ---------------------------------------------------------------- recording


def _where() -> str:
    """The code that asked: nearest project frame, else nearest frame outside socket/ssl."""
    frame: Any = sys._getframe(1)
    here = os.path.abspath(__file__)
    fallback = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if os.path.abspath(filename) != here:
            location = f"{filename}:{frame.f_lineno}"
            base = os.path.basename(filename)
            if fallback is None and base not in ("socket.py", "ssl.py"):
                fallback = location
            absolute = os.path.abspath(filename)
            if absolute.startswith(_ROOT + os.sep) and os.sep + ".venv" + os.sep not in absolute:
                return f"{os.path.relpath(absolute, _ROOT)}:{frame.f_lineno}"
        frame = frame.f_back
    return fallback or "<unknown>"


def _refuse(action: str, destination: str, *, error: bool = True) -> None:
    """Record one violation, tell stderr and the parent's log; raise unless ``error=False``."""
    violation = Violation(action, destination, _where(), os.getpid())
    with _lock:
        _violations.append(violation)
    line = violation.line()
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except Exception:  # a closed stderr must not hide the refusal below
        pass
    log = os.environ.get(LOG_ENV)
    if log and os.getpid() != _owner_pid:  # children report to the parent's log
        try:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(
                    "\t".join((action, destination, violation.where, str(os.getpid()))) + "\n"
                )
        except OSError:
            pass
    if error:
        raise NetworkFenceError(
            f"{line}. Tests may only talk to loopback (127.0.0.0/8, ::1): "
            "point the code at a local server (a forgotten override?)"
        )


def _from_log() -> list[Violation]:
    if not _owned_log:
        return []
    try:
        with open(_owned_log, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    found = []
    for text in lines:
        parts = text.split("\t")
        if len(parts) == 4:
            found.append(Violation(parts[0], parts[1], parts[2], int(parts[3] or 0)))
    return found


def violations() -> list[Violation]:
    """Violations recorded since the last ``clear()``: this process's, then its children's."""
    with _lock:
        mine = list(_violations)
    return mine + _from_log()


def clear() -> None:
    with _lock:
        _violations.clear()
    if _owned_log:
        try:
            with open(_owned_log, "w", encoding="utf-8"):
                pass
        except OSError:
            pass


# ---------------------------------------------------------------- patched functions


def _describe(sockaddr: object) -> str:
    if isinstance(sockaddr, tuple) and len(sockaddr) >= 2:
        host = _host_text(sockaddr[0]) or "''"
        return f"[{host}]:{sockaddr[1]}" if ":" in host else f"{host}:{sockaddr[1]}"
    return repr(sockaddr)


def _checked(sock: socket.socket, sockaddr: Any, action: str) -> Any:
    """The sockaddr to really use (names resolved through the fence), or raise."""
    if sock.family not in INET_FAMILIES:
        return sockaddr
    if isinstance(sockaddr, tuple) and sockaddr:
        host = _host_text(sockaddr[0])
        if host and not _is_ip_literal(host):
            # connect(("name", port)) resolves inside C, past the patched getaddrinfo.
            name = _vet_name(host, action)
            infos = _original["getaddrinfo"](name, sockaddr[1], sock.family, sock.type)
            sockaddr = infos[0][4]
    if not allowed_address(sockaddr):
        _refuse(action, _describe(sockaddr))
    return sockaddr


def _connect(self: socket.socket, address: Any) -> None:
    return _original["connect"](self, _checked(self, address, "connect"))


def _connect_ex(self: socket.socket, address: Any) -> int:
    return int(_original["connect_ex"](self, _checked(self, address, "connect_ex")))


def _sendto(self: socket.socket, data: Any, *args: Any) -> int:
    if args:
        args = (*args[:-1], _checked(self, args[-1], "sendto"))
    return int(_original["sendto"](self, data, *args))


def _sendmsg(self: socket.socket, *args: Any) -> int:
    if len(args) >= 4 and args[3] is not None:
        args = (*args[:3], _checked(self, args[3], "sendmsg"), *args[4:])
    return int(_original["sendmsg"](self, *args))


def _getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[Any]:
    text = _host_text(host)
    if text and not _is_ip_literal(text):
        host = _vet_name(text, "name lookup")
    return list(_original["getaddrinfo"](host, port, family, type, proto, flags))


def _gethostbyname(hostname: str) -> str:
    text = _host_text(hostname) or ""
    if text and not _is_ip_literal(text):
        hostname = _vet_name(text, "name lookup")
    return str(_original["gethostbyname"](hostname))


def _gethostbyname_ex(hostname: str) -> tuple[str, list[str], list[str]]:
    text = _host_text(hostname) or ""
    if text and not _is_ip_literal(text):
        hostname = _vet_name(text, "name lookup")
    name, aliases, addresses = _original["gethostbyname_ex"](hostname)
    return name, aliases, addresses


_SOCKET_METHODS = {
    "connect": _connect,
    "connect_ex": _connect_ex,
    "sendto": _sendto,
    "sendmsg": _sendmsg,
}
_MODULE_FUNCTIONS = {
    "getaddrinfo": _getaddrinfo,
    "gethostbyname": _gethostbyname,
    "gethostbyname_ex": _gethostbyname_ex,
}


def installed() -> bool:
    return bool(_original)


def install() -> None:
    """Patch the socket module of this process (idempotent)."""
    if _original:
        return
    for name, patched in _SOCKET_METHODS.items():
        _original[name] = getattr(socket.socket, name)
        setattr(socket.socket, name, patched)
    for name, patched in _MODULE_FUNCTIONS.items():
        _original[name] = getattr(socket, name)
        setattr(socket, name, patched)


def uninstall() -> None:
    for name in _SOCKET_METHODS:
        if name in _original:
            setattr(socket.socket, name, _original[name])
    for name in _MODULE_FUNCTIONS:
        if name in _original:
            setattr(socket, name, _original[name])
    _original.clear()


# ---------------------------------------------------------------- subprocesses


def _shared_log() -> str:
    """The file fenced children report to; created once by the first (parent) process."""
    global _owned_log, _owner_pid
    if _owned_log is None:
        import atexit
        import tempfile

        handle, path = tempfile.mkstemp(prefix="mailbox-netfence-", suffix=".log")
        os.close(handle)
        _owned_log, _owner_pid = path, os.getpid()
        atexit.register(_remove_log, path)
    return _owned_log


def _remove_log(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def subprocess_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: os.environ) plus what makes a Python child fence itself."""
    result = dict(os.environ if env is None else env)
    current = result.get("PYTHONPATH", "")
    parts = [p for p in current.split(os.pathsep) if p != SITE_DIR] if current else []
    result["PYTHONPATH"] = os.pathsep.join([SITE_DIR, *parts])
    result[ENV_FLAG] = "1"
    result[LOG_ENV] = _shared_log()
    return result
