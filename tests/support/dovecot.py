"""A private Dovecot for tests and benchmarks: IMAP, IMAPS, POP3, POP3S on free ports.

Facts (Dovecot 2.3.19, Debian 12): ready in ~0.1 s, but wait for each port's greeting,
not just TCP accept. Stop it by killing its process group. As root, the login and
internal users (dovenull, dovecot) must be able to traverse the work dir, so it is made
with mode 0755 outside pytest's 0700 tmp dir. A failed login normally slows every later
login from 127.0.0.1 by 2-15 s; `auth_failure_delay = 0`, the anvil-auth-penalty
listener off and a first static passdb with `nodelay=yes` stop that.

``start(quota=True)`` adds the quota plugins (QUOTA, GETQUOTAROOT; limits below);
``Dovecot.reload(extra_config)`` changes the config of the running server (SIGHUP: new
logins get the new settings, e.g. auth_mechanisms); ``Dovecot.client(user)`` is an imaplib
client over IMAPS for a test's setup and verification (APPEND, STORE, read flags).
Dovecot counts a connection whose remote address equals its local one as secured, like
TLS: to see what it does on an unencrypted connection, connect from 127.0.0.2
(``SOURCE_UNSECURED``).
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.tls import make_certificate

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USERS = {
    "alice@example.com": "alice-Secret-1",
    "bob@example.com": "bob-Secret-2",
    "carol@example.com": "pässwörd-ü",
    "helpdesk@example.com": "helpdesk-Secret-3",
    "it@example.com": "it-Secret-4",
    "billing@example.com": "billing-Secret-5",
}
MESSAGES = 3
QUOTA_STORAGE_KIB = 100
QUOTA_MESSAGES = 10
SOURCE_UNSECURED = "127.0.0.2"
# Dovecot 2.3.19: the count backend needs quota_vsizes (it counts virtual sizes, which
# equal the file sizes here: the messages are written with CRLF line ends).
QUOTA_CONFIG = f"""
mail_plugins = $mail_plugins quota
protocol imap {{
  mail_plugins = $mail_plugins imap_quota
}}
plugin {{
  quota = count:User quota
  quota_vsizes = yes
  quota_rule = *:storage={QUOTA_STORAGE_KIB}K
  quota_rule2 = *:messages={QUOTA_MESSAGES}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Dovecot:
    """A running private Dovecot."""

    workdir: Path
    ports: dict[str, int]
    ca_file: Path
    process: subprocess.Popen[bytes] | None = None
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))
    config: dict[str, object] = field(default_factory=dict)  # what _config was called with

    def reload(self, extra_config: str) -> None:
        """Replace the extra config and reload; returns when new logins get the new config."""
        self.config["extra"] = extra_config
        (self.workdir / "dovecot.conf").write_text(_config(**self.config))  # type: ignore[arg-type]
        assert self.process is not None
        reloads = self.log().count("reloading configuration") + 1
        self.process.send_signal(signal.SIGHUP)
        # The master restarts the login processes; wait for its word, then for greetings.
        deadline = time.monotonic() + 10
        while self.log().count("reloading configuration") < reloads:
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not reload: {self.log()[-2000:]}")
            time.sleep(0.05)
        _wait_for_greetings(self)

    def client(self, user: str = "alice@example.com") -> imaplib.IMAP4_SSL:
        """An imaplib client signed in as ``user`` over IMAPS (test setup and checks only)."""
        import ssl

        context = ssl.create_default_context(cafile=str(self.ca_file))
        client = imaplib.IMAP4_SSL("localhost", self.ports["imaps"], ssl_context=context)
        client.login(user, self.users[user])
        return client

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self) -> str:
        path = self.workdir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def available() -> bool:
    return os.path.exists(DOVECOT)


def start(
    *,
    introspection_url: str | None = None,
    extra_config: str = "",
    users: dict[str, str] | None = None,
    tuned: bool = False,
    quota: bool = False,
) -> Dovecot:
    """Start Dovecot with its own config under a fresh dir; returns when every port greets."""
    workdir = Path(tempfile.mkdtemp(prefix="mm-dovecot-"))
    workdir.chmod(0o755)
    ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
    cert, key = make_certificate(workdir, "server", ["localhost", "127.0.0.1"], days=365)
    users = users or dict(USERS)
    server = Dovecot(workdir=workdir, ports=ports, ca_file=cert, users=users)
    _write_mail(workdir, users)
    extra = (QUOTA_CONFIG if quota else "") + extra_config
    server.config = {
        "workdir": workdir, "ports": ports, "cert": cert, "key": key,
        "introspection_url": introspection_url, "extra": extra, "tuned": tuned,
    }  # fmt: skip
    (workdir / "dovecot.conf").write_text(_config(**server.config))  # type: ignore[arg-type]
    server.process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(workdir / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "stderr.log").open("wb"),
        start_new_session=True,
    )
    try:
        _wait_for_greetings(server)
    except Exception:
        server.stop()
        raise
    return server


def _identity() -> tuple[str, int, int]:
    """(user, uid, gid) that owns the mail: the current user, or `dovecot` as root."""
    if os.geteuid() == 0:
        entry = pwd.getpwnam("dovecot")
        return entry.pw_name, entry.pw_uid, entry.pw_gid
    entry = pwd.getpwuid(os.geteuid())
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def _write_mail(workdir: Path, users: dict[str, str]) -> None:
    _, uid, gid = _identity()
    lines = []
    for user, password in users.items():
        lines.append(f"{user}:{{PLAIN}}{password}::::::")
        new = workdir / "mail" / user / "Maildir" / "new"
        for sub in ("cur", "new", "tmp"):
            (new.parent / sub).mkdir(parents=True, exist_ok=True)
        for number in range(1, MESSAGES + 1):
            (new / f"{1700000000 + number}.M{number}P1.test").write_text(
                f"From: sender{number}@example.org\r\nTo: {user}\r\n"
                f"Subject: Test message {number}\r\n\r\nBody {number}\r\n"
            )
    (workdir / "passwd").write_text("\n".join(lines) + "\n")
    for path in [workdir / "mail", *(workdir / "mail").rglob("*")]:
        os.chown(path, uid, gid)


def _config(
    workdir: Path,
    ports: dict[str, int],
    cert: Path,
    key: Path,
    introspection_url: str | None,
    extra: str,
    tuned: bool = False,
) -> str:
    user, uid, gid = _identity()
    root = os.geteuid() == 0
    login_user = "dovenull" if root else user
    internal_user = "dovecot" if root else user
    chroot = "" if root else "chroot ="
    # For thousands of logins from 127.0.0.1 (bench/check_all.py) the defaults are too low.
    cores = os.cpu_count() or 1
    top = "default_process_limit = 1024\ndefault_client_limit = 4096\n" if tuned else ""
    # One long-lived login process (not one per connection): a TLS session it issued can
    # be resumed by the next connection (test_probe.py proves the probe resumes them).
    login = (
        f"service_count = 0\n  process_min_avail = {cores}\n  client_limit = 4096"
        if tuned
        else "service_count = 0\n  process_limit = 1"
    )
    many = "client_limit = 8192" if tuned else ""
    oauth = ""
    if introspection_url:
        (workdir / "oauth2.conf.ext").write_text(
            f"introspection_mode = post\nintrospection_url = {introspection_url}\n"
            "force_introspection = yes\nusername_attribute = username\n"
            "active_attribute = active\nactive_value = true\ntimeout_msecs = 3000\n"
        )
        oauth = f"""
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {workdir}/oauth2.conf.ext
}}"""
    return f"""
base_dir = {workdir}/run
state_dir = {workdir}/state
instance_name = mm-{ports["imap"]}
log_path = {workdir}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = {min(uid, 1)}
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{workdir}/mail/%u/Maildir
mail_max_userip_connections = 1000
pop3_uidl_format = %08Xu%08Xv

{top}
service anvil {{
  {many}
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  {many}
}}
service imap {{
  process_limit = 1024
}}
service imap-login {{
  {chroot}
  {login}
  inet_listener imap {{
    port = {ports["imap"]}
  }}
  inet_listener imaps {{
    port = {ports["imaps"]}
    ssl = yes
  }}
}}
service pop3-login {{
  {chroot}
  {login}
  inet_listener pop3 {{
    port = {ports["pop3"]}
  }}
  inet_listener pop3s {{
    port = {ports["pop3s"]}
    ssl = yes
  }}
}}
passdb {{
  driver = static
  args = noauthenticate nodelay=yes
  result_success = continue
  result_failure = continue
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN {workdir}/passwd
}}{oauth}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={workdir}/mail/%u
}}
{extra}
"""


def _wait_for_greetings(server: Dovecot, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(server.ports)
    while pending:
        if server.process and server.process.poll() is not None:
            raise RuntimeError(
                f"dovecot exited: {(server.workdir / 'stderr.log').read_text()}{server.log()}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"dovecot did not greet on {sorted(pending)}: {server.log()}")
        for name, port in list(pending.items()):
            if _greets(port, tls=name.endswith("s"), ca=server.ca_file):
                del pending[name]
        time.sleep(0.05)


def _greets(port: int, *, tls: bool, ca: Path) -> bool:
    import ssl

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            if tls:
                context = ssl.create_default_context(cafile=str(ca))
                with context.wrap_socket(sock, server_hostname="localhost") as wrapped:
                    return wrapped.recv(100).startswith((b"* OK", b"+OK"))
            return sock.recv(100).startswith((b"* OK", b"+OK"))
    except OSError:
        return False
