"""Scheduled checks on the pages: the checker's heartbeat banner, a mailbox's pause with
"Retry now", its history and uptime, its alerts with snooze and maintenance window, and
the list's badges and failing-over-time chart. Small render functions for the pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from mailbox_core.access import Actor, Permission
from mailbox_core.checks import MailboxChecker
from mailbox_core.errors import MailboxCoreError
from mailbox_core.monitoring import Monitor, MonitorStatus
from ui.results import show_probe

F = TypeVar("F", bound=Callable[..., Any])
PREFIX = "monitoring"


def key(*parts: object) -> str:
    return ".".join([PREFIX, *(str(p) for p in parts)])


def banner(monitor: Monitor) -> bool:
    """The Mailboxes page's warning when scheduled checks stopped; True when shown."""
    beat = monitor.heartbeat()
    if beat.stale:
        st.warning(beat.message, icon=":material/schedule:")
    return beat.stale


def refreshing(seconds: float = 30) -> Callable[[F], F]:
    """A fragment that reruns itself, so a wall dashboard shows what the checker found."""
    return st.fragment(run_every=timedelta(seconds=seconds))


def badges(status: MonitorStatus, now: datetime) -> str:
    """The list's Monitoring column: "Paused (…)", expiry warnings, snooze; "" if none."""
    shown = []
    if status.paused(now):
        shown.append(f"Paused ({(status.pause_reason or 'sign-in refused')[:80]})")
    shown += [n for n in status.notes(now) if not n.startswith("paused")]
    return " · ".join(shown)


def list_badges(monitor: Monitor) -> dict[int, str]:
    """Mailbox ID → its badges, for a column of the Mailboxes table."""
    now = monitor.now()
    return {s.mailbox_id: badges(s, now) for s in monitor.statuses()}


def failing_chart(monitor: Monitor, hours: float = 24) -> None:
    """Failing mailboxes at the end of each scheduled sweep (the list's chart)."""
    points = monitor.failing_over_time(hours)
    if not points:
        st.caption("No scheduled sweep yet: the failing count over time appears once they run.")
        return
    frame = pd.DataFrame(points, columns=["When", "Failing"]).set_index("When")
    st.line_chart(frame, height=160)


def pause_panel(monitor: Monitor, checker: MailboxChecker, mailbox_id: int, actor: Actor) -> None:
    """The Edit page's pause: why, the next attempt, and "Retry now" (a person's test)."""
    status = monitor.status_of(mailbox_id)
    now = monitor.now()
    if status.paused(now):
        assert status.paused_until is not None
        st.warning(
            f"**Paused**: scheduled sign-ins stopped after the server refused one, so the "
            f"account is not locked. {status.pause_reason or ''} Next attempt "
            f"{status.paused_until:%Y-%m-%d %H:%M} UTC; saving new settings also ends the pause.",
            icon=":material/pause_circle:",
        )
        if actor.can(Permission.TEST):
            st.button(
                "Retry now",
                key=key("retry", mailbox_id),
                icon=":material/replay:",
                on_click=_retry,
                args=(checker, mailbox_id, actor),
            )
    elif status.active and status.next_check_at is not None:
        st.caption(f"Next scheduled check {status.next_check_at:%Y-%m-%d %H:%M} UTC.")
    for note in status.notes(now):
        if not note.startswith("paused"):
            st.info(note[:1].upper() + note[1:] + ".", icon=":material/event:")
    result = st.session_state.get(key("retried", mailbox_id))
    if result is not None:
        show_probe(result, "Retry now")


def _retry(checker: MailboxChecker, mailbox_id: int, actor: Actor) -> None:
    try:
        st.session_state[key("retried", mailbox_id)] = checker.retry_now(mailbox_id, actor=actor)
    except MailboxCoreError as exc:
        st.session_state[key("failure", mailbox_id)] = str(exc)


def history(monitor: Monitor, mailbox_id: int, days: float = 7) -> None:
    """Uptime over 24 h / 7 d / 30 d, then each check's result and latency over time."""
    uptime = monitor.uptime(mailbox_id)
    for column, (span, share) in zip(st.columns(len(uptime)), uptime.items(), strict=True):
        column.metric(f"Uptime {span}", "—" if share is None else f"{share:.1%}")
    points = monitor.points(mailbox_id, days)
    if not points:
        st.caption("No checks recorded yet.")
        return
    frame = pd.DataFrame(
        {
            "When": [p.at for p in points],
            "Latency (ms)": [p.latency_ms for p in points],
            "Result": ["OK" if p.ok else "Failed" for p in points],
        }
    )
    st.scatter_chart(frame, x="When", y="Latency (ms)", color="Result", height=220)


def alerts(monitor: Monitor, mailbox_id: int, actor: Actor) -> None:
    """Recorded alerts, newest first; snooze and the maintenance window for editors."""
    failure = st.session_state.pop(key("failure", mailbox_id), None)
    if failure:
        st.error(failure)
    status = monitor.status_of(mailbox_id)
    now = monitor.now()
    if actor.can(Permission.EDIT):
        _snooze(monitor, status, now, actor)
        _window(monitor, status, actor)
    sent = monitor.alerts_of(mailbox_id)
    if not sent:
        st.caption("No alerts for this mailbox.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "When": a.created_at,
                    "Alert": a.subject,
                    "Status": a.status,
                    "Delivered": a.delivery,
                }
                for a in sent
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={"When": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")},
    )


def _snooze(monitor: Monitor, status: MonitorStatus, now: datetime, actor: Actor) -> None:
    if status.snoozed(now):
        assert status.snoozed_until is not None
        st.caption(f"Alerts snoozed until {status.snoozed_until:%Y-%m-%d %H:%M} UTC.")
        st.button(
            "End snooze",
            key=key("unsnooze", status.mailbox_id),
            on_click=_attempt,
            args=(status.mailbox_id, lambda: monitor.snooze(status.mailbox_id, None, actor=actor)),
        )
        return
    # A horizontal container sizes each button to its label (columns cut it at 800 px).
    row = st.container(horizontal=True, gap="small")
    for label, span in (("Snooze 1 h", 1), ("Snooze 1 day", 24)):
        row.button(
            label,
            key=key("snooze", span, status.mailbox_id),
            icon=":material/snooze:",
            on_click=_attempt,
            args=(
                status.mailbox_id,
                lambda span=span: monitor.snooze(
                    status.mailbox_id, now + timedelta(hours=span), actor=actor
                ),
            ),
        )


def _window(monitor: Monitor, status: MonitorStatus, actor: Actor) -> None:
    mailbox_id = status.mailbox_id
    text_key, zone_key = key("window", mailbox_id), key("zone", mailbox_id)
    if status.window and text_key not in st.session_state:
        span, _, named = status.window.partition(" ")
        st.session_state[text_key], st.session_state[zone_key] = span, named
    times, zone = st.columns(2, vertical_alignment="bottom")
    times.text_input(
        "Maintenance window", key=text_key, placeholder="02:00–03:00",
        help="Daily; failures inside it are recorded but alert nobody.",
    )  # fmt: skip
    zone.text_input("Time zone", key=zone_key, placeholder="UTC")

    def store() -> None:
        window = st.session_state.get(text_key) or None
        monitor.set_window(mailbox_id, window, st.session_state.get(zone_key) or "UTC", actor=actor)

    st.button("Save window", key=key("save_window", mailbox_id), on_click=_attempt,
                args=(mailbox_id, store))  # fmt: skip


def _attempt(mailbox_id: int, action: Callable[[], None]) -> None:
    try:
        action()
    except MailboxCoreError as exc:
        st.session_state[key("failure", mailbox_id)] = str(exc)
