"""Same mailbox twice: a (server, account) pair registered more than once.

Two pollers on one mailbox make duplicate tickets, so the form and the list flag such
mailboxes (a warning: some teams poll one mailbox twice on purpose). Two mailboxes are
the same when their Accounts match (any case) and their servers do: the host names
match after lower-casing and dropping a trailing dot, or, where both resolved on save,
the addresses they resolved to are the same. Mailbox Type and Port do not matter: IMAP
and POP3 of one account read one mailbox.

The comparison runs in SQL over stored keys (``account_key``, ``server_key``,
``server_addresses``), so the list flags rows at any size without per-row Python. Host is
resolved only on save, through the egress guard's rules (``EgressPolicy.resolve``: one
lookup of the normalised name, refused answers refused), within ``RESOLVE_TIMEOUT``; a
lookup that fails stores nothing, and the mailbox is compared by host name only.
"""

from __future__ import annotations

import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlmodel import Session, SQLModel

from mailbox_core import models  # noqa: F401  (registers the tables read below)
from mailbox_core.egress import EgressPolicy, EgressRefused, Resolver

log = logging.getLogger(__name__)

#: Seconds a save waits for DNS before it goes on without addresses.
RESOLVE_TIMEOUT = 2.0
_MAILBOX = SQLModel.metadata.tables["mailbox"]
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="twin-dns")


class Twin(NamedTuple):
    """Another mailbox with the same server and account."""

    id: int
    name: str


def account_key(account: str) -> str:
    """The Account as compared: trimmed and casefolded."""
    return account.strip().casefold()


def server_key(host: str) -> str:
    """The Host as compared: trimmed, lower-cased, without a trailing dot."""
    return host.strip().lower().removesuffix(".")


def addresses_key(answers: list[tuple[Any, ...]]) -> str | None:
    """Resolver answers as one stored value: the distinct addresses, sorted (None: none)."""
    found = sorted({str(answer[4][0]) for answer in answers})
    text = " ".join(found)
    return text if found and len(text) <= 1000 else None


def resolve(host: str, port: int, resolver: Resolver, egress: EgressPolicy) -> str | None:
    """The addresses ``host`` resolves to, as stored; None when it cannot be told now."""
    future = _pool.submit(egress.resolve, host, port, resolver)
    try:
        return addresses_key(future.result(timeout=RESOLVE_TIMEOUT))
    except FutureTimeout:
        log.info("Looking up %s took over %g s: compared by name only", host, RESOLVE_TIMEOUT)
    except (OSError, EgressRefused, UnicodeError) as exc:
        log.info("Could not look up %s (%s): compared by name only", host, _reason(exc))
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return "no such name, or DNS is down"
    return type(exc).__name__


def same_as(
    other: Any, *, account: Any, server: Any, addresses: Any, exclude: Any
) -> ColumnElement[bool]:
    """``other`` (a mailbox table or alias) is the same mailbox as the values given.

    Addresses compare only where both are known: NULL = NULL is not true in SQL, and a
    Python None is left out rather than turned into IS NULL.
    """
    server_match = other.c.server_key == server
    if addresses is not None:
        server_match = or_(server_match, other.c.server_addresses == addresses)
    return and_(other.c.account_key == account, other.c.id != exclude, server_match)


def twin_of() -> Any:
    """A scalar subquery: the lowest ID of another mailbox that is the same as the row's."""
    row, other = _MAILBOX.c, _MAILBOX.alias("twin")
    condition = same_as(
        other,
        account=row.account_key,
        server=row.server_key,
        addresses=row.server_addresses,
        exclude=row.id,
    )
    return select(func.min(other.c.id)).where(condition).correlate(_MAILBOX).scalar_subquery()


def twins(
    session: Session,
    *,
    account: str,
    host: str,
    addresses: str | None,
    exclude_id: int | None = None,
    limit: int = 5,
) -> list[Twin]:
    """Mailboxes that are the same as ``account`` on ``host`` (lowest IDs first)."""
    m = _MAILBOX.c
    query = (
        select(m.id, m.name)
        .where(
            same_as(
                _MAILBOX,
                account=account_key(account),
                server=server_key(host),
                addresses=addresses,
                exclude=exclude_id if exclude_id is not None else -1,
            )
        )
        .order_by(m.id)
        .limit(limit)
    )
    return [Twin(int(i), str(n)) for i, n in session.connection().execute(query)]


def stored_addresses(session: Session, *, mailbox_id: int, host: str) -> str | None:
    """The addresses stored for a mailbox, if it is still saved with ``host``."""
    m = _MAILBOX.c
    query = select(m.server_key, m.server_addresses).where(m.id == mailbox_id)
    row = session.connection().execute(query).first()
    if row is None or row[0] != server_key(host):
        return None
    return None if row[1] is None else str(row[1])
