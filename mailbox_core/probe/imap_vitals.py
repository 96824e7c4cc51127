"""The IMAP answers vital signs are read from, parsed without trusting the server.

Each parser takes untagged lines (without their "* ", literals already skipped by the
session) and returns None for what it cannot read: a malformed, huge or hostile value is
an unknown, never an exception and never a guess.

    STATUS INBOX (MESSAGES 4 UNSEEN 3)                   RFC 3501 §7.2.4
    OK [UNSEEN 17] First unseen.                         EXAMINE's first unseen message
    QUOTA "User quota" (STORAGE 10 100 MESSAGE 2 10)     RFC 2087 / RFC 9208
    12 FETCH (INTERNALDATE "17-Jul-1996 02:44:25 -0700")
    SEARCH 2 84 882                                      counted as it is read (Counter)
    ESEARCH (TAG "a5") COUNT 4                           RFC 4731
    ESEARCH (TAG "a4") MIN 17                            RFC 4731, with SAVE (RFC 5182)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone

from mailbox_core.probe.vitals import Quota

#: A count at most this long (digits): IMAP numbers are 32-bit, RFC 9208's usage 63-bit.
_DIGITS = 18
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE = re.compile(
    rb" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})"
)
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]{1,40})"', re.IGNORECASE)
_UNSEEN_CODE = re.compile(rb"OK \[UNSEEN (\d{1,10})\]", re.IGNORECASE)
_ESEARCH_ITEMS = {
    item: re.compile(rb"\b" + item.encode() + rb" (\d{1,10})(?:\s|$)", re.IGNORECASE)
    for item in ("COUNT", "MIN")
}
_ESEARCH_TAG = re.compile(rb'\(TAG "([^"]*)"\)', re.IGNORECASE)
_NUMBERS_ONLY = re.compile(rb"[0-9 \r\n]*")
_TOO_LONG = re.compile(rb"[0-9]{11}")


def number(word: bytes) -> int | None:
    """A non-negative count, or None when ``word`` is not one (or absurdly long)."""
    return int(word) if word.isdigit() and len(word) <= _DIGITS else None


def status(untagged: Iterable[bytes]) -> dict[str, int | None]:
    """The items of the last STATUS answer: {"MESSAGES": 4, "UNSEEN": 3}; {} when none."""
    found: dict[str, int | None] = {}
    for line in untagged:
        if line[:7].upper() != b"STATUS ":
            continue
        start, end = line.rfind(b"("), line.rfind(b")")
        words = line[start + 1 : end].split() if 0 <= start < end else []
        pairs = zip(words[::2], words[1::2], strict=False)
        found = {name.decode(errors="replace").upper(): number(value) for name, value in pairs}
    return found


def first_unseen(untagged: Iterable[bytes]) -> int | None:
    """The sequence number EXAMINE's ``OK [UNSEEN n]`` names; None when absent or 0."""
    for line in untagged:
        if match := _UNSEEN_CODE.match(line):
            return int(match[1]) or None
    return None


def quota(untagged: Iterable[bytes]) -> Quota:
    """INBOX's quota from QUOTA answers; of several roots, each resource's fullest one."""
    best: dict[str, tuple[int | None, int | None]] = {}
    for line in untagged:
        if line[:6].upper() != b"QUOTA ":
            continue
        for name, used, limit in _resources(line):
            if name in ("STORAGE", "MESSAGE") and _fuller((used, limit), best.get(name)):
                best[name] = (used, limit)
    storage, message = best.get("STORAGE", (None, None)), best.get("MESSAGE", (None, None))
    return Quota(storage[0], storage[1], message[0], message[1])


def _resources(line: bytes) -> list[tuple[str, int | None, int | None]]:
    # The list is the last parenthesis: a quoted root name may hold "(" but the list can't.
    start, end = line.rfind(b"("), line.rfind(b")")
    if not 0 <= start < end:
        return []
    words = line[start + 1 : end].split()
    if len(words) % 3:
        return []  # a resource without its usage or limit: nothing in it is certain
    found = []
    for name, used, limit in zip(words[::3], words[1::3], words[2::3], strict=True):
        pair = (number(used), number(limit))
        if None in pair:
            pair = (None, None)  # usage without its limit (or back) says nothing
        found.append((name.decode(errors="replace").upper(), *pair))
    return found


def _fuller(new: tuple[int | None, int | None], old: tuple[int | None, int | None] | None) -> bool:
    if old is None:
        return True
    return _ratio(*new) > _ratio(*old)


def _ratio(used: int | None, limit: int | None) -> float:
    return used / limit if used is not None and limit else -1.0


def internaldate(untagged: Iterable[bytes], sequence: int) -> datetime | None:
    """The INTERNALDATE of message ``sequence`` from FETCH answers, timezone-aware."""
    prefix = b"%d FETCH " % sequence
    for line in untagged:
        if line[: len(prefix)].upper() == prefix and (match := _INTERNALDATE.search(line)):
            return parse_date(match[1])
    return None


def parse_date(text: bytes) -> datetime | None:
    """IMAP's date-time, "17-Jul-1996 02:44:25 -0700", as an aware datetime; None if not one."""
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, zone_h, zone_m = match.groups()
    name = month.decode().capitalize()
    if name not in MONTHS:
        return None
    offset = timedelta(hours=int(zone_h), minutes=int(zone_m)) * (-1 if sign == b"-" else 1)
    try:
        zone = timezone(offset)
        numbers = (int(year), MONTHS.index(name) + 1, int(day), int(hour), int(minute))
        return datetime(*numbers, int(second), tzinfo=zone)
    except ValueError:  # 31 Feb, hour 25, a zone of a day or more
        return None


def imap_date(moment: datetime) -> str:
    """A SEARCH date, "1-Feb-1994" (of ``moment`` in UTC; naive means UTC)."""
    day = (moment.astimezone(UTC) if moment.tzinfo else moment).date()
    return f"{day.day}-{MONTHS[day.month - 1]}-{day.year}"


def esearch(untagged: Iterable[bytes], tag: str, item: str = "COUNT") -> int | None:
    """COUNT (or MIN) of the ESEARCH answer to ``tag`` (one naming another tag is not ours)."""
    for line in untagged:
        if line[:8].upper() != b"ESEARCH ":
            continue
        named = _ESEARCH_TAG.search(line)
        if named and named[1] != tag.encode():
            continue
        if match := _ESEARCH_ITEMS[item].search(line):
            return int(match[1])
    return None


class Counter:
    """Counts the message numbers of one ``SEARCH`` line fed in pieces; keeps no list.

    ``count`` is None once anything but numbers (each at most 10 digits) was seen.
    """

    def __init__(self) -> None:
        self.count: int | None = 0
        self._carry = b""  # a number cut off at the end of the last piece

    def feed(self, piece: bytes) -> None:
        if self.count is None:
            return
        text = self._carry + piece
        cut = max(text.rfind(b" "), text.rfind(b"\r"), text.rfind(b"\n")) + 1
        whole, self._carry = text[:cut], text[cut:]
        if not _NUMBERS_ONLY.fullmatch(whole) or _TOO_LONG.search(whole) or len(self._carry) > 10:
            self.count = None
            return
        self.count += len(whole.split())

    def end(self) -> int | None:
        """The count, once the line is over."""
        self.feed(b"\n")
        return self.count
