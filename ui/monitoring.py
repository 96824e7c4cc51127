"""Scheduled checks on the pages: the checker's heartbeat banner, a mailbox's pause with
"Retry now", its history and uptime, its alerts with snooze and maintenance window, and
the list's badges and failing-over-time chart. Small render functions for the pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from mailbox_core.access import Actor, Permission
from mailbox_core.checks import MailboxChecker
from mailbox_core.errors import MailboxCoreError
from mailbox_core.monitoring import Monitor, MonitorStatus, rules
from mailbox_core.monitoring.history import VitalPoint
from mailbox_core.monitoring.status import VitalSigns
from ui.results import show_probe

PREFIX = "monitoring"


def key(*parts: object) -> str:
    return ".".join([PREFIX, *(str(p) for p in parts)])


def banner(monitor: Monitor) -> bool:
    """The Mailboxes page's warning when scheduled checks stopped; True when shown."""
    beat = monitor.heartbeat()
    if beat.stale:
        st.warning(beat.message, icon=":material/schedule:")
    return beat.stale


LAST_SEEN = "monitoring.last_check_id"


def follow_checks(monitor: Monitor, seconds: int) -> None:
    """Every ``seconds``, redraw the page if a check was recorded since it was drawn (by
    check-due, the worker, another user): a wall dashboard shows what the checker found.

    A fragment asks one cheap question on its own timer; only an answer that changed
    reruns the page (ticks follow mailboxes, so a selection survives it)."""
    if seconds <= 0:
        return
    st.session_state[LAST_SEEN] = monitor.last_check_id()

    @st.fragment(run_every=timedelta(seconds=seconds))
    def look() -> None:
        try:
            newest = monitor.last_check_id()
        except (MailboxCoreError, SQLAlchemyError):
            return  # the database is away: the page's next full run says so
        if newest != st.session_state.get(LAST_SEEN):
            st.rerun()

    look()


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


def vital_signs(monitor: Monitor, mailbox_id: int, actor: Actor, days: float = 7) -> None:
    """Quota, backlog and the sign-in offer: latest values, events, charts over time."""
    st.subheader("Vital signs")
    status = monitor.status_of(mailbox_id)
    vitals, now = status.vitals, monitor.now()
    if vitals is None or vitals.read_at is None:
        st.caption("Not read yet: the first check that signs in reads them.")
        return
    _vital_metrics(vitals, now)
    _vital_events(monitor, vitals, mailbox_id, actor)
    _vital_charts(monitor.vital_points(mailbox_id, days))


def _vital_metrics(vitals: VitalSigns, now: datetime) -> None:
    quota, unseen, oldest = st.columns(3)
    quota.metric(
        "Quota",
        "unknown" if vitals.quota_ratio is None else f"{int(vitals.quota_ratio * 100)} %",
        help="POP3 and servers without the QUOTA extension do not say: unknown, not OK.",
    )
    unseen.metric("Unseen", "unknown" if vitals.unseen is None else f"{vitals.unseen:,}")
    age = vitals.backlog_age(now)
    waited = "unknown" if vitals.unseen is None else "—" if age is None else rules.short_age(age)
    oldest.metric("Oldest unseen waits", waited)
    warnings = ", ".join(str(t) for t in vitals.quota_warnings) or "none"
    backlog = f"{vitals.backlog_minutes} min" if vitals.backlog_minutes else "off"
    st.caption(
        f"Read {vitals.read_at:%Y-%m-%d %H:%M} UTC · quota warnings at {warnings} % · backlog "
        f"alert {backlog} (set under Advanced)."
    )


def _vital_events(monitor: Monitor, vitals: VitalSigns, mailbox_id: int, actor: Actor) -> None:
    if vitals.quota_level is not None:
        st.warning(
            f"Near full: past the {vitals.quota_level} % warning.", icon=":material/storage:"
        )
    if vitals.backlog_over:
        st.warning(
            "Backlog: the oldest unseen message waits longer than the threshold; the helpdesk "
            "may have stopped reading this mailbox.",
            icon=":material/hourglass_bottom:",
        )
    if vitals.password_gone:
        st.error(
            "This server no longer accepts password sign-in: switch the mailbox to OAuth or an "
            "app password.",
            icon=":material/password:",
        )
    if vitals.offer_changed_at is not None:
        st.warning(
            f"**Sign-in rules changed** {vitals.offer_changed_at:%Y-%m-%d %H:%M} UTC: "
            f"{vitals.offer_before} → {vitals.offer}. The badge stays until someone "
            "acknowledges it or a later check signs in under the new rules.",
            icon=":material/policy:",
        )
        if actor.can(Permission.EDIT):
            st.button(
                "Acknowledge",
                key=key("acknowledge", mailbox_id),
                on_click=_attempt,
                args=(mailbox_id, lambda: monitor.acknowledge_offer(mailbox_id, actor=actor)),
            )
    elif vitals.offer:
        st.caption(f"Sign-in offered: {vitals.offer}")
    if vitals.outage_arrived is not None and vitals.outage_from and vitals.outage_until:
        noun = "message" if vitals.outage_arrived == 1 else "messages"
        st.info(
            f"{vitals.outage_arrived:,} {noun} arrived while the mailbox was failing "
            f"({vitals.outage_from:%Y-%m-%d %H:%M} – {vitals.outage_until:%Y-%m-%d %H:%M} UTC).",
            icon=":material/move_to_inbox:",
        )


def _vital_charts(points: list[VitalPoint]) -> None:
    quota = [(p.at, p.quota_ratio * 100) for p in points if p.quota_ratio is not None]
    backlog = [(p.at, p.unseen, p.oldest_unseen_minutes) for p in points if p.unseen is not None]
    if not quota and not backlog:
        st.caption("No quota or backlog recorded yet: the server does not report them (unknown).")
        return
    if quota:
        st.caption("Quota used (%) over time")
        frame = pd.DataFrame(quota, columns=["When", "Quota used (%)"]).set_index("When")
        st.line_chart(frame, height=180)
    if backlog:
        st.caption("Backlog over time: unseen messages and how long the oldest waits")
        frame = pd.DataFrame(backlog, columns=["When", "Unseen", "Oldest unseen (min)"])
        st.line_chart(frame.set_index("When"), height=180)


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
