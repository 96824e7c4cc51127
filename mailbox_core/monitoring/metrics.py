"""The Prometheus registry (prometheus-client): few labels, counts read from the database.

Served by the worker and by ``check-due --loop`` with ``--metrics-port``. Gauges are read
from the database at every scrape (mailboxes by state and provider, paused mailboxes,
mailboxes showing each vital sign, the last sweep and whether the checker is stale; the
quota and backlog per mailbox unless MAILBOX_METRICS_PER_MAILBOX is off), so any
runner's endpoint shows the whole deployment; the checks counter and the duration
histogram count this process.
"""

from __future__ import annotations

from collections.abc import Iterator
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from mailbox_core.listing import VitalFilter
from mailbox_core.monitoring.monitor import Monitor
from mailbox_core.monitoring.status import STATES
from mailbox_core.probe import ProbeResult

_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Database(Collector):
    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        counts = self.monitor.counts()
        mailboxes = GaugeMetricFamily(
            "mailbox_mailboxes",
            "Mailboxes by state (inactive, never_checked, paused, failing, healthy) and "
            "sign-in provider",
            labels=["state", "provider"],
        )
        for (state, provider), number in sorted(
            counts.items(), key=lambda i: STATES.index(i[0][0])
        ):
            mailboxes.add_metric([state, provider], number)
        yield mailboxes
        paused = sum(n for (state, _), n in counts.items() if state == "paused")
        yield GaugeMetricFamily(
            "mailbox_paused",
            "Mailboxes whose scheduled sign-ins are paused after a refused sign-in",
            value=paused,
        )
        yield _signs(self.monitor)
        if self.monitor.settings.metrics_per_mailbox:
            yield from _vital_gauges(self.monitor)
        beat = self.monitor.heartbeat()
        last = beat.last_sweep_at.timestamp() if beat.last_sweep_at else 0.0
        yield GaugeMetricFamily(
            "mailbox_last_sweep_timestamp_seconds",
            "When the last scheduled sweep started (0: never)",
            value=last,
        )
        yield GaugeMetricFamily(
            "mailbox_scheduler_stale",
            "1 when no scheduled sweep has run for three ticks",
            value=1.0 if beat.stale else 0.0,
        )


def _signs(monitor: Monitor) -> Metric:
    """Mailboxes showing each vital sign: every sign, 0 included, so a rule can say "> 0"."""
    signs = GaugeMetricFamily(
        "mailbox_vital_signs",
        "Mailboxes showing each vital sign (near_full, backlog, rules_changed, no_password)",
        labels=["sign"],
    )
    found = monitor.sign_counts()
    for sign in VitalFilter:
        signs.add_metric([sign.value.replace("-", "_")], found.get(sign, 0))
    return signs


def _vital_gauges(monitor: Monitor) -> Iterator[Metric]:
    """Quota ratio and oldest-unseen age per mailbox (one label: its ID), where known."""
    quota = GaugeMetricFamily(
        "mailbox_quota_ratio",
        "Share of the fullest quota resource in use, 0-1 (absent: unknown)",
        labels=["mailbox_id"],
    )
    oldest = GaugeMetricFamily(
        "mailbox_oldest_unseen_age_seconds",
        "How long the oldest unseen message has waited (0: none unseen; absent: unknown)",
        labels=["mailbox_id"],
    )
    for reading in monitor.readings():
        label = [str(reading.mailbox_id)]
        if reading.quota_ratio is not None:
            quota.add_metric(label, reading.quota_ratio)
        if reading.backlog_seconds is not None:
            oldest.add_metric(label, reading.backlog_seconds)
    yield quota
    yield oldest


class Metrics:
    """This process's registry; ``observe`` is the checker's observer."""

    def __init__(self, monitor: Monitor) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.checks = Counter(
            "mailbox_checks", "Checks run by this process, by result", ["result"],
            registry=self.registry,
        )  # fmt: skip
        self.duration = Histogram(
            "mailbox_check_duration_seconds", "How long checks took (this process)",
            buckets=_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.registry.register(_Database(monitor))

    def observe(self, result: ProbeResult) -> None:
        if result.skipped:
            self.checks.labels(result="skipped").inc()
            return
        self.checks.labels(result="ok" if result.ok else "failed").inc()
        self.duration.observe(result.elapsed_ms / 1000)

    def text(self) -> str:
        return generate_latest(self.registry).decode()

    def serve(self, port: int, address: str = "127.0.0.1") -> tuple[WSGIServer, Thread]:
        """Serve /metrics on ``address:port`` in a daemon thread."""
        return start_http_server(port, addr=address, registry=self.registry)
