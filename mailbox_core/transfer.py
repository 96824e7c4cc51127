"""Export and import of mailbox settings (CSV or JSON), never exporting a secret.

An import is all-or-nothing: every row is validated by the same rules as the form
(and names must be unique in the file and in the database) before one transaction
writes them all. Secrets present in an import file are encrypted at once and are only
ever reported back as "set".

A CSV export is safe to open in a spreadsheet (OWASP "CSV injection"): every data cell
is quoted, and a text cell that a spreadsheet would run as a formula gets a leading
apostrophe, which the import removes again so an export re-imports exactly. The rule,
with T one of ``= + - @`` TAB CR: export prefixes ``'`` to a cell matching ``'*T``
(apostrophes, then T); import removes one ``'`` from a cell matching ``'+T``. So
``=1+1`` is written ``'=1+1``, a name that really is ``'=x`` is written ``''=x``, and
``'plain`` (no T after the apostrophes) is written and read unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailbox_core.errors import FieldError, MailboxCoreError, ValidationFailed
from mailbox_core.repository import name_key
from mailbox_core.schemas import (
    LABELS,
    SECRET_FIELDS,
    SETTING_FIELDS,
    MailboxCreate,
    MailboxPublic,
    OAuthProvider,
    parse_create,
    plain,
)

#: Columns of an export, in form order; an import also accepts the secret columns.
EXPORT_FIELDS = list(SETTING_FIELDS)
IMPORT_FIELDS = set(LABELS)
MAX_IMPORT_BYTES = 20 * 1024 * 1024
#: A cell a spreadsheet would run, after any apostrophes: what export neutralises.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
#: A cell export neutralised: import removes exactly the one apostrophe export added.
_NEUTRALISED = re.compile(r"'+[=+\-@\t\r]")


class ImportFileError(MailboxCoreError):
    """The import file cannot be read at all (format, encoding, shape)."""


@dataclass(frozen=True)
class RowProblem:
    """One problem of one import row (rows count from 1, as a spreadsheet shows them)."""

    row: int
    error: FieldError

    def __str__(self) -> str:
        return f"Row {self.row}: {self.error}"


@dataclass
class ImportPlan:
    """A validated import: the rows to create, or the problems that stop it."""

    rows: list[MailboxCreate] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.rows)

    def preview(self) -> list[dict[str, Any]]:
        """What the rows would create, secrets shown only as set / not set."""
        return [
            {
                **{LABELS[f]: plain(getattr(r, f)) for f in EXPORT_FIELDS},
                **{LABELS[f]: "set" if getattr(r, f) else "" for f in SECRET_FIELDS},
            }
            for r in self.rows
        ]


class ImportFailed(MailboxCoreError):
    """The import was refused; nothing was written. ``problems`` lists every row's issues."""

    def __init__(self, problems: list[RowProblem]) -> None:
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"Nothing was imported. {shown}{more}")


def export_rows(mailboxes: list[MailboxPublic]) -> list[dict[str, Any]]:
    """Settings of each mailbox, by field name (no secrets, no IDs)."""
    return [{f: plain(getattr(m, f)) for f in EXPORT_FIELDS} for m in mailboxes]


def to_json(mailboxes: list[MailboxPublic]) -> str:
    return json.dumps(export_rows(mailboxes), indent=2, ensure_ascii=False) + "\n"


def to_csv(mailboxes: list[MailboxPublic]) -> str:
    """Settings as CSV, every data cell quoted and formula-like text neutralised."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(EXPORT_FIELDS)
    # Quoting every cell keeps a CR or LF inside Comments inside its cell.
    writer = csv.DictWriter(
        buffer, fieldnames=EXPORT_FIELDS, lineterminator="\n", quoting=csv.QUOTE_ALL
    )
    for row in export_rows(mailboxes):
        writer.writerow({k: _csvplain(v) for k, v in row.items()})
    return buffer.getvalue()


def read_rows(content: bytes, filename: str) -> list[dict[str, Any]]:
    """Rows of a .json (a list of objects) or .csv (a header row) file."""
    if len(content) > MAX_IMPORT_BYTES:
        raise ImportFileError(f"{filename} is larger than {MAX_IMPORT_BYTES // 2**20} MB.")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{filename} is not UTF-8 text.") from exc
    if filename.lower().endswith(".json"):
        return _json_rows(text, filename)
    if filename.lower().endswith(".csv"):
        return _csv_rows(text, filename)
    raise ImportFileError(f"{filename}: import a .csv or .json file.")


def plan_import(
    rows: Sequence[Mapping[str, Any]],
    taken_names: set[str],
    operator_apps: Collection[OAuthProvider] = (),
) -> ImportPlan:
    """Validate every row; ``taken_names`` are the casefolded names already in use."""
    plan = ImportPlan()
    seen = set(taken_names)
    for number, raw in enumerate(rows, start=1):
        unknown = sorted(set(raw) - IMPORT_FIELDS - {"id"})
        if unknown:
            column = _shown(unknown[0])
            plan.problems.append(
                RowProblem(number, FieldError(column, column, "is not a column this app knows"))
            )
            continue
        try:
            created = parse_create({k: v for k, v in raw.items() if k != "id"}, operator_apps)
        except ValidationFailed as exc:  # anything else is not the row's fault: it surfaces
            plan.problems += [RowProblem(number, e) for e in exc.errors]
            continue
        key = name_key(created.name)
        if key in seen:
            plan.problems.append(
                RowProblem(
                    number,
                    FieldError(
                        "name", LABELS["name"], f"a mailbox named “{created.name}” already exists"
                    ),
                )
            )
            continue
        seen.add(key)
        plan.rows.append(created)
    if not rows:
        plan.problems.append(RowProblem(0, FieldError("file", "File", "has no rows")))
    return plan


def _json_rows(text: str, filename: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"{filename} is not valid JSON (line {exc.lineno}).") from exc
    except RecursionError as exc:
        raise ImportFileError(
            f"{filename} is nested too deeply: a mailbox is one flat JSON object."
        ) from exc
    except ValueError as exc:  # Python's limit on the digits of an int (sys.int_info)
        raise ImportFileError(f"{filename} holds a number with too many digits.") from exc
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ImportFileError(f"{filename} must hold a JSON list of objects, one per mailbox.")
    return [dict(r) for r in data]


def _csv_rows(text: str, filename: str) -> list[dict[str, Any]]:
    try:
        reader = csv.DictReader(io.StringIO(text))
        rows = [dict(r) for r in reader]
    except csv.Error as exc:
        raise ImportFileError(f"{filename} is not valid CSV: {exc}.") from exc
    if not reader.fieldnames:
        raise ImportFileError(f"{filename} has no header row.")
    # Blank cells mean "not given", so defaults apply as on the form.
    return [
        {k: _unneutralise(k, v) for k, v in r.items() if k is not None and v not in (None, "")}
        for r in rows
    ]


def _csvplain(value: Any) -> Any:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, str) and _FORMULA.match(value):
        return "'" + value
    return "" if value is None else value


def _unneutralise(column: str, value: Any) -> Any:
    # Secrets are never exported, so their cells are taken exactly as written.
    if column in EXPORT_FIELDS and isinstance(value, str) and _NEUTRALISED.match(value):
        return value[1:]
    return value


def _shown(text: str) -> str:
    """A file's text fit to show in a message: escapes for what is not text, shortened."""
    printable = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return printable if len(printable) <= 60 else printable[:59] + "…"
