"""The Mailboxes page at scale, measured against a bare page over the same rows.

    .venv/bin/python -m bench.list_page [--mailboxes 10000] [--database-url URL] [--rounds 5]

Seeds N mailboxes (half with a health row; some with OAuth secrets) into a fresh SQLite
file, or into the empty PostgreSQL database of ``--database-url`` (``--reset`` empties
one that holds mailboxes). Then, interleaved in one run (the order alternates each round;
round 0 warms up and is not counted):

- the product: AppTest of streamlit_app.py (sign-in gate, st.navigation, the Mailboxes
  page): its first run, and the rerun after selecting a row;
- the anchor, bench/bare_list_page.py: ``pd.read_sql`` of every row's display columns
  joined with health, and a selectable ``st.dataframe``: the same two runs.

It prints the medians and their ratios, and each page's peak RSS: a fresh process per
page runs it (first run and rerun) and reads VmHWM from /proc/self/status (not
ru_maxrss, which keeps the parent's size across fork+exec). With ``--form`` it also times
the New Mailbox rerun after changing Mailbox Type against bench/bare_form.py, the same
widgets under st.navigation: as a server reruns it, and as AppTest starts each run
(``served_reruns``). Not a test: it prints figures.
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
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, func, insert, select  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from mailbox_core.crypto import SecretBox, generate_key  # noqa: E402
from mailbox_core.db import init_db, make_engine  # noqa: E402
from mailbox_core.listing import search_text  # noqa: E402
from mailbox_core.repository import name_key  # noqa: E402
from mailbox_core.twins import account_key, server_key  # noqa: E402

ENTRYPOINT = str(ROOT / "streamlit_app.py")
BARE_LIST = str(ROOT / "bench" / "bare_list_page.py")
BARE_FORM = str(ROOT / "bench" / "bare_form.py")
SELECT_ROW = {"selection": {"rows": [0], "columns": [], "cells": []}}
PAGES = {"product": (ENTRYPOINT, "mailboxes.table"), "bare": (BARE_LIST, "grid")}


# ---------------------------------------------------------------- seeding


def seed(engine: Engine, count: int, box: SecretBox) -> None:
    """N mailboxes straight into the tables (the service's rules are not what is measured)."""
    mailbox = SQLModel.metadata.tables["mailbox"]
    health = SQLModel.metadata.tables["mailbox_health"]
    password = box.encrypt("bench-password")
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for start in range(1, count + 1, 5000):
            stop = min(start + 5000, count + 1)
            rows = [_mailbox(i, password, box.primary_key_id, now) for i in range(start, stop)]
            connection.execute(insert(mailbox), rows)
        ids = connection.execute(select(mailbox.c.id).order_by(mailbox.c.id)).scalars().all()
        checked = [_health(i, now) for i in ids[::2]]
        for start in range(0, len(checked), 5000):
            connection.execute(insert(health), checked[start : start + 5000])


def _mailbox(i: int, password: str, key_id: str, now: datetime) -> dict[str, Any]:
    gmail = i % 7 == 0
    name, host = f"Helpdesk {i:07d}", f"mail{i % 97}.example.com"
    account = f"box{i}@example.com"
    comments = "Intake for the EU region" if i % 5 == 0 else None
    return {
        "name": name,
        "name_key": name_key(name),
        "mailbox_type": "IMAP" if gmail or i % 2 else "POP3",
        "host": "imap.gmail.com" if gmail else host,
        "port": 993 if gmail else 110,
        "account": account,
        "account_key": account_key(account),
        "server_key": server_key("imap.gmail.com" if gmail else host),
        "ssl_enabled": gmail,
        "starttls": False,
        "allow_self_signed": False,
        "allow_plaintext_password": False,
        "status": "Not Active" if i % 10 == 0 else "Active",
        "comments": comments,
        "oauth_enabled": gmail,
        "oauth_provider": "Gmail" if gmail else None,
        "auth_method": None,
        "client_id": "1234.apps.googleusercontent.com" if gmail else None,
        "tenant_id": None,
        "password_encrypted": None if gmail else password,
        "password_key_id": None if gmail else key_id,
        "client_secret_encrypted": password if gmail else None,
        "client_secret_key_id": key_id if gmail else None,
        "refresh_token_encrypted": password if gmail else None,
        "refresh_token_key_id": key_id if gmail else None,
        "search_text": search_text(name, host, account, comments),
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def _health(mailbox_id: int, now: datetime) -> dict[str, Any]:
    ok = mailbox_id % 5 != 0
    at = now - timedelta(minutes=mailbox_id % 600)
    return {
        "mailbox_id": mailbox_id,
        "last_check_at": at,
        "last_ok": ok,
        "last_message": "Signed in and opened INBOX; 3 messages" if ok else "Password refused",
        "last_failed_step": None if ok else "Sign-in",
        "last_latency_ms": 42.0,
        "last_message_count": 3 if ok else None,
        "last_success_at": at if ok else None,
        "consecutive_failures": 0 if ok else 1,
        "failing_since": None if ok else at,
    }


def prepare(args: argparse.Namespace, workdir: Path) -> dict[str, str]:
    """A seeded database and the environment that points the app and the anchor at it."""
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    engine = make_engine(url)
    if args.database_url:
        _empty(engine, args.reset)
    init_db(engine)
    key = generate_key()
    started = time.perf_counter()
    seed(engine, args.mailboxes, SecretBox([key]))
    took = time.perf_counter() - started
    print(f"seeded {args.mailboxes:,} mailboxes in {took:.1f} s ({engine.url.get_backend_name()})")
    settle(engine)
    engine.dispose()
    return {
        "MAILBOX_DATABASE_URL": url,
        "MAILBOX_ENCRYPTION_KEYS": key,
        "MAILBOX_DATA_DIR": str(workdir / "data"),
        "BENCH_DATABASE_URL": engine.url.render_as_string(hide_password=False),
    }


def settle(engine: Engine) -> None:
    """What the app and autovacuum do soon after a bulk load, before anything is timed.

    Freshly inserted PostgreSQL rows have no visibility map and no statistics: counts
    cannot use index-only scans and the planner guesses. A running database is vacuumed
    and analysed on its own; SQLite has neither step (nor needs it here). The first page
    view (or the sweep) folds the summary's tally rows (mailbox_core/tally.py).
    """
    from sqlalchemy import text
    from sqlmodel import Session

    from mailbox_core import tally

    with Session(engine) as session:  # the tally rows the load made, folded as a page would
        tally.compact(session)
        session.commit()
    if engine.url.get_backend_name() != "postgresql":
        return

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))


def _empty(engine: Engine, reset: bool) -> None:
    from sqlalchemy import inspect, text

    tables = set(inspect(engine).get_table_names())
    if "mailbox" in tables:
        with engine.connect() as connection:
            held = connection.execute(
                select(func.count()).select_from(SQLModel.metadata.tables["mailbox"])
            ).scalar_one()
        if held and not reset:
            where = engine.url.render_as_string()
            sys.exit(f"{where} holds {held:,} mailboxes; pass --reset to empty it.")
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


# ---------------------------------------------------------------- timing


def list_runs(page: str) -> tuple[float, float]:
    """One session of a list page: its first run, then the rerun after ticking row 0."""
    script, table_key = PAGES[page]
    at = AppTest.from_file(script, default_timeout=600)
    first = _timed(at.run)
    _ok(at, page)
    at.session_state[table_key] = SELECT_ROW
    rerun = _timed(at.run)
    _ok(at, page)
    if page == "product":
        assert any(c.value.startswith("Selected: “") for c in at.caption), "the tick was not seen"
    return first, rerun


def form_session(page: str) -> AppTest:
    """New Mailbox open (``product``, ``product-apptest``), or the bare form."""
    with served_reruns(page == "product"):
        if page.startswith("product"):
            at = AppTest.from_file(ENTRYPOINT, default_timeout=60).run()
            at.switch_page("pages/new_mailbox.py").run()
        else:
            at = AppTest.from_file(BARE_FORM, default_timeout=60).run()
    _ok(at, page)
    return at


def form_rerun(page: str, at: AppTest, n: int) -> float:
    """One rerun after changing Mailbox Type (POP3 ↔ IMAP).

    ``product`` reruns as a server does; ``product-apptest`` as AppTest starts each run
    (``served_reruns``).
    """
    [kind] = [s for s in at.selectbox if s.label == "Mailbox Type"]
    kind.set_value("IMAP" if n % 2 == 0 else "POP3")
    with served_reruns(page == "product"):
        took = _timed(at.run)
    _ok(at, page)
    return took


@contextmanager
def served_reruns(served: bool) -> Iterator[None]:
    """Start each AppTest run as a server's rerun starts (when ``served``).

    With a pages/ folder beside the entrypoint, Streamlit starts in the legacy
    pages-folder mode, runs the page file alone, and leaves the mode for good once a run
    calls st.navigation (ui.navigation.require_entrypoint). A server does that once;
    AppTest forgets it before every run, so each of its reruns scans pages/ and replays
    the entrypoint from the page. The bare form has no pages/ folder, so it never pays
    that. Here each run starts past that point, as every rerun in a server does.
    """
    if not served:
        yield
        return
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def past_first_run(self: PagesManager, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = past_first_run  # type: ignore[method-assign]
    try:
        yield
    finally:
        PagesManager.__init__ = original  # type: ignore[method-assign]


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _ok(at: AppTest, page: str) -> None:
    if at.exception:
        raise SystemExit(f"{page} raised: {at.exception[0].message}")


def peak_rss(page: str, env: dict[str, str]) -> int:
    """VmHWM (kB) of a fresh process that runs the page's first run and rerun."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.list_page", "--peak-rss-of", page],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode:
        raise SystemExit(f"peak RSS of {page} failed:\n{done.stdout}{done.stderr}")
    return int(json.loads(done.stdout.strip().splitlines()[-1])["vmhwm_kb"])


def _vmhwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


# ---------------------------------------------------------------- report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=10_000)
    parser.add_argument("--database-url", help="an empty PostgreSQL (or other) database")
    parser.add_argument("--reset", action="store_true", help="empty --database-url first")
    parser.add_argument("--rounds", type=int, default=5, help="counted rounds (plus a warm-up)")
    parser.add_argument("--form", action="store_true", help="also time the New Mailbox rerun")
    parser.add_argument("--form-reruns", type=int, default=40)
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS processes")
    parser.add_argument("--peak-rss-of", choices=sorted(PAGES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_rss_of:  # the child of peak_rss: the environment is set up already
        list_runs(args.peak_rss_of)
        print(json.dumps({"vmhwm_kb": _vmhwm_kb()}))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-list-") as directory:
        env = prepare(args, Path(directory))
        os.environ.update(env)
        report_lists(args, env)
        if args.form:
            report_form(args)
    return 0


def report_lists(args: argparse.Namespace, env: dict[str, str]) -> None:
    runs: dict[str, list[tuple[float, float]]] = {"product": [], "bare": []}
    for round_ in range(args.rounds + 1):
        order = ("product", "bare") if round_ % 2 == 0 else ("bare", "product")
        for page in order:
            result = list_runs(page)
            if round_:  # round 0 warms caches and imports for both
                runs[page].append(result)
    first = {p: statistics.median(r[0] for r in rs) for p, rs in runs.items()}
    rerun = {p: statistics.median(r[1] for r in rs) for p, rs in runs.items()}
    backend = env["MAILBOX_DATABASE_URL"].split(":", 1)[0]
    print(f"\n{args.mailboxes:,} mailboxes on {backend}, median of {args.rounds} rounds")
    _row("", "product", "bare", "ratio")
    _figures("first run (s)", first, "{:.3f}")
    _figures("rerun after a tick (s)", rerun, "{:.3f}")
    if not args.no_rss:
        rss = {page: peak_rss(page, env) / 1024 for page in ("product", "bare")}
        _figures("peak RSS, fresh process (MB)", rss, "{:.0f}")


def _row(label: str, product: str, bare: str, ratio: str) -> None:
    print(f"{label:30}{product:>10}{bare:>10}{ratio:>9}")


def _figures(label: str, values: dict[str, float], number: str) -> None:
    ratio = f"{values['product'] / values['bare']:.2f}x"
    _row(label, number.format(values["product"]), number.format(values["bare"]), ratio)


def report_form(args: argparse.Namespace) -> None:
    """The three pages open side by side, rerun in turn (the order turns each time), so a
    machine that speeds up or slows down weighs on each alike."""
    pages = ["product", "product-apptest", "bare"]
    sessions = {page: form_session(page) for page in pages}
    times: dict[str, list[float]] = {page: [] for page in pages}
    count = args.rounds * args.form_reruns
    for n in range(count + 10):  # the first 10 warm up
        for page in pages:
            took = form_rerun(page, sessions[page], n)
            if n >= 10:
                times[page].append(took)
        pages.append(pages.pop(0))
    median = {p: statistics.median(t) * 1000 for p, t in times.items()}
    print(f"\nNew Mailbox rerun after changing Mailbox Type, median of {count}")
    _row("", "product", "bare", "ratio")
    _figures("rerun, as served (ms)", median, "{:.1f}")
    apptest = {"product": median["product-apptest"], "bare": median["bare"]}
    _figures("rerun, AppTest's start (ms)", apptest, "{:.1f}")


if __name__ == "__main__":
    raise SystemExit(main())
