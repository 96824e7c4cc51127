"""How many mailboxes each status and verdict holds, kept by the database.

Triggers (migration 0010) append a +1/-1 row to ``mailbox_tally`` for every change that
moves a mailbox between (status, verdict) pairs: created, deleted, activated or
deactivated, checked for the first time, passing after failing or the other way. The
verdict is "ok", "failing" or "none" (never checked). So the list's summary is a sum over
a few rows, at any number of mailboxes, and it is exact: the rows commit with the change
that made them, whoever made it (the app, the CLI, a worker, another process).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select
from sqlmodel import Session

from mailbox_core.models import mailbox_tally

_T = mailbox_tally.c
#: Past this many rows, ``compact`` is due (the sum of a thousand rows is still quick).
COMPACT_AT = 1000


@dataclass(frozen=True)
class Tally:
    """The mailboxes per (status, verdict), and how many rows the sums were made of."""

    counts: dict[tuple[str, str], int]
    rows: int

    @property
    def due_for_compacting(self) -> bool:
        return self.rows > COMPACT_AT


def read(session: Session) -> Tally:
    query = select(_T.status, _T.verdict, func.sum(_T.n), func.count()).group_by(
        _T.status, _T.verdict
    )
    counts: dict[tuple[str, str], int] = {}
    rows = 0
    for status, verdict, total, made_of in session.connection().execute(query):
        if total:
            counts[(status, verdict)] = int(total)
        rows += int(made_of)
    return Tally(counts, rows)


def compact(session: Session) -> int:
    """Fold the rows into one per pair, in the caller's transaction; how many were folded.

    The DELETE comes first, so on SQLite the write lock is held before anything is read.
    On PostgreSQL it removes only the rows its snapshot sees: a change committing
    meanwhile keeps its own rows, and a second compaction at once skips the rows the
    first removed (it waits for them, then finds them gone), so every sum survives.
    """
    connection = session.connection()
    removed = connection.execute(delete(mailbox_tally).returning(_T.status, _T.verdict, _T.n))
    sums: Counter[tuple[str, str]] = Counter()
    folded = 0
    for status, verdict, n in removed:
        sums[(status, verdict)] += n
        folded += 1
    rows = [{"status": s, "verdict": v, "n": n} for (s, v), n in sorted(sums.items()) if n]
    if rows:
        connection.execute(insert(mailbox_tally), rows)
    return folded
