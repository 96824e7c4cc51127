"""Issue 11, D2: a hostile server cannot make one check use much memory.

Each case runs one probe in a fresh Python process against a flooding server in this
one, and reads the child's peak resident memory (VmHWM in /proc/self/status) before and
after: a figure, asserted against a 200 MB budget above the child's start. Before the
byte budgets, these servers took a check to 0.67–1.15 GB within a 5 s timeout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.support import hostile, netfence
from tests.support.tls import make_certificate

pytestmark = [pytest.mark.network]

BUDGET_KB = 200 * 1024

CHILD = """
import json, sys
from mailbox_core.probe import ProbeTarget, run_probe
from mailbox_core.schemas import MailboxType

def peak_kb():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))

kind, port, ca_file = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None
start = peak_kb()
target = ProbeTarget(MailboxType(kind), "localhost", port, "a@example.com", "pw",
                     ssl_enabled=ca_file is not None)
result = run_probe(target, timeout=5, ca_file=ca_file)
failed = result.failed_step
print(json.dumps({"start_kb": start, "peak_kb": peak_kb(), "summary": result.summary,
                  "step": failed and failed.name, "problem": failed and failed.problem}))
"""


@pytest.fixture
def servers() -> Iterator[hostile.Servers]:
    running = hostile.Servers()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def localhost_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("certs"), "local", ["localhost"])


def check_in_a_child(kind: str, port: int, ca_file: Path | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(port), str(ca_file or "")],
        cwd=ROOT,
        env=netfence.subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    figures: dict[str, Any] = json.loads(done.stdout)
    start, grown = figures["start_kb"] / 1024, (figures["peak_kb"] - figures["start_kb"]) / 1024
    print(f"\n{kind}: {figures['summary']!r}; start {start:.1f} MB, grown {grown:.1f} MB")
    return figures


CASES = {
    "pop3 endless capa, plain": ("POP3", hostile.pop3_endless_capa, False),
    "pop3 endless capa, tls": ("POP3", hostile.pop3_endless_capa, True),
    "imap endless capability lines": ("IMAP", hostile.imap_endless_capability, False),
    "imap 1 GB literal": ("IMAP", hostile.imap_huge_literal, False),
}


@pytest.mark.parametrize("case", CASES)
def test_a_flooding_server_costs_a_check_little_memory(
    servers: hostile.Servers, localhost_cert: tuple[Path, Path], case: str
) -> None:
    kind, behaviour, tls = CASES[case]
    port = servers.start(behaviour, tls=localhost_cert if tls else None)
    figures = check_in_a_child(kind, port, localhost_cert[0] if tls else None)
    assert figures["peak_kb"] - figures["start_kb"] <= BUDGET_KB
    assert (figures["step"], figures["problem"]) == ("Greeting", "too much")
    assert figures["summary"] == (
        f"localhost port {port} sent too much in answer to the capabilities request: "
        "more than 256 kB"
    ), "the server greeted: this is not 'sent no greeting' (D13)"
