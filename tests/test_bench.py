"""The benchmark script still runs (tiny numbers; figures are printed, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.dovecot]


def test_check_all_bench_runs_and_prints_its_figures(dovecot_server: Any) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.check_all",
            "--mailboxes",
            "6",
            "--rtt-ms",
            "10",
            "--sample",
            "2",
            "--sweep",
            "2,4",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for figure in (
        "sequential stdlib",
        "best bare pool",
        "product check-all",
        "product / best bare pool",
        "(6/6 ok)",
    ):
        assert figure in done.stdout
