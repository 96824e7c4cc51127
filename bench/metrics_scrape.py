"""A Prometheus scrape at scale, measured against a bare collector over the same rows.

    .venv/bin/python -m bench.metrics_scrape [--mailboxes 100000] [--database-url URL]

Seeds N mailboxes as bench/list_page.py does (half with a health row), and gives the
checked IMAP half vital signs (quota, unseen, oldest unseen), as the checker would.
Then, interleaved in one run (the order rotates each round, so each goes first in turn;
round 0 warms up):

- the product: ``Metrics(monitor).text()``, what ``check-due --loop --metrics-port`` and
  the worker serve at /metrics;
- the product with ``MAILBOX_METRICS_PER_MAILBOX=off`` ("counts only"): the counts of
  mailboxes showing each vital sign instead of a series per mailbox;
- the anchor: a registry with one collector that runs the two queries a scrape cannot do
  without (mailboxes grouped by state and provider; the vital columns of the mailboxes
  whose vitals were read) and emits the same gauge families.

It prints the medians, their ratio, the number of series, and each one's peak RSS in a
fresh process (VmHWM from /proc/self/status). Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.core import GaugeMetricFamily, Metric  # noqa: E402
from prometheus_client.registry import Collector  # noqa: E402
from sqlalchemy import Engine, func, select, text  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

from bench.list_page import _vmhwm_kb, prepare  # noqa: E402
from mailbox_core.bootstrap import open_services  # noqa: E402
from mailbox_core.config import load_settings  # noqa: E402
from mailbox_core.db import make_engine  # noqa: E402
from mailbox_core.monitoring.metrics import Metrics  # noqa: E402

SCRAPES = ("product", "counts only", "bare")


def add_vitals(engine: Engine) -> int:
    """Vital signs on the checked IMAP mailboxes (one monitor row each)."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO mailbox_monitor (mailbox_id, signin_ok, backoff_level, pause_level,"
                " alert_open, alert_sent, backlog_over, backlog_alerted, vitals_at, quota_ratio,"
                " unseen, oldest_unseen_at)"
                " SELECT m.id, true, 0, 0, false, false, false, false, :now,"
                " (m.id % 100) / 100.0, m.id % 7, :oldest"
                " FROM mailbox m JOIN mailbox_health h ON h.mailbox_id = m.id"
                " WHERE m.mailbox_type = 'IMAP'"
            ),
            {"now": now, "oldest": now - timedelta(hours=2)},
        )
        return int(connection.execute(text("SELECT count(*) FROM mailbox_monitor")).scalar_one())


class _Bare(Collector):
    """The two queries and the same families, with nothing in between."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        tables = SQLModel.metadata.tables
        m, h, s = tables["mailbox"].c, tables["mailbox_health"].c, tables["mailbox_monitor"].c
        now = datetime.now(UTC)
        states = GaugeMetricFamily("mailbox_mailboxes", "by state", labels=["state", "provider"])
        quota = GaugeMetricFamily("mailbox_quota_ratio", "quota", labels=["mailbox_id"])
        oldest = GaugeMetricFamily(
            "mailbox_oldest_unseen_age_seconds", "age", labels=["mailbox_id"]
        )
        joined = tables["mailbox"].outerjoin(tables["mailbox_health"], h.mailbox_id == m.id)
        grouped = (
            select(m.status, m.oauth_provider, h.last_ok, func.count())
            .select_from(joined)
            .group_by(m.status, m.oauth_provider, h.last_ok)
        )
        vitals = select(s.mailbox_id, s.quota_ratio, s.unseen, s.oldest_unseen_at).where(
            s.vitals_at.is_not(None)
        )
        with self.engine.connect() as connection:
            for status, provider, last_ok, number in connection.execute(grouped):
                states.add_metric([f"{status}-{last_ok}", provider or "password"], number)
            for mailbox_id, ratio, unseen, at in connection.execute(vitals):
                label = [str(mailbox_id)]
                quota.add_metric(label, ratio)
                waited = now - (at if at.tzinfo else at.replace(tzinfo=UTC))
                oldest.add_metric(label, waited.total_seconds() if unseen else 0.0)
        yield states
        yield quota
        yield oldest


def scraper(name: str) -> Callable[[], str]:
    """One scrape's text, as the product serves it or as the bare collector would."""
    settings = load_settings(dict(os.environ), {})
    if name != "bare":
        per_mailbox = name == "product"
        monitor = replace(settings.monitor, metrics_per_mailbox=per_mailbox)
        return Metrics(open_services(replace(settings, monitor=monitor)).monitor).text
    bare = CollectorRegistry(auto_describe=False)
    bare.register(_Bare(make_engine(settings.database_url)))
    return lambda: generate_latest(bare).decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=100_000)
    parser.add_argument("--database-url", help="an empty PostgreSQL database")
    parser.add_argument("--reset", action="store_true", help="empty --database-url first")
    parser.add_argument("--rounds", type=int, default=5, help="counted rounds (plus a warm-up)")
    parser.add_argument("--peak-rss-of", choices=SCRAPES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_rss_of:  # the child: the environment is set up already
        scraper(args.peak_rss_of)()
        print(json.dumps({"vmhwm_kb": _vmhwm_kb()}))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as directory:
        env = prepare(args, Path(directory))
        os.environ.update(env)
        engine = make_engine(env["MAILBOX_DATABASE_URL"])
        with_vitals = add_vitals(engine)
        engine.dispose()
        scrape = {name: scraper(name) for name in SCRAPES}
        times: dict[str, list[float]] = {name: [] for name in SCRAPES}
        sizes: dict[str, int] = {}
        for round_ in range(args.rounds + 1):
            for name in SCRAPES[round_ % 3 :] + SCRAPES[: round_ % 3]:  # each goes first
                started = time.perf_counter()
                body = scrape[name]()
                took = time.perf_counter() - started
                sizes[name] = body.count("\n")
                if round_:
                    times[name].append(took)
        median = {name: statistics.median(t) for name, t in times.items()}
        rss = {name: _peak_rss(name, env) / 1024 for name in SCRAPES}
    backend = env["MAILBOX_DATABASE_URL"].split(":", 1)[0]
    print(f"\n{args.mailboxes:,} mailboxes ({with_vitals:,} with vital signs) on {backend},"
          f" median of {args.rounds} scrapes")  # fmt: skip
    print(f"{'':28}" + "".join(f"{name:>13}" for name in SCRAPES) + f"{'ratio':>9}")
    for label, values, form in (("scrape (s)", median, "{:.3f}"), ("peak RSS (MB)", rss, "{:.0f}")):
        ratio = values["product"] / values["bare"]
        shown = "".join(f"{form.format(values[name]):>13}" for name in SCRAPES)
        print(f"{label:28}{shown}{ratio:>8.2f}x")
    print(f"{'lines of text':28}" + "".join(f"{sizes[name]:>13,}" for name in SCRAPES))
    print("ratio: product / bare")
    return 0


def _peak_rss(name: str, env: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "bench.metrics_scrape", "--peak-rss-of", name],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"peak RSS of {name} failed:\n{done.stdout}{done.stderr}")
    return int(json.loads(done.stdout.strip().splitlines()[-1])["vmhwm_kb"])


if __name__ == "__main__":
    raise SystemExit(main())
