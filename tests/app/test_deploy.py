"""The deployment files: `.streamlit/config.toml`, the Dockerfile and `.dockerignore`.

There is no Docker engine here, so the Dockerfile is parsed and its CMD and HEALTHCHECK are
run as plain processes, with the image's ENV but on loopback and a free port.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import streamlit.config

from mailbox_core.transfer import MAX_IMPORT_BYTES
from tests.conftest import ROOT
from tests.support.served import free_port

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CONFIG_TOML = ROOT / ".streamlit" / "config.toml"
LOOPBACK = "127.0.0.1"
# Never through a proxy: these tests talk to loopback only.
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ---------------------------------------------------------------- a small Dockerfile parser


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, ENV, CMD, ...
    args: str
    line: int


@dataclass
class Dockerfile:
    instructions: list[Instruction]
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Dockerfile:
        instructions: list[Instruction] = []
        pending: list[str] = []
        start = 0
        for number, raw in enumerate(text.splitlines(), start=1):
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                continue  # comments are dropped, even inside a continued instruction
            if not pending:
                start = number
            continued = stripped.endswith("\\")
            pending.append(stripped[:-1].strip() if continued else stripped)
            if not continued:
                keyword, _, args = " ".join(pending).partition(" ")
                instructions.append(Instruction(keyword.upper(), args.strip(), start))
                pending = []
        assert not pending, "the Dockerfile ends inside a continued instruction"
        parsed = cls(instructions)
        for instruction in parsed.all("ENV"):
            parsed.env.update(env_pairs(instruction.args))
        return parsed

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
        return found[0]

    @property
    def cmd(self) -> list[str]:
        return exec_form(self.one("CMD").args)

    @property
    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        """The HEALTHCHECK's options and its exec-form command."""
        match = re.fullmatch(r"((?:--\S+\s+)*)CMD\s+(.+)", self.one("HEALTHCHECK").args, re.S)
        assert match, "HEALTHCHECK must be `HEALTHCHECK [--option=value ...] CMD [...]`"
        options = dict(o.removeprefix("--").partition("=")[::2] for o in match[1].split())
        return options, exec_form(match[2])

    @property
    def user_before_cmd(self) -> str | None:
        """The user CMD runs as: the last USER before CMD (None means root)."""
        cmd_line = self.one("CMD").line
        users = [i.args for i in self.all("USER") if i.line < cmd_line]
        return users[-1] if users else None


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) argument list; shell form is refused."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        pytest.fail(f"not a JSON exec-form array: {args!r}")
    assert isinstance(value, list), f"not a JSON array: {args!r}"
    assert value, "empty command"
    assert all(isinstance(item, str) for item in value), f"non-string item: {args!r}"
    return value


def env_pairs(args: str) -> dict[str, str]:
    """`ENV a=1 b="two words"`, or the legacy `ENV key value`."""
    tokens = shlex.split(args)
    if tokens and "=" not in tokens[0]:
        return {tokens[0]: " ".join(tokens[1:])}
    pairs = dict(token.partition("=")[::2] for token in tokens)
    assert all(pairs), f"bad ENV: {args!r}"
    return pairs


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile.parse(DOCKERFILE.read_text())


def test_parser_reads_continuations_comments_and_both_env_forms() -> None:
    parsed = Dockerfile.parse(
        "FROM python:3.11-slim\n"
        "ENV A=1 \\\n"
        "    # a comment inside the continuation\n"
        '    B="two words"\n'
        "ENV C three words\n"
        'CMD ["x", "--y"]\n'
    )
    assert [i.keyword for i in parsed.instructions] == ["FROM", "ENV", "ENV", "CMD"]
    assert parsed.env == {"A": "1", "B": "two words", "C": "three words"}
    assert parsed.cmd == ["x", "--y"]
    assert parsed.user_before_cmd is None


# ---------------------------------------------------------------- the Dockerfile's content


def test_image_is_slim_python_311_and_runs_as_a_user_who_is_not_root(
    dockerfile: Dockerfile,
) -> None:
    assert dockerfile.instructions[0].keyword == "FROM"
    assert dockerfile.one("FROM").args == "python:3.11-slim"
    user = dockerfile.user_before_cmd
    assert user, "no USER before CMD: the app would run as root"
    name, _, group = user.partition(":")
    assert name not in {"root", "0"}
    assert group not in {"root", "0"}
    run = " ".join(i.args for i in dockerfile.all("RUN"))
    assert "pip install --no-cache-dir -r requirements.txt" in run


def test_image_serves_on_the_exposed_port_with_a_healthcheck(dockerfile: Dockerfile) -> None:
    env = dockerfile.env
    assert env["STREAMLIT_SERVER_ADDRESS"] == "0.0.0.0"
    assert dockerfile.one("EXPOSE").args.split() == [env["STREAMLIT_SERVER_PORT"]]
    cmd = dockerfile.cmd
    assert cmd[:3] == ["streamlit", "run", "streamlit_app.py"]
    # Address and port come from ENV only, so a platform (or this test) can override them.
    assert not [a for a in cmd if re.match(r"--server\.(address|port)\b", a)], cmd
    options, check = dockerfile.healthcheck
    assert {"interval", "timeout", "retries"} <= options.keys()
    assert check[:2] == ["python", "-c"]
    assert "_stcore/health" in check[2]
    assert "STREAMLIT_SERVER_BASE_URL_PATH" in check[2]
    assert "STREAMLIT_SERVER_PORT" in check[2]
    # The embedded deployment's state lives on a volume the app user owns.
    assert env["MAILBOX_DATA_DIR"] == "/data"
    assert dockerfile.one("VOLUME").args in {"/data", '["/data"]'}
    assert any("chown" in i.args and "/data" in i.args for i in dockerfile.all("RUN"))


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    entries = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    for needed in (".venv", "data", ".git", ".streamlit/secrets.toml", "**/__pycache__"):
        assert needed in entries, f".dockerignore lacks {needed}"
    assert {".pytest_cache", ".mypy_cache", ".ruff_cache"} <= entries


# ---------------------------------------------------------------- HEALTHCHECK and CMD, run


def healthcheck(dockerfile: Dockerfile, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The image's HEALTHCHECK command, with this Python for `python`."""
    _, check = dockerfile.healthcheck
    return subprocess.run(
        [sys.executable, *check[1:]], env=env, capture_output=True, text=True, timeout=20
    )


def base_env(dockerfile: Dockerfile, **overrides: str) -> dict[str, str]:
    """The image's ENV on top of this process's, minus any outside app/Streamlit setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILBOX_", "STREAMLIT_"))}
    return {**env, **dockerfile.env, **overrides}


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        ok = self.path == "/mbx/_stcore/health"
        self.send_response(type(self).status if ok else 404)
        self.end_headers()
        self.wfile.write(b"ok" if ok else b"not found")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_health() -> Iterator[tuple[int, type[_Health]]]:
    """A loopback server answering `ok` at /mbx/_stcore/health only."""
    handler = type("Health", (_Health,), {})
    server = ThreadingHTTPServer((LOOPBACK, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck_follows_port_and_base_path_and_ignores_proxies(
    dockerfile: Dockerfile, fake_health: tuple[int, type[_Health]]
) -> None:
    port, handler = fake_health
    # A proxy that does not exist (nothing listens on loopback's discard port).
    env = base_env(
        dockerfile,
        STREAMLIT_SERVER_PORT=str(port),
        http_proxy=f"http://{LOOPBACK}:9",
        HTTP_PROXY=f"http://{LOOPBACK}:9",
    )
    for base in ("mbx", "/mbx/"):
        result = healthcheck(dockerfile, {**env, "STREAMLIT_SERVER_BASE_URL_PATH": base})
        assert result.returncode == 0, result.stderr
    assert healthcheck(dockerfile, env).returncode != 0  # /_stcore/health is 404 there
    handler.status = 503
    assert healthcheck(dockerfile, {**env, "STREAMLIT_SERVER_BASE_URL_PATH": "mbx"}).returncode


def get(url: str) -> tuple[int, bytes]:
    try:
        with NO_PROXY.open(url, timeout=2) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("base", ["", "mbx"], ids=["root", "base-url-path"])
def test_image_command_serves_the_app_and_its_healthcheck_follows_it(
    dockerfile: Dockerfile, tmp_path: Path, base: str
) -> None:
    port = free_port()
    env = base_env(
        dockerfile,
        STREAMLIT_SERVER_ADDRESS=LOOPBACK,
        STREAMLIT_SERVER_PORT=str(port),
        MAILBOX_DATA_DIR=str(tmp_path / "data"),
    )
    if base:
        env["STREAMLIT_SERVER_BASE_URL_PATH"] = base
    cmd = dockerfile.cmd
    # Refuse to start anything that could listen beyond loopback.
    assert env["STREAMLIT_SERVER_ADDRESS"] == LOOPBACK
    assert not [a for a in cmd if a.startswith(("--server.address", "--server.port"))]
    assert cmd[0] == "streamlit"
    log_path = tmp_path / "streamlit.log"
    url = f"http://{LOOPBACK}:{port}" + (f"/{base}" if base else "")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", *cmd[1:]],
            cwd=ROOT,  # the image's WORKDIR holds a copy of the checkout
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if get(f"{url}/_stcore/health") == (200, b"ok"):
                        break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not become healthy:\n{log_path.read_text()}")
                time.sleep(0.2)
            status, body = get(f"{url}/")
            assert status == 200
            assert b"<html" in body.lower()
            if base:  # the base path took effect, so the healthcheck must have used it
                assert get(f"http://{LOOPBACK}:{port}/_stcore/health")[0] == 404
            result = healthcheck(dockerfile, env)
            assert result.returncode == 0, result.stderr
        finally:
            process.terminate()
            process.wait(timeout=15)
    assert healthcheck(dockerfile, env).returncode != 0
    output = log_path.read_text()
    assert f"{LOOPBACK}:{port}" in output, output
    assert "not a valid config option" not in output, output
    assert "Error parsing config toml" not in output, output


# ---------------------------------------------------------------- .streamlit/config.toml


def config_items() -> dict[str, Any]:
    """`section.key` -> value for every setting in the project's config.toml."""
    items: dict[str, Any] = {}

    def walk(prefix: str, table: dict[str, Any]) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            else:
                items[f"{prefix}{key}"] = value

    walk("", tomllib.loads(CONFIG_TOML.read_text()))
    return items


def test_every_config_key_is_a_streamlit_option_of_the_right_type() -> None:
    template = streamlit.config._config_options_template
    items = config_items()
    assert items, "config.toml sets nothing"
    unknown = sorted(set(items) - set(template))
    assert not unknown, f"not Streamlit {streamlit.__version__} options: {unknown}"
    for key, value in items.items():
        option = template[key]
        assert not option.deprecated, f"{key} is deprecated"
        if option.type in (bool, int, float, str):
            assert type(value) is option.type, f"{key} = {value!r} is not a {option.type}"


def test_config_suits_a_hosted_internal_tool() -> None:
    items = config_items()
    assert items["client.toolbarMode"] == "viewer"
    assert items["client.showErrorDetails"] in {"type", "none"}
    assert items["browser.gatherUsageStats"] is False
    assert items["server.headless"] is True
    assert items["server.enableXsrfProtection"] is True
    assert items["server.enableCORS"] is True
    assert items.get("server.enableAgentApi", False) is False
    # Large enough for the app's own import limit to be the one a user meets.
    assert MAX_IMPORT_BYTES <= items["server.maxUploadSize"] * 2**20 <= 2 * MAX_IMPORT_BYTES
    # Local runs and hosting choose where to listen; the file must not.
    assert "server.address" not in items
    assert "server.port" not in items
