"""Use cases: validate -> encrypt -> persist; always returns Public models."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from mailbox_core import connect, listing, repository, tally, twins
from mailbox_core.access import Actor, Permission
from mailbox_core.crypto import SecretBox, UndecryptableSecret
from mailbox_core.db import describe
from mailbox_core.egress import UNGUARDED, EgressPolicy, Resolver
from mailbox_core.errors import (
    ConcurrentEditError,
    FieldError,
    MailboxNotFound,
    SecretDecryptionError,
    SelectionChanged,
    StorageError,
    StoredSecretRefused,
    ValidationFailed,
)
from mailbox_core.listing import (
    AuditFilter,
    ListPage,
    ListView,
    MailboxFilter,
    MailboxQuery,
    search_text,
)
from mailbox_core.models import AuditEvent, Mailbox, MailboxCheck, utcnow
from mailbox_core.monitoring import CheckRecord, Monitor, grants
from mailbox_core.monitoring.store import begin_write
from mailbox_core.schemas import (
    LABELS,
    SECRET_FIELDS,
    SETTING_FIELDS,
    AuditPublic,
    CheckPublic,
    HealthPublic,
    MailboxCreate,
    MailboxPublic,
    MailboxUpdate,
    OAuthProvider,
    Status,
    changed_destination,
    parse_create,
    parse_update,
    plain,
    secrets_used,
)
from mailbox_core.transfer import ImportFailed, ImportPlan, RowProblem, plan_import
from mailbox_core.twins import Twin

log = logging.getLogger(__name__)


@dataclass(frozen=True, repr=False)
class Credentials:
    """Decrypted secrets of one mailbox, for the connection test; never leaves the server."""

    password: str | None
    client_secret: str | None
    refresh_token: str | None

    def __repr__(self) -> str:
        return "Credentials(<hidden>)"


class MailboxService:
    """Mailbox use cases over one engine and one secret box."""

    def __init__(
        self,
        engine: Engine,
        box: SecretBox,
        monitor: Monitor | None = None,
        *,
        operator_apps: Collection[OAuthProvider] = (),
        resolver: Resolver | None = None,
        egress: EgressPolicy = UNGUARDED,
    ) -> None:
        self._engine = engine
        self._box = box
        #: Looks Host up on save for "same mailbox twice" (None: compare host names only).
        self._resolver = resolver
        self._egress = egress
        #: Scheduled checks, alerts and the never-harm rules (mailbox_core/monitoring/).
        self.monitor = monitor or Monitor(engine)
        #: Providers with an operator app (see schemas.required_fields).
        self.operator_apps = frozenset(operator_apps)

    def create_mailbox(
        self,
        data: Mapping[str, Any] | MailboxCreate,
        *,
        actor: Actor,
        connected: str | None = None,
    ) -> MailboxPublic:
        """Validate, encrypt the secrets and save a new mailbox; returns it with its ID.

        ``connected``: the form's Connect account reference; the refresh token its consent
        holds becomes the mailbox's (connect.HeldToken.apply), and the consent goes.
        """
        actor.require(Permission.CREATE)
        with self._session() as session:
            held = self._held(session, connected, actor)
            if held is not None and not isinstance(data, MailboxCreate):
                data = held.apply(data)
            create = (
                data if isinstance(data, MailboxCreate) else parse_create(data, self.operator_apps)
            )
            if repository.name_taken(session, name=create.name):
                raise _duplicate(create.name)
            row = self._new_row(create)
            try:
                row = repository.add_mailbox(session, mailbox=row)
                changes: dict[str, Any] = {
                    f: [None, plain(getattr(row, f))]
                    for f in SETTING_FIELDS
                    if getattr(row, f) not in (None, "")
                }
                changes.update({f: "set" for f in SECRET_FIELDS if getattr(create, f)})
                repository.add_audit(session, event=_event("created", row, actor, changes))
                self._connected(session, row, create, held, connected, actor, {})
                session.commit()
            except IntegrityError as exc:  # a concurrent save took the name first
                raise _duplicate(create.name) from exc
            log.info("Created mailbox %s (ID %s)", row.name, row.id)
            return to_public(row)

    def update_mailbox(
        self,
        mailbox_id: int,
        data: Mapping[str, Any],
        *,
        expected_version: int,
        clear: frozenset[str] | set[str] = frozenset(),
        keep_secrets_for_new_destination: bool = False,
        actor: Actor,
        connected: str | None = None,
    ) -> MailboxPublic:
        """Save an edit made on version ``expected_version``; refuse if it moved on.

        A blank secret keeps the stored one, a typed one replaces it, a field in ``clear``
        removes it; secrets of fields that no longer apply are removed. Keeping a stored
        secret while the destination changes (Host, Port, …) needs
        ``keep_secrets_for_new_destination``, else StoredSecretRefused. ``connected``: as
        for ``create_mailbox`` (a connected token counts as typed).
        """
        actor.require(Permission.EDIT)
        with self._session() as session:
            row = self._row(session, mailbox_id)
            if row.version != expected_version:
                raise ConcurrentEditError(mailbox_id, row.updated_at)
            held = self._held(session, connected, actor)
            if held is not None:
                data = held.apply(data)
            stored = {f for f in SECRET_FIELDS if getattr(row, f"{f}_encrypted")} - set(clear)
            update = parse_update(data, stored, self.operator_apps)
            if repository.name_taken(session, name=update.name, exclude_id=mailbox_id):
                raise _duplicate(update.name)
            moved = _moved_secrets(row, update)
            if moved and not keep_secrets_for_new_destination:
                raise StoredSecretRefused(moved, changed_destination(row, update), LABELS)
            changes = self._apply(row, update)
            changes.update({f: "kept for the new destination" for f in moved})
            if not changes:
                return to_public(row)
            row.updated_at = utcnow()
            session.add(row)
            repository.add_audit(session, event=_event("updated", row, actor, changes))
            self.monitor.settings_changed(session, mailbox_id)  # ends a pause: due at once
            self._connected(session, row, update, held, connected, actor, changes)
            try:
                session.commit()
            except StaleDataError as exc:
                raise ConcurrentEditError(mailbox_id, None) from exc
            except IntegrityError as exc:
                raise _duplicate(update.name) from exc
            return to_public(row)

    def delete_mailboxes(self, mailbox_ids: list[int], *, actor: Actor) -> int:
        """Delete mailboxes (their checks and health go with them); returns how many."""
        actor.require(Permission.DELETE)
        with self._session() as session:
            return self._delete(session, _possible_ids(mailbox_ids), actor)

    def set_status(self, mailbox_ids: list[int], status: Status, *, actor: Actor) -> int:
        """Activate or deactivate mailboxes; returns how many changed."""
        actor.require(Permission.SET_STATUS)
        with self._session() as session:
            return self._set_status(session, _possible_ids(mailbox_ids), status, actor)

    def delete_matching(self, where: MailboxFilter, *, expected: int, actor: Actor) -> int:
        """Delete every mailbox the filter matches, if that is the ``expected`` number.

        "Select all N matching": the person confirmed N, so a filter that matches another
        number by now (someone added or changed mailboxes) raises SelectionChanged and
        nothing is deleted. IDs are read and deleted in the same transaction.
        """
        actor.require(Permission.DELETE)
        with self._session() as session:
            return self._delete(session, self._confirmed(session, where, expected), actor)

    def set_status_matching(
        self, where: MailboxFilter, status: Status, *, expected: int, actor: Actor
    ) -> int:
        """Activate or deactivate every mailbox the filter matches (see delete_matching)."""
        actor.require(Permission.SET_STATUS)
        with self._session() as session:
            ids = self._confirmed(session, where, expected)
            return self._set_status(session, ids, status, actor)

    def matching_ids(self, where: MailboxFilter) -> list[int]:
        """The IDs of every mailbox the filter matches, in ID order."""
        with self._session() as session:
            return listing.matching_ids(session, where=where, key_ids=self._box.key_ids)

    def list_view(self, query: MailboxQuery) -> ListView:
        """The list's summary and one page of the view, in SQL (no secret is opened).

        A page past the end (the list shrank since the link was made) becomes the last one.
        """
        key_ids = self._box.key_ids
        with self._session() as session:
            counts = listing.summary(session, key_ids=key_ids)
            matching = (
                counts.total
                if query.filter.empty
                else listing.count_matching(session, where=query.filter, key_ids=key_ids)
            )
            size = query.page_size
            shown = ListPage([], matching, 1, size)
            query = replace(query, page=min(max(query.page, 1), shown.pages))
            rows = listing.page_rows(session, query=query, key_ids=key_ids)
        if counts.compact_due:
            self.compact_tally()
        return ListView(counts, ListPage(rows, matching, query.page, size))

    def compact_tally(self) -> None:
        """Fold the summary's tally rows (housekeeping: no count changes, nothing audited).

        It runs on a page view now and then; a database too busy to take the write lock
        just leaves it to the next view.
        """
        try:
            with self._session() as session:
                begin_write(session)
                tally.compact(session)
                session.commit()
        except StorageError as exc:
            log.warning("The list's tally was left for later: %s", exc)

    def twins_of(self, mailbox_id: int) -> list[Twin]:
        """Other saved mailboxes with the same server and account (lowest IDs first)."""
        with self._session() as session:
            row = self._row(session, mailbox_id)
            return twins.twins(
                session,
                account=row.account,
                host=row.host,
                addresses=row.server_addresses,
                exclude_id=mailbox_id,
            )

    def same_mailbox(self, *, host: str, account: str, mailbox_id: int | None = None) -> list[Twin]:
        """Saved mailboxes that unsaved form values would duplicate; no lookup is made.

        ``mailbox_id``: the mailbox being edited (left out; its stored addresses are used
        while Host is unchanged). Blank values match nothing.
        """
        if not host.strip() or not account.strip():
            return []
        with self._session() as session:
            addresses = None
            if mailbox_id is not None and _possible_id(mailbox_id):
                addresses = twins.stored_addresses(session, mailbox_id=mailbox_id, host=host)
            return twins.twins(
                session, account=account, host=host, addresses=addresses, exclude_id=mailbox_id
            )

    def unreadable_names(self, limit: int = 5) -> list[tuple[int, str]]:
        """ID and name of the first mailboxes with a secret the configured keys cannot open."""
        with self._session() as session:
            return listing.unreadable_names(session, key_ids=self._box.key_ids, limit=limit)

    def copy_name(self, mailbox_id: int, *, actor: Actor) -> str:
        """A free name for a duplicate: "X (copy)", "X (copy 2)", …"""
        actor.require(Permission.DUPLICATE)
        with self._session() as session:
            name = self._row(session, mailbox_id).name
            candidate, number = f"{name} (copy)", 1
            while repository.name_taken(session, name=candidate):
                number += 1
                candidate = f"{name} (copy {number})"
            return candidate[:100]

    def list_audit(self, mailbox_id: int | None = None, limit: int = 500) -> list[AuditPublic]:
        """Audit events, newest first, optionally for one mailbox."""
        with self._session() as session:
            events = repository.list_audit(session, mailbox_id=mailbox_id, limit=limit)
            return [AuditPublic.model_validate(e) for e in events]

    def audit_page(
        self, where: AuditFilter, *, page: int = 1, page_size: int = 50
    ) -> tuple[list[AuditPublic], int]:
        """One page of audit events, newest first, and how many match the filter in all."""
        with self._session() as session:
            events, matching = listing.audit_page(
                session, where=where, page=page, page_size=page_size
            )
            return [AuditPublic.model_validate(dict(e)) for e in events], matching

    def audit_actors(self) -> list[str]:
        """Everyone (and every command) the audit trail names, alphabetically."""
        with self._session() as session:
            return listing.audit_actors(session)

    def import_mailboxes(
        self, rows: Sequence[Mapping[str, Any]], *, actor: Actor
    ) -> list[MailboxPublic]:
        """Create every row in one transaction, or nothing (raises ImportFailed)."""
        actor.require(Permission.IMPORT)
        with self._session() as session:
            plan = self._plan_import(session, rows)
            if not plan.ok:
                raise ImportFailed(plan.problems)
            created = []
            for create in plan.rows:
                row = self._new_row(create, resolve=False)  # a lookup per row: too slow
                session.add(row)
                created.append(row)
            session.flush()
            for row in created:
                repository.add_audit(session, event=_event("imported", row, actor, {}))
            try:
                session.commit()
            except IntegrityError as exc:  # a concurrent save took a name
                raise ImportFailed(
                    [
                        RowProblem(
                            0,
                            FieldError(
                                "name",
                                LABELS["name"],
                                "a name was taken while importing; try again",
                            ),
                        )
                    ]
                ) from exc
            log.info("Imported %s mailboxes", len(created))
            return [to_public(row) for row in created]

    def plan_import(self, rows: Sequence[Mapping[str, Any]]) -> ImportPlan:
        """Validate import rows against the form's rules and the names in use; writes nothing."""
        with self._session() as session:
            return self._plan_import(session, rows)

    def list_mailboxes(self, where: MailboxFilter | None = None) -> list[MailboxPublic]:
        """Every mailbox (or those the filter matches), oldest first. For exports and
        scripts: the page lists through ``list_view``, which builds no model per row."""
        with self._session() as session:
            if where is None:
                return [to_public(row) for row in repository.list_mailboxes(session)]
            ids = listing.matching_ids(session, where=where, key_ids=self._box.key_ids)
            return [to_public(row) for rows in _chunked_rows(session, ids) for row in rows]

    def get_mailbox(self, mailbox_id: int) -> MailboxPublic:
        """One mailbox by ID; raises MailboxNotFound."""
        with self._session() as session:
            return to_public(self._row(session, mailbox_id))

    def count_mailboxes(self) -> int:
        """How many mailboxes are registered."""
        with self._session() as session:
            return repository.count_mailboxes(session)

    def get_credentials(self, mailbox_id: int) -> Credentials:
        """Decrypt a mailbox's secrets; raises SecretDecryptionError naming the mailbox."""
        with self._session() as session:
            return self._credentials(self._row(session, mailbox_id))

    def mailboxes_for_check(
        self, mailbox_ids: list[int] | None = None, *, skip_missing: bool = False
    ) -> list[tuple[MailboxPublic, Credentials | SecretDecryptionError]]:
        """Mailboxes (all active by default) with their decrypted secrets, in one session.

        Check all loads everything up front so its worker threads only touch the network.
        A missing ID raises MailboxNotFound, or is left out with ``skip_missing`` (a
        scheduled claim of a mailbox deleted meanwhile).
        """
        with self._session() as session:
            ids = repository.active_mailbox_ids(session) if mailbox_ids is None else mailbox_ids
            rows = repository.get_mailboxes(session, mailbox_ids=_possible_ids(ids))
            loaded = []
            for mailbox_id in ids:
                row = rows.get(mailbox_id)
                if row is None and skip_missing:
                    continue
                if row is None:
                    raise MailboxNotFound(mailbox_id)
                try:
                    credentials: Credentials | SecretDecryptionError = self._credentials(row)
                except SecretDecryptionError as exc:
                    credentials = exc
                loaded.append((to_public(row), credentials))
            return loaded

    def undecryptable_mailboxes(self) -> list[MailboxPublic]:
        """Mailboxes with a secret that none of the configured keys made (by key ID)."""
        with self._session() as session:
            ids = listing.matching_ids(
                session, where=MailboxFilter(unreadable=True), key_ids=self._box.key_ids
            )
            rows = repository.get_mailboxes(session, mailbox_ids=ids)
            return [to_public(rows[i]) for i in ids]

    def identify_keys(self) -> int:
        """Record which configured key made each secret whose key is not known yet.

        Secrets stored before key IDs existed (migration 0007), or by a key that was not
        configured at the time, are tried against the configured keys once here; the list
        then counts unreadable secrets from the IDs alone. Returns how many it identified.
        """
        found = 0
        with self._session() as session:
            unknown = repository.secrets_of_unknown_key(session, unknown=listing.UNKNOWN_KEY)
            for row_id, field, token in unknown:
                identifier = self._box.key_id_of(token)
                if identifier is not None:
                    found += repository.set_key_id(
                        session, mailbox_id=row_id, field=field, token=token, key_id=identifier
                    )
            session.commit()
        if found:
            log.info("Identified the encryption key of %s stored secrets", found)
        return found

    def record_checks(self, checks: Sequence[MailboxCheck | CheckRecord]) -> None:
        """Store connection-test results and update each mailbox's health, in one go.

        The monitor decides in the same transaction (next check, pause, backoff, alerts),
        so every way of checking follows the same rules.
        """
        records = [c if isinstance(c, CheckRecord) else CheckRecord(c) for c in checks]
        with self._session() as session:
            begin_write(session)
            repository.add_checks(session, checks=[r.check for r in records])
            self.monitor.after_checks(session, records)
            session.commit()

    def recent_checks(self, mailbox_id: int, limit: int = 20) -> list[CheckPublic]:
        """The latest connection tests of one mailbox, newest first."""
        with self._session() as session:
            rows = repository.list_checks(session, mailbox_id=mailbox_id, limit=limit)
            return [CheckPublic.model_validate(row) for row in rows]

    def health_of(self, mailbox_id: int) -> HealthPublic | None:
        """One mailbox's health (None when it was never checked)."""
        with self._session() as session:
            row = repository.get_health(session, mailbox_id=mailbox_id)
            return HealthPublic.model_validate(row) if row else None

    def health(self) -> dict[int, HealthPublic]:
        """Current health per mailbox ID (mailboxes never checked are absent)."""
        with self._session() as session:
            return {
                row.mailbox_id: HealthPublic.model_validate(row)
                for row in repository.list_health(session)
            }

    def replace_refresh_token(self, mailbox_id: int, refresh_token: str, *, replaces: str) -> bool:
        """Store a refresh token the provider rotated, in place of ``replaces``.

        Not an edit: the version and "last changed" stay as they are, so an editor's form
        (or a cron check rotating a token mid-edit) is not refused as a conflict. Stored
        only while the mailbox still holds ``replaces`` (compared and swapped in one
        statement): a token someone typed meanwhile is never overwritten. Returns whether
        it was stored.
        """
        if not _possible_id(mailbox_id):
            return False
        with self._session() as session:
            current = repository.get_refresh_token(session, mailbox_id=mailbox_id)
            if current is None or self._box.decrypt_or_none(current) != replaces:
                return False
            stored = repository.swap_refresh_token(
                session,
                mailbox_id=mailbox_id,
                expected=current,
                token=self._box.encrypt(refresh_token),
                key_id=self._box.primary_key_id,
            )
            session.commit()
        if stored:
            log.info("Stored the rotated refresh token of mailbox %s", mailbox_id)
        return stored

    def rotate_keys(self, *, actor: Actor) -> tuple[int, int]:
        """Re-encrypt every secret with the first key, all or nothing.

        Returns (mailboxes, secrets) re-encrypted. A secret no configured key opens stops
        the rotation with its mailbox named, and nothing is changed.
        """
        actor.require(Permission.ROTATE_KEYS)
        mailboxes = secrets = 0
        with self._session() as session:
            rows = repository.list_mailboxes(session)
            for row in rows:
                changed = False
                for field in SECRET_FIELDS:
                    token = getattr(row, f"{field}_encrypted")
                    if token is None:
                        continue
                    try:
                        setattr(row, f"{field}_encrypted", self._box.rotate(token))
                    except UndecryptableSecret as exc:
                        session.rollback()
                        raise SecretDecryptionError(row.id, row.name, LABELS[field]) from exc
                    setattr(row, f"{field}_key_id", self._box.primary_key_id)
                    secrets += 1
                    changed = True
                if changed:
                    mailboxes += 1
                    session.add(row)
            _commit(session, rows)
        log.info("Re-encrypted %s secrets of %s mailboxes with the first key", secrets, mailboxes)
        return mailboxes, secrets

    # -- helpers

    def _plan_import(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> ImportPlan:
        return plan_import(rows, repository.name_keys(session), self.operator_apps)

    def _held(
        self, session: Session, connected: str | None, actor: Actor
    ) -> connect.HeldToken | None:
        if not connected:
            return None
        return connect.take_held(session, self._box, form=connected, actor=actor)

    def _connected(
        self,
        session: Session,
        row: Mailbox,
        saved: MailboxCreate,
        held: connect.HeldToken | None,
        connected: str | None,
        actor: Actor,
        changes: Mapping[str, Any],
    ) -> None:
        """Record "account connected" when the held token was saved; the form's consents go.

        A new refresh token starts a new grant (grants.replaced): a connected one from when
        the provider issued it, to the account it named; a typed or cleared one unknown.
        """
        token = saved.refresh_token.get_secret_value() if saved.refresh_token else None
        assert row.id is not None
        if held is not None and token == held.token:
            repository.add_audit(
                session, event=_event("account connected", row, actor, held.audit())
            )
            grants.replaced(session, row.id, connected_at=held.connected_at, subject=held.account)
        elif "refresh_token" in changes:
            grants.replaced(session, row.id)
        if connected:
            repository.delete_consents(session, form=connected, actor=actor.name)

    def _confirmed(self, session: Session, where: MailboxFilter, expected: int) -> list[int]:
        ids = listing.matching_ids(session, where=where, key_ids=self._box.key_ids)
        if len(ids) != expected:
            raise SelectionChanged(expected, len(ids))
        return ids

    def _delete(self, session: Session, ids: list[int], actor: Actor) -> int:
        deleted = 0
        for rows in _chunked_rows(session, ids):
            for row in rows:
                snapshot = {f: [plain(getattr(row, f)), None] for f in SETTING_FIELDS}
                repository.add_audit(session, event=_event("deleted", row, actor, snapshot))
                session.delete(row)
            _flush(session, rows)
            deleted += len(rows)
        session.commit()
        return deleted

    def _set_status(self, session: Session, ids: list[int], status: Status, actor: Actor) -> int:
        action = "activated" if status is Status.ACTIVE else "deactivated"
        changed = 0
        for rows in _chunked_rows(session, ids):
            for row in rows:
                if row.status == status:
                    continue
                changes = {"status": [plain(row.status), status.value]}
                row.status, row.updated_at = status, utcnow()
                session.add(row)
                if status is Status.ACTIVE and row.id is not None:
                    self.monitor.settings_changed(session, row.id)  # due at once
                repository.add_audit(session, event=_event(action, row, actor, changes))
                changed += 1
            _flush(session, rows)
        session.commit()
        return changed

    def _credentials(self, row: Mailbox) -> Credentials:
        return Credentials(**{field: self._decrypt(row, field) for field in SECRET_FIELDS})

    def _new_row(self, create: MailboxCreate, *, resolve: bool = True) -> Mailbox:
        text = search_text(create.name, create.host, create.account, create.comments)
        return Mailbox.model_validate(
            create.model_dump(exclude=set(SECRET_FIELDS)),
            update={
                "name_key": repository.name_key(create.name),
                "search_text": text,
                "account_key": twins.account_key(create.account),
                "server_key": twins.server_key(create.host),
                "server_addresses": self._addresses(create.host, create.port) if resolve else None,
                **self._encrypt(create),
            },
        )

    def _addresses(self, host: str, port: int) -> str | None:
        if self._resolver is None:
            return None
        return twins.resolve(host, port, self._resolver, self._egress)

    def _twin_keys(self, row: Mailbox) -> None:
        """The keys "same mailbox twice" compares; Host is looked up again when it changed
        (or its last lookup failed)."""
        row.account_key = twins.account_key(row.account)
        server = twins.server_key(row.host)
        if server != row.server_key or row.server_addresses is None:
            row.server_addresses = self._addresses(row.host, row.port)
        row.server_key = server

    def _apply(self, row: Mailbox, update: MailboxUpdate) -> dict[str, Any]:
        """Copy an edit onto the row; returns the audit changes (secrets never by value)."""
        changes: dict[str, Any] = {}
        for field in SETTING_FIELDS:
            old, new = plain(getattr(row, field)), plain(getattr(update, field))
            if old != new:
                changes[field] = [old, new]
                setattr(row, field, getattr(update, field))
        row.name_key = repository.name_key(update.name)
        row.search_text = search_text(row.name, row.host, row.account, row.comments)
        self._twin_keys(row)
        for field in SECRET_FIELDS:
            if field in update.kept_secrets:
                continue
            secret: SecretStr | None = getattr(update, field)
            column = f"{field}_encrypted"
            if secret is None:
                if getattr(row, column) is not None:
                    setattr(row, column, None)
                    setattr(row, f"{field}_key_id", None)
                    changes[field] = "cleared"
            else:
                setattr(row, column, self._box.encrypt(secret.get_secret_value()))
                setattr(row, f"{field}_key_id", self._box.primary_key_id)
                changes[field] = "changed"
        return changes

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with Session(self._engine, expire_on_commit=False) as session:
                yield session
        except OperationalError as exc:
            raise StorageError(
                f"The database at {describe(self._engine)} could not be reached: {_first_line(exc)}"
            ) from exc
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StorageError(f"The database refused the change: {_first_line(exc)}") from exc

    def _row(self, session: Session, mailbox_id: int) -> Mailbox:
        if not _possible_id(mailbox_id):  # 2**63 would overflow SQLite, 2**31 PostgreSQL
            raise MailboxNotFound(mailbox_id)
        row = repository.get_mailbox(session, mailbox_id=mailbox_id)
        if row is None:
            raise MailboxNotFound(mailbox_id)
        return row

    def _encrypt(self, create: MailboxCreate) -> dict[str, str | None]:
        """Each secret's ciphertext and the ID of the key that made it (None when unset)."""
        encrypted: dict[str, str | None] = {}
        for field in SECRET_FIELDS:
            secret: SecretStr | None = getattr(create, field)
            encrypted[f"{field}_encrypted"] = (
                self._box.encrypt(secret.get_secret_value()) if secret else None
            )
            encrypted[f"{field}_key_id"] = self._box.primary_key_id if secret else None
        return encrypted

    def _decrypt(self, row: Mailbox, field: str) -> str | None:
        token = getattr(row, f"{field}_encrypted")
        if token is None:
            return None
        try:
            return self._box.decrypt(token)
        except UndecryptableSecret as exc:
            raise SecretDecryptionError(row.id, row.name, LABELS[field]) from exc


def to_public(row: Mailbox) -> MailboxPublic:
    """Convert a row to its Public model (no secrets, only whether each is set)."""
    tokens = _secret_tokens(row)
    return MailboxPublic.model_validate(
        row,
        update={f"has_{field}": tokens[field] is not None for field in SECRET_FIELDS},
    )


#: The largest ID a mailbox can have (PostgreSQL's INTEGER); larger ones cannot exist.
MAX_ID = 2**31 - 1


def _possible_id(mailbox_id: int) -> bool:
    return 1 <= mailbox_id <= MAX_ID


def _possible_ids(mailbox_ids: Sequence[int]) -> list[int]:
    return [i for i in mailbox_ids if _possible_id(i)]


def _commit(session: Session, rows: Iterable[Mailbox]) -> None:
    """Commit a change to loaded rows; a row someone saved or deleted meanwhile refuses it.

    Every UPDATE and DELETE carries the version it read (version_id_col): 0 rows
    matched means another change came first, and nothing of this one is kept.
    """
    _unless_stale(session, rows, session.commit)


def _flush(session: Session, rows: Sequence[Mailbox]) -> None:
    """Write one chunk of a bulk change now (see _commit), then let its rows go."""
    _unless_stale(session, rows, session.flush)
    session.expunge_all()  # a bulk change over "all matching" holds one chunk at a time


def _unless_stale(session: Session, rows: Iterable[Mailbox], write: Callable[[], None]) -> None:
    """Run ``write``; a stale row (see _commit) rolls it all back as the concurrent-edit error."""
    names = _names(rows)  # before a rollback expires them
    try:
        write()
    except StaleDataError as exc:
        session.rollback()
        raise ConcurrentEditError(
            None, None, f"{names} changed or went away while this was being done"
        ) from exc


def _names(rows: Iterable[Mailbox], shown: int = 5) -> str:
    rows = list(rows)
    names = ", ".join(f"“{row.name}”" for row in rows[:shown])
    return f"{names} and {len(rows) - shown:,} more" if len(rows) > shown else names


#: Rows a bulk change loads at once (also under every database's bound-parameter limit).
CHUNK = 500


def _chunked_rows(session: Session, ids: list[int]) -> Iterator[list[Mailbox]]:
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows = repository.get_mailboxes(session, mailbox_ids=chunk)
        yield [rows[i] for i in chunk if i in rows]


def _moved_secrets(row: Mailbox, update: MailboxUpdate) -> list[str]:
    """Stored secrets an edit keeps, uses, and would send to a changed destination."""
    if not changed_destination(row, update):
        return []
    return [f for f in secrets_used(update) if f in update.kept_secrets]


def _secret_tokens(row: Mailbox) -> dict[str, str | None]:
    return {field: getattr(row, f"{field}_encrypted") for field in SECRET_FIELDS}


def _duplicate(name: str) -> ValidationFailed:
    return ValidationFailed(
        [FieldError("name", LABELS["name"], f"a mailbox named “{name}” already exists")]
    )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _event(action: str, row: Mailbox, actor: Actor, changes: dict[str, Any]) -> AuditEvent:
    return AuditEvent(
        actor=actor.name[:254],
        actor_subject=actor.subject[:254] if actor.subject else None,
        action=action,
        mailbox_id=row.id,
        mailbox_name=row.name,
        changes=changes,
    )
