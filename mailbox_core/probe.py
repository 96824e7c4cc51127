"""Connection test: DNS → TCP → TLS → greeting → sign-in → INBOX, as a result object.

A failed login, a refused connection or a bad certificate is a *result*, never an
exception. Every network operation is bounded by one deadline for the whole probe,
enforced by a watchdog that shuts the socket, so a server that dribbles bytes cannot
hold a check past ``timeout``. The probe never changes the mailbox: IMAP opens INBOX
with EXAMINE (read-only), POP3 only asks STAT and quits without deleting.
"""

from __future__ import annotations

import contextlib
import heapq
import imaplib
import itertools
import poplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mailbox_core.egress import UNGUARDED, EgressPolicy, EgressRefused
from mailbox_core.schemas import MailboxType
from mailbox_core.tls import certificate_names, client_context, name_matches

Connector = Callable[[tuple[Any, ...], float], socket.socket]
Resolver = Callable[[str, int], list[tuple[Any, ...]]]
TokenSource = Callable[[], str]

DEFAULT_TIMEOUT = 10.0
STEPS = ("DNS", "TCP", "TLS", "Greeting", "Sign-in", "Mailbox")
_dns_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="probe-dns")


class StepStatus(StrEnum):
    PASSED = "passed"
    WARNING = "warning"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Step:
    """One step of a connection test."""

    name: str
    status: StepStatus
    elapsed_ms: float = 0.0
    detail: str = ""
    hint: str = ""


@dataclass(frozen=True)
class ProbeResult:
    """What a connection test found; ``ok`` when every step passed (warnings allowed)."""

    steps: tuple[Step, ...]
    message_count: int | None = None

    @property
    def ok(self) -> bool:
        return all(
            s.status in (StepStatus.PASSED, StepStatus.WARNING, StepStatus.SKIPPED)
            for s in self.steps
        )

    @property
    def failed_step(self) -> Step | None:
        return next((s for s in self.steps if s.status is StepStatus.FAILED), None)

    @property
    def elapsed_ms(self) -> float:
        return sum(s.elapsed_ms for s in self.steps)

    @property
    def warnings(self) -> list[Step]:
        return [s for s in self.steps if s.status is StepStatus.WARNING]

    @property
    def summary(self) -> str:
        failed = self.failed_step
        if failed:
            return failed.detail
        count = "" if self.message_count is None else f"; {self.message_count} messages"
        return f"Signed in and opened INBOX{count}"


@dataclass(frozen=True, repr=False)
class ProbeTarget:
    """Where and how to sign in. Holds a plaintext secret: never log or store it."""

    mailbox_type: MailboxType
    host: str
    port: int
    account: str
    password: str | None = None
    ssl_enabled: bool = False
    starttls: bool = False
    allow_self_signed: bool = False
    allow_plaintext: bool = False
    token_source: TokenSource | None = field(default=None, compare=False)
    oauth_label: str = ""

    def __repr__(self) -> str:
        return f"ProbeTarget({self.mailbox_type.value} {self.host}:{self.port} {self.account})"


class _StepOutcome(Exception):
    """Internal: a step's person-readable detail and hint, raised from inside the step."""

    def __init__(self, detail: str, hint: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint


class _Failed(_StepOutcome):
    """Ends the probe at the current step."""


class _Warning(_StepOutcome):
    """The step worked, with a caveat the person should see (e.g. no encryption)."""


def default_resolver(host: str, port: int) -> list[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def default_connector(address: tuple[Any, ...], timeout: float) -> socket.socket:
    family, kind, proto, _, sockaddr = address
    sock = socket.socket(family, kind, proto)
    sock.settimeout(timeout)
    try:
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


class _Watchdog:
    """One thread for all probes: calls a probe's abort when its deadline passes.

    A timer thread per probe would mean hundreds of sleeping threads during Check all.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, callback: Callable[[], None]) -> int:
        with self._cond:
            ticket = next(self._ids)
            self._callbacks[ticket] = callback
            heapq.heappush(self._heap, (deadline, ticket))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="probe-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
            return ticket

    def cancel(self, ticket: int) -> None:
        with self._cond:
            self._callbacks.pop(ticket, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, ticket = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                callback = self._callbacks.pop(ticket, None)
            if callback is not None:
                callback()


_watchdog = _Watchdog()


class Probe:
    """Runs one connection test; create one per check (it holds the live socket)."""

    def __init__(
        self,
        target: ProbeTarget,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        ca_file: str | None = None,
        connector: Connector = default_connector,
        resolver: Resolver = default_resolver,
        egress: EgressPolicy = UNGUARDED,
    ) -> None:
        self.target = target
        self.egress = egress
        self.timeout = timeout
        self.ca_file = ca_file
        self.connector = connector
        self.resolver = resolver
        self.steps: list[Step] = []
        self.sock: socket.socket | None = None
        self.deadline = 0.0
        self.timed_out = False
        self.client: imaplib.IMAP4 | poplib.POP3 | None = None
        self.capabilities: set[str] = set()
        self.message_count: int | None = None

    # -- driver

    def run(self) -> ProbeResult:
        self.deadline = time.monotonic() + self.timeout
        ticket = _watchdog.watch(self.deadline, self._abort)
        try:
            self._run_steps()
        finally:
            _watchdog.cancel(ticket)
            self._close()
        done = {s.name for s in self.steps}
        skipped = [
            Step(name, StepStatus.SKIPPED, detail="not reached")
            for name in STEPS
            if name not in done
        ]
        return ProbeResult(steps=tuple(self.steps + skipped), message_count=self.message_count)

    def _run_steps(self) -> None:
        plan: list[tuple[str, Callable[[], str]]] = [("DNS", self._resolve), ("TCP", self._connect)]
        if self.target.ssl_enabled:
            plan += [("TLS", self._implicit_tls), ("Greeting", self._greet)]
        else:
            plan += [("Greeting", self._greet), ("TLS", self._starttls)]
        plan += [("Sign-in", self._sign_in), ("Mailbox", self._open_inbox)]
        for name, action in plan:
            if not self._step(name, action):
                return

    def _step(self, name: str, action: Callable[[], str]) -> bool:
        started = time.monotonic()
        status, hint = StepStatus.PASSED, ""
        try:
            detail = action()
        except _Failed as failure:
            status, detail, hint = StepStatus.FAILED, failure.detail, failure.hint
        except _Warning as warning:
            status, detail, hint = StepStatus.WARNING, warning.detail, warning.hint
        except (OSError, EOFError, imaplib.IMAP4.error, poplib.error_proto) as exc:
            status = StepStatus.FAILED
            detail, hint = self._explain(name, exc)
        elapsed = (time.monotonic() - started) * 1000
        self.steps.append(Step(name, status, round(elapsed, 1), detail, hint))
        return status is not StepStatus.FAILED

    def _abort(self) -> None:
        self.timed_out = True
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.timed_out = True
            raise TimeoutError
        return remaining

    def _close(self) -> None:
        try:
            if isinstance(self.client, imaplib.IMAP4):
                self.client.shutdown()
            elif isinstance(self.client, poplib.POP3):
                self.client.close()
            elif self.sock is not None:
                self.sock.close()
        except OSError:
            pass

    # -- steps

    def _resolve(self) -> str:
        # Resolve once, through the egress guard: the probe then dials only the addresses
        # it checked, so a second (rebinding) answer can never reach the connector.
        future = _dns_pool.submit(
            self.egress.resolve, self.target.host, self.target.port, self.resolver
        )
        try:
            self.addresses = future.result(timeout=self._remaining())
        except EgressRefused as exc:
            raise _Failed(str(exc), exc.hint) from exc
        except FutureTimeout as exc:
            raise _Failed(
                f"Looking up {self.target.host} took longer than {self.timeout:g} s",
                "The DNS server does not answer; check the machine's network and resolver.",
            ) from exc
        except socket.gaierror as exc:
            raise _Failed(
                f"The host name {self.target.host} could not be found",
                "Check Host for typos; the name does not exist in DNS.",
            ) from exc
        shown = sorted({str(a[4][0]) for a in self.addresses})
        return f"{self.target.host} → {', '.join(shown[:3])}"

    def _connect(self) -> str:
        errors: list[OSError] = []
        for address in self.addresses:
            try:
                self.sock = self.connector(address, self._remaining())
                return f"Connected to {address[4][0]} port {self.target.port}"
            except OSError as exc:
                errors.append(exc)
        raise errors[-1] if errors else _Failed("No address to connect to")

    def _implicit_tls(self) -> str:
        assert self.sock is not None
        self.sock.settimeout(self._remaining())
        self.sock = self._wrap(self.sock)
        return self._tls_detail()

    def _starttls(self) -> str:
        offered = {"STARTTLS", "STLS"} & self.capabilities
        if not self.target.starttls:
            self._plaintext_sign_in(bool(offered))
        if not offered:
            raise _Failed(
                "The server does not offer STARTTLS",
                f"Set STARTTLS to No, or use SSL Enabled = Yes with port "
                f"{993 if self._imap else 995}.",
            )
        self._set_timeout()
        context = self._context()
        if isinstance(self.client, imaplib.IMAP4):
            self.client.starttls(ssl_context=context)
            self.sock = self.client.sock
        elif isinstance(self.client, poplib.POP3):
            self.client.stls(context=context)
            self.sock = self.client.sock
        self._check_self_signed_name()
        return self._tls_detail()

    def _plaintext_sign_in(self, offered: bool) -> None:
        """No TLS was asked for: refuse to send a credential unless the mailbox allows it."""
        secure = (
            "The server offers STARTTLS: set STARTTLS to Yes."
            if offered
            else f"Use SSL Enabled = Yes with port {993 if self._imap else 995} if the "
            "server supports it."
        )
        secret = "access token" if self.target.token_source is not None else "password"
        if not self.target.allow_plaintext:
            raise _Failed(
                f"Not encrypted: signing in would send the {secret} in plain text, so it "
                "was not sent",
                f"{secure} Only on a network you trust: turn on 'Allow sign-in without "
                "encryption' under Advanced.",
            )
        raise _Warning(
            f"Not encrypted: the {secret} is sent in plain text (allowed for this mailbox)",
            secure,
        )

    def _greet(self) -> str:
        assert self.sock is not None
        self._set_timeout()
        if self._imap:
            self.client = _PreconnectedIMAP(self.sock, self.target.host)
            self.capabilities = {c.upper() for c in self.client.capabilities}
            greeting = self.client.welcome.decode(errors="replace")
        else:
            self.client = _PreconnectedPOP3(self.sock, self.target.host)
            greeting = self.client.welcome.decode(errors="replace")
            try:
                self.capabilities = {c.upper() for c in self.client.capa()}
            except poplib.error_proto:
                self.capabilities = set()
        return f"{greeting[:80]} · capabilities: {' '.join(sorted(self.capabilities))[:200]}"

    def _sign_in(self) -> str:
        self._set_timeout()
        if self.target.token_source is not None:
            return self._xoauth2()
        password = self.target.password or ""
        account = self.target.account
        try:
            if isinstance(self.client, imaplib.IMAP4):
                if password.isascii() and account.isascii():
                    self.client.login(account, password)
                else:  # LOGIN is ASCII-only; AUTHENTICATE PLAIN carries UTF-8
                    plain = f"\0{account}\0{password}".encode()
                    self.client.authenticate("PLAIN", lambda _: plain)
            elif isinstance(self.client, poplib.POP3):
                self.client.user(account)
                self.client.pass_(password)
        except (imaplib.IMAP4.error, poplib.error_proto) as exc:
            raise _Failed(
                f"The server refused the password for {account}", _refused_hint(exc, self.target)
            ) from exc
        return f"Signed in as {account} with a password"

    def _xoauth2(self) -> str:
        assert self.target.token_source is not None
        try:
            token = self.target.token_source()
        except _Failed:
            raise
        except Exception as exc:  # the token source raises the core's readable errors
            raise _Failed(f"No access token: {exc}", getattr(exc, "hint", "")) from exc
        self._set_timeout()
        auth = f"user={self.target.account}\x01auth=Bearer {token}\x01\x01".encode()
        answers = iter([auth])
        if not isinstance(self.client, imaplib.IMAP4):
            raise _Failed("OAuth sign-in is only available for IMAP mailboxes")
        try:
            # After a refused token the server sends an error challenge; answer it with
            # an empty line to receive the final NO.
            self.client.authenticate("XOAUTH2", lambda _: next(answers, b""))
        except imaplib.IMAP4.error as exc:
            reason = (
                exc.args[0].decode(errors="replace")
                if exc.args and isinstance(exc.args[0], bytes)
                else str(exc)
            )
            if "UNAVAILABLE" in reason.upper():
                raise _Failed(
                    "The mail server could not verify the token right now",
                    "The server's identity provider is unavailable; try again later.",
                ) from exc
            raise _Failed(
                f"The server refused the OAuth token for {self.target.account}",
                "The token is valid for another account or lacks IMAP access: "
                "check Account and the app's IMAP permission.",
            ) from exc
        return f"Signed in as {self.target.account} with {self.target.oauth_label or 'OAuth'}"

    def _open_inbox(self) -> str:
        self._set_timeout()
        if isinstance(self.client, imaplib.IMAP4):
            status, data = self.client.select("INBOX", readonly=True)
            if status != "OK":
                raise _Failed(
                    "INBOX could not be opened",
                    "The account has no INBOX or is not allowed to read it.",
                )
            self.message_count = int(data[0] or 0)
            self.client.logout()
        elif isinstance(self.client, poplib.POP3):
            self.message_count, _size = self.client.stat()
            self.client.quit()  # QUIT without DELE: nothing is removed
        self.client = None
        self.sock = None
        return f"INBOX has {self.message_count} messages"

    # -- helpers

    @property
    def _imap(self) -> bool:
        return self.target.mailbox_type is MailboxType.IMAP

    def _set_timeout(self) -> None:
        if self.sock is not None:
            self.sock.settimeout(self._remaining())

    def _context(self) -> ssl.SSLContext:
        return client_context(self.ca_file, self.target.allow_self_signed)

    def _wrap(self, sock: socket.socket) -> ssl.SSLSocket:
        wrapped = self._context().wrap_socket(sock, server_hostname=self.target.host)
        self.sock = wrapped
        self._check_self_signed_name()
        return wrapped

    def _check_self_signed_name(self) -> None:
        if not self.target.allow_self_signed or not isinstance(self.sock, ssl.SSLSocket):
            return
        names = certificate_names(self.sock.getpeercert(binary_form=True))
        if not name_matches(self.target.host, names):
            raise _Failed(
                f"Certificate is for {', '.join(names) or 'no name'}, not {self.target.host}",
                "Use the host name the certificate names.",
            )

    def _tls_detail(self) -> str:
        assert isinstance(self.sock, ssl.SSLSocket)
        trust = "self-signed allowed" if self.target.allow_self_signed else "certificate verified"
        return f"{self.sock.version()} · {trust}"

    def _explain(self, step: str, exc: BaseException) -> tuple[str, str]:
        target = self.target
        where = f"{target.host} port {target.port}"
        if self.timed_out or isinstance(exc, TimeoutError | socket.timeout):
            return self._timeout_message(step, where)
        if isinstance(exc, ConnectionRefusedError):
            return (
                f"Connection refused by {where}",
                "Nothing accepts connections on that port: check Port and Host.",
            )
        if isinstance(exc, ssl.SSLCertVerificationError):
            return self._certificate_message(exc)
        if isinstance(exc, ssl.SSLError):
            if step == "TLS" and target.ssl_enabled:
                return (
                    f"{where} does not speak SSL",
                    f"Port {target.port} expects a plain connection: set SSL Enabled to "
                    f"No (port {143 if self._imap else 110}), or use port "
                    f"{993 if self._imap else 995}.",
                )
            return (f"TLS failed with {where}: {exc.reason or exc}", "")
        if (
            isinstance(exc, imaplib.IMAP4.error | poplib.error_proto | EOFError)
            and step == "Greeting"
        ):
            return self._greeting_message(exc, where)
        if isinstance(exc, ConnectionResetError | BrokenPipeError | EOFError):
            return (
                f"{where} closed the connection during {step}",
                "The server or a firewall dropped the connection; check Port and SSL Enabled.",
            )
        if isinstance(exc, OSError) and exc.errno is not None:
            return (
                f"Could not connect to {where}: {exc.strerror}",
                "Check Host and the network path to the server.",
            )
        return (f"{step} failed: {exc}", "")

    def _timeout_message(self, step: str, where: str) -> tuple[str, str]:
        seconds = f"{self.timeout:g} s"
        if step == "TCP":
            return (
                f"No answer from {where} within {seconds}",
                "A firewall may drop the connection, or Host/Port is wrong.",
            )
        if step == "Greeting" and not self.target.ssl_enabled and self.target.port in (993, 995):
            return (
                f"{where} sent no greeting within {seconds}",
                f"Port {self.target.port} expects SSL: set SSL Enabled to Yes.",
            )
        if step == "Greeting":
            return (
                f"{where} sent no greeting within {seconds}",
                "The server accepted the connection but said nothing. If it expects "
                "SSL, set SSL Enabled to Yes; otherwise check Port.",
            )
        return (
            f"{step} did not finish within {seconds}",
            "The server is too slow or stalled; try again or raise the timeout.",
        )

    def _certificate_message(self, exc: ssl.SSLCertVerificationError) -> tuple[str, str]:
        host = self.target.host
        if exc.verify_code == 62 or "mismatch" in str(exc.verify_message).lower():
            names = self._peer_names()
            return (
                f"Certificate is for {', '.join(names) or 'another name'}, not {host}",
                "Use the host name the certificate names in Host.",
            )
        if exc.verify_code == 10:
            return (
                f"The certificate of {host} has expired",
                "The server's administrator must renew it.",
            )
        if exc.verify_code in (18, 19, 20, 21):
            return (
                f"The certificate of {host} is not signed by a trusted authority "
                "(self-signed or private CA)",
                "Add the CA to MAILBOX_CA_FILE, or turn on 'Allow self-signed "
                "certificate' if you trust this server.",
            )
        return (f"The certificate of {host} was refused: {exc.verify_message}", "")

    def _peer_names(self) -> list[str]:
        """Read the certificate without trusting it, only to name it in the hint."""
        if not self.target.ssl_enabled:
            return []  # after STARTTLS the protocol dance is not worth repeating
        try:
            sock = self.connector(self.addresses[0], max(0.5, self._remaining()))
        except (OSError, TimeoutError):
            return []
        context = client_context(allow_self_signed=True)  # verifies nothing, by design here
        try:
            with context.wrap_socket(sock, server_hostname=self.target.host) as wrapped:
                return certificate_names(wrapped.getpeercert(binary_form=True))
        except (OSError, TimeoutError):
            return []
        finally:
            sock.close()

    def _greeting_message(self, exc: BaseException, where: str) -> tuple[str, str]:
        expected = "IMAP" if self._imap else "POP3"
        text = str(exc)[:120]
        if "\\x15\\x03" in text or "\\x16\\x03" in text:
            return (
                f"{where} answered with TLS, not a plain {expected} greeting",
                f"Port {self.target.port} expects SSL: set SSL Enabled to Yes.",
            )
        if isinstance(exc, EOFError) or "EOF" in text:
            return (
                f"{where} closed the connection without a greeting",
                "Check Port and SSL Enabled.",
            )
        return (
            f"{where} did not answer like a {expected} server: {text}",
            f"Check Mailbox Type and Port: {expected} usually uses "
            f"{'143/993' if self._imap else '110/995'}.",
        )


class _PreconnectedIMAP(imaplib.IMAP4):
    """imaplib over a socket the probe already connected (and maybe wrapped)."""

    def __init__(self, sock: socket.socket, host: str) -> None:
        self._given = sock
        super().__init__(host, 0)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return self._given


class _PreconnectedPOP3(poplib.POP3):
    """poplib over a socket the probe already connected (and maybe wrapped)."""

    def __init__(self, sock: socket.socket, host: str) -> None:
        self._given = sock
        super().__init__(host, 0)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return self._given


def _refused_hint(exc: BaseException, target: ProbeTarget) -> str:
    text = str(exc).upper()
    hint = "Check Account and Password."
    if "IN USE" in text or "LOCK" in text:
        return "Another client holds the POP3 lock on this mailbox; try again later."
    domain = target.account.rsplit("@", 1)[-1].lower()
    if domain in {"gmail.com", "googlemail.com", "yahoo.com", "icloud.com", "me.com"}:
        hint += " This provider needs an app password (or OAuth), not the normal password."
    return hint


def run_probe(target: ProbeTarget, **options: Any) -> ProbeResult:
    """Test one mailbox connection; never raises for a failure of the outside world."""
    return Probe(target, **options).run()


__all__ = [
    "STEPS",
    "Probe",
    "ProbeResult",
    "ProbeTarget",
    "Step",
    "StepStatus",
    "run_probe",
]
