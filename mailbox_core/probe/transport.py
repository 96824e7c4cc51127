"""The transport: resolve once through the egress guard → TCP to those addresses → TLS.

Protocols (imap.py, pop3.py) never touch a socket: they speak through the ``Wire`` this
module hands them. The connector is injectable the way httpx takes a transport: tests
script a server behind it (tests/support/fake_transport.py) without any network.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

from cryptography import x509

from mailbox_core.egress import EgressPolicy, Resolver
from mailbox_core.probe.deadline import Deadline
from mailbox_core.probe.diagnosis import Problem, StepFailed
from mailbox_core.probe.results import Certificate, ProbeTarget
from mailbox_core.probe.wire import Wire
from mailbox_core.tls import certificate_names, client_context, name_matches, sessions

Connector = Callable[[tuple[Any, ...], float], socket.socket]

_dns_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="probe-dns")


def default_resolver(host: str, port: int) -> list[tuple[Any, ...]]:
    """The system's resolver, as ``egress.resolve`` expects it."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def default_connector(address: tuple[Any, ...], timeout: float) -> socket.socket:
    """A TCP connection to one resolved address, within ``timeout``."""
    family, kind, proto, _, sockaddr = address
    sock = socket.socket(family, kind, proto)
    sock.settimeout(timeout)
    try:
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


class Transport:
    """One probe's connection; a context manager that closes it (and keeps its TLS session)."""

    def __init__(
        self,
        target: ProbeTarget,
        deadline: Deadline,
        *,
        ca_file: str | None,
        connector: Connector,
        resolver: Resolver,
        egress: EgressPolicy,
    ) -> None:
        self.target = target
        self.deadline = deadline
        self.context = client_context(ca_file, target.allow_self_signed)
        self.connector = connector
        self.resolver = resolver
        self.egress = egress
        self.addresses: list[tuple[Any, ...]] = []
        self.wire: Wire | None = None
        self.certificate: Certificate | None = None  # what TLS saw, for expiry warnings
        self._verified: ssl.SSLSocket | None = None  # TLS that passed: its session is kept

    def resolve(self) -> str:
        """Look the host up once; the answers are the only addresses ``connect`` dials."""
        # Resolve once, through the egress guard: the probe then dials only the addresses
        # it checked, so a second (rebinding) answer can never reach the connector.
        host, port = self.target.host, self.target.port
        future = _dns_pool.submit(self.egress.resolve, host, port, self.resolver)
        self.addresses = future.result(timeout=self.deadline.remaining())
        if not self.addresses:
            raise StepFailed(Problem.NO_ADDRESS)
        shown = sorted({str(a[4][0]) for a in self.addresses})
        return f"{host} → {', '.join(shown[:3])}"

    def connect(self) -> str:
        """Dial the resolved addresses in turn; the first that answers carries the probe."""
        errors: list[OSError] = []
        for address in self.addresses:
            try:
                sock = self.connector(address, self.deadline.remaining())
            except OSError as exc:
                errors.append(exc)
                continue
            self.wire = Wire(sock, self.deadline)
            return f"Connected to {address[4][0]} port {self.target.port}"
        raise errors[-1]  # resolve() found at least one address

    def start_tls(self) -> str:
        """TLS over the connection, SNI and certificate checked on the typed host name."""
        wire = self._wire()
        host, port = self.target.host, self.target.port
        wire.sock.settimeout(self.deadline.remaining())
        tls = self.context.wrap_socket(
            wire.sock,
            server_hostname=host,
            session=sessions.get(self.context, host, port),
            do_handshake_on_connect=False,
        )
        wire.replace(tls)  # first, so that the watchdog's abort reaches the handshake
        tls.do_handshake()
        self.certificate = certificate_facts(tls.getpeercert(binary_form=True))
        self._check_self_signed_name(tls)
        self._verified = tls
        trust = "self-signed allowed" if self.target.allow_self_signed else "certificate verified"
        resumed = " · resumed" if tls.session_reused else ""
        return f"{tls.version()} · {trust}{resumed}"

    def peer_names(self) -> list[str]:
        """Read the certificate without trusting it, only to name it in the hint."""
        if not self.target.ssl_enabled or not self.addresses:
            return []  # after STARTTLS the protocol dance is not worth repeating
        try:
            sock = self.connector(self.addresses[0], max(0.5, self.deadline.at - time.monotonic()))
        except OSError:
            return []
        context = client_context(allow_self_signed=True)  # verifies nothing, by design here
        try:
            with context.wrap_socket(sock, server_hostname=self.target.host) as wrapped:
                return certificate_names(wrapped.getpeercert(binary_form=True))
        except OSError:
            return []
        finally:
            sock.close()

    def abort(self) -> None:
        """The watchdog's call at the deadline: unblock whatever waits on the socket."""
        if self.wire is not None:
            with contextlib.suppress(OSError):
                self.wire.sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        tls, self._verified = self._verified, None
        if tls is not None:
            self._keep_session(tls)
        if self.wire is not None:
            self.wire.sock.close()

    def _keep_session(self, tls: ssl.SSLSocket) -> None:
        host, port = self.target.host, self.target.port
        if tls.session_reused and not sessions.wants(self.context, host, port):
            return  # the kept session was just resumed: it still works
        session = _resumable(tls)
        if session is not None:
            sessions.put(self.context, host, port, session)

    def _wire(self) -> Wire:
        assert self.wire is not None, "connect() comes first"
        return self.wire

    def _check_self_signed_name(self, tls: ssl.SSLSocket) -> None:
        # The self-signed context checks no name: do it here, as the verifying one would.
        if not self.target.allow_self_signed:
            return
        names = certificate_names(tls.getpeercert(binary_form=True))
        if not name_matches(self.target.host, names):
            raise StepFailed(Problem.CERT_NAME, names=", ".join(names) or "no name")


def certificate_facts(der: bytes | None) -> Certificate | None:
    """Expiry, issuer and subject of a DER certificate (None when there is none to read)."""
    if not der:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    return Certificate(
        not_after=cert.not_valid_after_utc,
        issuer=cert.issuer.rfc4514_string()[:500],
        subject=cert.subject.rfc4514_string()[:500],
    )


def _resumable(tls: ssl.SSLSocket) -> ssl.SSLSession | None:
    """The connection's session if a later handshake can resume it."""
    session = tls.session  # read once: each read copies the session, certificates and all
    if session is None:
        return None
    # TLS 1.3 resumes only with a ticket (sent after the handshake); 1.2 by session ID.
    return session if session.has_ticket or tls.version() != "TLSv1.3" else None
