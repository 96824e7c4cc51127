"""Checks that run themselves, safely (issue 13). Never imports streamlit.

rules.py      pure decisions: whose fault a failure is, next check, pause (1 h doubling
              to 24 h) and backoff (interval × 2^k, ≤ 1 h), the alert state machine,
              expiry thresholds, maintenance windows
schedule.py   due mailboxes and leases: claim in one statement (FOR UPDATE SKIP LOCKED
              on PostgreSQL, BEGIN IMMEDIATE on SQLite), renew, release
budget.py     failed sign-ins per mail server host in 10 minutes, shared by processes
record.py     where health is recorded, the monitor decides (same transaction)
grants.py     OAuth grant health rows (last used, rotated, subject, failure), unused warning
alerts.py     what alerts say, the operator's channels (SMTP, webhook), delivery, digests
heartbeat.py  sweeps recorded, staleness, MAILBOX_HEARTBEAT_URL, retention
history.py    a mailbox's checks over time, uptime, failing over time
status.py     what the monitor knows of each mailbox (for `health`, pages, metrics)
monitor.py    Monitor: the one object the service, checker, CLI and pages use
sweep.py      `check-due`: claim, check with the concurrent checker, record, repeat
metrics.py    the Prometheus registry (prometheus-client)
worker.py     the Procrastinate App and its tasks (`worker`, PostgreSQL only)
"""

from mailbox_core.monitoring.monitor import AlertPublic, Monitor
from mailbox_core.monitoring.record import CheckRecord, Origin
from mailbox_core.monitoring.status import MonitorStatus

__all__ = ["AlertPublic", "CheckRecord", "Monitor", "MonitorStatus", "Origin"]
