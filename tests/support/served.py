"""Serve a Streamlit script with `streamlit run` and open it in a loopback-only Chromium.

Quirks worth knowing when building sign-in tests on this:

- Use the host name ``127.0.0.1`` everywhere: the app URL the browser opens, ``--server.address``,
  ``[auth].redirect_uri`` and the IdP's URLs. Streamlit binds the identity cookie to the origin of
  ``redirect_uri`` and compares it with the WebSocket's ``Origin`` header; ``localhost`` on one side
  and ``127.0.0.1`` on the other gives an empty ``st.user`` and "Origin mismatch" in the log.
- ``secrets`` is written to ``tmp_path/secrets.toml`` and passed with ``--secrets.files``, which
  *replaces* Streamlit's default search list, so ``~/.streamlit/secrets.toml`` is not read.
  Without ``secrets`` no flag is passed and the defaults apply (as in test_served_app.py).
- The server runs with ``cwd=tmp_path``; Streamlit still reads the ``.streamlit/config.toml``
  beside the entrypoint, so the product's own config applies to ``streamlit_app.py`` (a script
  written into tmp_path gets none).
- Without a ``baseUrlPath`` the auth cookies ``_streamlit_user``/``_streamlit_user_tokens`` have
  ``Path=/``, ``HttpOnly``, ``SameSite=Lax`` and a fixed 30-day ``Max-Age``.
- Chromium gets ``--host-resolver-rules`` that resolve nothing but 127.0.0.1 and localhost, so a
  stray link to a real provider fails with ``ERR_NAME_NOT_RESOLVED`` instead of dialling out.
- Each :func:`new_page` is a fresh browser context: its own cookie jar, i.e. its own user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Resolve nothing but loopback: the browser cannot reach a real provider.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]
VIEWPORT = {"width": 1400, "height": 1000}
HEALTH_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Served:
    """A running `streamlit run`: its base URL (no trailing slash), port and log file."""

    url: str
    port: int
    log_path: Path

    def log(self) -> str:
        """The server's output so far."""
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(tmp_path: Path, env: dict[str, str] | None) -> dict[str, str]:
    """os.environ with an embedded deployment under tmp_path/data, then ``env`` on top."""
    merged = {**os.environ, "MAILBOX_DATA_DIR": str(tmp_path / "data")}
    merged.pop("MAILBOX_DATABASE_URL", None)
    merged.pop("MAILBOX_ENCRYPTION_KEYS", None)
    return {**merged, **(env or {})}


def streamlit_command(entrypoint: str | Path, port: int, extra: Sequence[str]) -> list[str]:
    """The `python -m streamlit run` command line, headless on 127.0.0.1:port."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(entrypoint),
        "--server.headless=true",
        f"--server.port={port}",
        "--server.address=127.0.0.1",
        "--browser.gatherUsageStats=false",
        *extra,
    ]


def wait_healthy(url: str, log_path: Path, timeout: float = HEALTH_TIMEOUT_S) -> None:
    """Poll /_stcore/health until it says "ok"; pytest.fail with the log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as reply:
                if reply.read() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"streamlit did not become healthy in {timeout:.0f} s:\n{log_path.read_text()}")


@contextmanager
def serve(
    tmp_path: Path,
    *,
    entrypoint: str | Path,
    env: dict[str, str] | None = None,
    secrets: str | None = None,
    args: Sequence[str] = (),
) -> Iterator[Served]:
    """Run `streamlit run entrypoint` in tmp_path until the block ends; ``secrets`` is TOML."""
    extra = list(args)
    if secrets is not None:
        secrets_path = tmp_path / "secrets.toml"
        secrets_path.write_text(secrets)
        extra += ["--secrets.files", str(secrets_path)]
    port = free_port()
    log_path = tmp_path / "streamlit.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            streamlit_command(entrypoint, port, extra),
            cwd=tmp_path,
            env=server_env(tmp_path, env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, log_path)
            yield Served(url=url, port=port, log_path=log_path)
        finally:
            stop(process)


def stop(process: subprocess.Popen[Any]) -> None:
    """Terminate the server, and kill it if it does not exit within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def chromium_available() -> bool:
    """Whether the Debian Chromium binary is installed."""
    return os.path.exists(CHROMIUM)


def launch(playwright: Any) -> Any:
    """A headless Chromium that can resolve only loopback names."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def new_page(browser: Any, frames: list[bytes] | None = None) -> Any:
    """A page in a fresh context (own cookies, so own user) recording server websocket frames."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    if frames is not None:
        record_frames(page, frames)
    return page


def record_frames(page: Any, frames: list[bytes]) -> None:
    """Append every websocket frame the server sends to this page to ``frames``."""
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived",
            lambda frame: frames.append(frame if isinstance(frame, bytes) else frame.encode()),
        ),
    )


def chromium(playwright: Any, frames: list[bytes] | None = None) -> Any:
    """A new loopback-only Chromium and a page in it; ``page.context.browser`` makes more."""
    return new_page(launch(playwright), frames)
