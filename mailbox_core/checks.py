"""Connection tests of saved and unsaved mailboxes, and Check all with bounded concurrency."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from mailbox_core.access import Actor, Permission
from mailbox_core.config import CheckSettings
from mailbox_core.connect import ConnectService
from mailbox_core.errors import (
    ConfigurationError,
    MailboxCoreError,
    SecretDecryptionError,
    StoredSecretRefused,
)
from mailbox_core.grant import GrantWatch
from mailbox_core.models import MailboxCheck
from mailbox_core.monitoring import CheckRecord, Monitor, Origin
from mailbox_core.monitoring.budget import Gate
from mailbox_core.monitoring.rules import Fault, fault_of
from mailbox_core.oauth import TokenClient, TokenError, TokenRequest, operator_apps
from mailbox_core.probe import (
    Connector,
    ProbeResult,
    ProbeTarget,
    Step,
    StepStatus,
    Vitals,
    default_connector,
    run_probe,
)
from mailbox_core.probe.diagnosis import Problem
from mailbox_core.schemas import (
    LABELS,
    SECRET_FIELDS,
    MailboxCreate,
    MailboxPublic,
    MailboxUpdate,
    OAuthProvider,
    changed_destination,
    parse_create,
    parse_update,
    secrets_used,
)
from mailbox_core.service import Credentials, MailboxService

log = logging.getLogger(__name__)

Progress = Callable[[int, int, MailboxPublic, ProbeResult], None]
Loaded = list[tuple[MailboxPublic, Credentials | SecretDecryptionError]]
#: Recorded in batches: this many results, or this many seconds after the first waiting one.
RECORD_BATCH, RECORD_EVERY = 100, 2.0
#: Keeps a refresh token the provider rotated (given the new one).
Rotation = Callable[[str], None]
#: Checks done, in all, and those still running, longest first: (mailbox, seconds running).
Waiting = Callable[[int, int, list[tuple[MailboxPublic, float]]], None]
#: A finished check in a worker: when it started, its result, its token facts.
_Done = tuple[datetime, ProbeResult, GrantWatch]
#: How often ``on_wait`` hears what is still running while nothing finishes.
WAIT_TICK = 0.5


class MailboxChecker:
    """Runs connection tests and records their results as health."""

    def __init__(
        self,
        mailboxes: MailboxService,
        settings: CheckSettings | None = None,
        *,
        tokens: TokenClient | None = None,
        connector: Connector = default_connector,
        monitor: Monitor | None = None,
        connect: ConnectService | None = None,
    ) -> None:
        self.mailboxes = mailboxes
        self.monitor = monitor or mailboxes.monitor
        #: Called with every result (the metrics count them); never with secrets.
        self.observer: Callable[[ProbeResult], None] | None = None
        self.settings = settings or CheckSettings()
        self.tokens = tokens or TokenClient.from_settings(self.settings)
        self.connector = connector
        self.connect = connect
        self.operator_apps = operator_apps(self.settings)

    def test_values(
        self, values: Mapping[str, Any], *, actor: Actor, connected: str | None = None
    ) -> ProbeResult:
        """Test the unsaved form; raises ValidationFailed when the values are invalid.

        ``connected``: the form's Connect account reference (its held token is used). A
        connection test needs no Name: a blank one is not a reason to refuse it.
        """
        actor.require(Permission.TEST)
        if not str(values.get("name") or "").strip():
            values = {**values, "name": "Connection test"}
        values, rotation = self._with_held(values, connected, actor)
        create = parse_create(values, self.operator_apps)
        credentials = Credentials(**{f: _plain(getattr(create, f)) for f in SECRET_FIELDS})
        return self._probe(self._target(create, credentials, rotation))

    def test_edit(
        self,
        mailbox_id: int,
        values: Mapping[str, Any],
        clear: frozenset[str] | set[str] = frozenset(),
        *,
        actor: Actor,
        connected: str | None = None,
    ) -> ProbeResult:
        """Test unsaved edits of a saved mailbox: blank secrets use the stored ones.

        A stored secret is used only while the destination it was saved for is
        unchanged; otherwise StoredSecretRefused asks for it to be typed again, and
        nothing is sent. Nothing is saved or recorded; raises ValidationFailed for
        invalid values. ``connected``: as for ``test_values``.
        """
        actor.require(Permission.TEST)
        values, held_rotation = self._with_held(values, connected, actor)
        [(saved, stored)] = self.mailboxes.mailboxes_for_check([mailbox_id])
        if isinstance(stored, MailboxCoreError):
            return _failed(
                "Sign-in",
                str(stored),
                "The stored secrets cannot be read with "
                "the configured keys; type them again to test.",
            )
        kept = {f for f in SECRET_FIELDS if getattr(stored, f)} - set(clear)
        edit = parse_update(values, kept, self.operator_apps)
        used = secrets_used(edit)
        kept_and_used = [f for f in used if f in edit.kept_secrets]
        changed = changed_destination(saved, edit)
        if kept_and_used and changed:
            raise StoredSecretRefused(kept_and_used, changed, LABELS)
        credentials = Credentials(
            **{f: _secret_for(f, edit, stored) if f in used else None for f in SECRET_FIELDS}
        )
        # A provider may rotate the refresh token it was given: store the rotation only
        # when that token was the stored one (or the one the form connected).
        keeps_token = "refresh_token" in edit.kept_secrets
        rotation = self._stored_rotation(mailbox_id, credentials) if keeps_token else held_rotation
        return self._probe(self._target(edit, credentials, rotation))

    def check_mailbox(self, mailbox_id: int, *, actor: Actor) -> ProbeResult:
        """Test a saved mailbox and record the result.

        A person's explicit test of one mailbox: it always runs (no pause, no budget), its
        refused sign-in still counts against the server's budget, and a pass ends a pause.
        """
        actor.require(Permission.TEST)
        [(mailbox, credentials)] = self.mailboxes.mailboxes_for_check([mailbox_id])
        since = self.monitor.failing_since([mailbox_id]).get(mailbox_id)
        started = self.monitor.now()
        watch = GrantWatch()
        result = self._check(mailbox, credentials, since=since, watch=watch)
        self._settle(mailbox, result, watch, reserved=False)
        record = _record(mailbox.id, started, result, Origin.EXPLICIT, since=since, grant=watch)
        self.mailboxes.record_checks([record])
        self._observe(result)
        self.monitor.dispatch()
        return result

    def retry_now(self, mailbox_id: int, *, actor: Actor) -> ProbeResult:
        """ "Retry now" on a paused mailbox: a person's test, which ends the pause if it passes."""
        return self.check_mailbox(mailbox_id, actor=actor)

    def check_many(
        self,
        mailbox_ids: list[int] | None = None,
        *,
        actor: Actor,
        on_progress: Progress | None = None,
        on_wait: Waiting | None = None,
    ) -> dict[int, ProbeResult]:
        """Test mailboxes concurrently (all active ones by default); record every result.

        Check all: paused mailboxes are left alone and the servers' failed-sign-in budget
        applies. A single mailbox asked for by ID is a person's test (``check_mailbox``).

        Workers only talk to the network; results are written here, in batches, so the
        database sees a few short transactions instead of one per worker. ``on_progress``
        hears each result as it comes; ``on_wait`` hears, every WAIT_TICK seconds and
        after each result, which checks are still running and for how long.
        """
        actor.require(Permission.CHECK_ALL if mailbox_ids is None else Permission.TEST)
        if mailbox_ids is not None and len(set(mailbox_ids)) == 1:  # one, by a person
            [(mailbox, _)] = self.mailboxes.mailboxes_for_check(mailbox_ids[:1])
            result = self.check_mailbox(mailbox.id, actor=actor)
            if on_progress:
                on_progress(1, 1, mailbox, result)
            return {mailbox.id: result}
        loaded = self.mailboxes.mailboxes_for_check(mailbox_ids)
        facts = self.monitor.gate_facts([m.id for m, _ in loaded])
        now = self.monitor.now()
        results: dict[int, ProbeResult] = {}
        runnable: Loaded = []
        for mailbox, credentials in loaded:
            paused = facts.get(mailbox.id, (False, None))[1]
            if paused is not None and paused > now:  # Check all leaves paused sign-ins alone
                results[mailbox.id] = _paused(paused)
                if on_progress:
                    on_progress(len(results), len(loaded), mailbox, results[mailbox.id])
            else:
                runnable.append((mailbox, credentials))
        gate = Gate(self.monitor.budget, {i for i, (ok, _) in facts.items() if ok})
        feed = iter([runnable])
        results.update(
            self._run(
                lambda _free: next(feed, []),
                origin=Origin.SWEEP,
                owner=None,
                gate=gate,
                progress=on_progress,
                waiting=on_wait,
                total=len(loaded),
                done=len(results),
            )
        )
        self.monitor.dispatch()
        return results

    def check_claimed(
        self,
        claim: Callable[[int], list[int]],
        *,
        owner: str,
        stop: Callable[[], bool] = lambda: False,
        on_progress: Progress | None = None,
    ) -> dict[int, ProbeResult]:
        """Scheduled checks: test what ``claim(n)`` leases to ``owner``, until it gives none.

        The pool is refilled as checks end (a claim for the free slots), so every claimed
        mailbox starts at once and ends well inside its lease. Skipped mailboxes (the
        server's budget is used up) give their lease back and wait for the next sweep.
        """
        gate = Gate(self.monitor.budget)

        def feed(free: int) -> Loaded:
            if stop():
                return []
            ids = claim(free)
            if not ids:
                return []
            gate.trusted |= {i for i, (ok, _) in self.monitor.gate_facts(ids).items() if ok}
            return self.mailboxes.mailboxes_for_check(ids, skip_missing=True)

        results = self._run(
            feed, origin=Origin.SCHEDULED, owner=owner, gate=gate, progress=on_progress
        )
        skipped = [i for i, r in results.items() if r.skipped]
        later = self.monitor.now() + timedelta(seconds=self.monitor.settings.tick)
        self.monitor.release(owner, skipped, next_check_at=later)
        self.monitor.dispatch()
        return results

    # -- helpers

    def _run(
        self,
        feed: Callable[[int], Loaded],
        *,
        origin: Origin,
        owner: str | None,
        gate: Gate,
        progress: Progress | None,
        waiting: Waiting | None = None,
        total: int | None = None,
        done: int = 0,
    ) -> dict[int, ProbeResult]:
        """Check what ``feed(free slots)`` hands out, concurrently; record in batches.

        Workers only talk to the network; results are written here, in batches, so the
        database sees a few short transactions instead of one per worker. ``waiting``
        hears, every WAIT_TICK seconds, which checks still run and for how long.
        """
        results: dict[int, ProbeResult] = {}
        pending: list[CheckRecord] = []
        unobserved: list[ProbeResult] = []
        #: Failing mailboxes: when they started failing (a passing check counts arrivals).
        outages: dict[int, datetime] = {}
        workers = max(1, self.settings.concurrency)
        flushed, more = time.monotonic(), True
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check") as pool:
            running: dict[Future[_Done], MailboxPublic] = {}
            since: dict[Future[_Done], float] = {}
            while True:
                if more and len(running) <= workers * 3 // 4:
                    batch = feed(workers - len(running))
                    more = bool(batch)
                    outages.update(self.monitor.failing_since([m.id for m, _ in batch]))
                    for mailbox, credentials in batch:
                        outage = outages.get(mailbox.id)
                        future = pool.submit(self._gated, mailbox, credentials, gate, outage)
                        running[future], since[future] = mailbox, time.monotonic()
                if not running:
                    break
                finished, _ = wait(list(running), timeout=WAIT_TICK, return_when=FIRST_COMPLETED)
                for future in finished:
                    mailbox = running.pop(future)
                    since.pop(future, None)
                    started, result, watch = future.result()
                    results[mailbox.id] = result
                    if result.skipped:
                        self._observe(result)
                    else:
                        outage = outages.pop(mailbox.id, None)
                        pending.append(
                            _record(mailbox.id, started, result, origin, owner, outage, grant=watch)
                        )
                        unobserved.append(result)
                    if progress:
                        done += 1
                        progress(done, total or done + len(running), mailbox, result)
                if waiting and running:
                    waiting(done, total or done + len(running), _longest_first(running, since))
                due = pending and time.monotonic() - flushed >= RECORD_EVERY
                if len(pending) >= RECORD_BATCH or due or (pending and not running):
                    self.mailboxes.record_checks(pending)
                    # Counted once recorded: a scrape never sees a check the mailboxes'
                    # states (read from the database) do not show yet.
                    for recorded in unobserved:
                        self._observe(recorded)
                    pending, unobserved, flushed = [], [], time.monotonic()
        return results

    def _gated(
        self,
        mailbox: MailboxPublic,
        credentials: Credentials | MailboxCoreError,
        gate: Gate,
        since: datetime | None = None,
    ) -> _Done:
        """One check in a worker thread, if the server's failed-sign-in budget allows it."""
        started = self.monitor.now()
        reserved = False
        watch = GrantWatch()

        def admit(remaining: float) -> str:
            nonlocal reserved
            why, reserved = gate.admit(mailbox.id, mailbox.host, wait=remaining / 2)
            return why

        try:
            result = self._check(mailbox, credentials, admit, since=since, watch=watch)
        except BaseException:
            self.monitor.budget.settle(mailbox.host, mailbox.id, failed=False, reserved=reserved)
            raise
        self._settle(mailbox, result, watch, reserved=reserved)
        return started, result, watch

    def _settle(
        self, mailbox: MailboxPublic, result: ProbeResult, watch: GrantWatch, *, reserved: bool
    ) -> None:
        fault = fault_of(result.ok, _problem(result, watch), result.summary)
        refused = fault is Fault.ACCOUNT
        self.monitor.budget.settle(mailbox.host, mailbox.id, failed=refused, reserved=reserved)

    def _observe(self, result: ProbeResult) -> None:
        if self.observer is not None:
            self.observer(result)

    def _check(
        self,
        mailbox: MailboxPublic,
        credentials: Credentials | MailboxCoreError,
        admit: Callable[[float], str] | None = None,
        *,
        since: datetime | None = None,
        watch: GrantWatch | None = None,
    ) -> ProbeResult:
        """``since``: the mailbox has been failing since then; a passing check counts what
        arrived meanwhile (``ProbeTarget.since``)."""
        if isinstance(credentials, MailboxCoreError):
            return _failed(
                "Sign-in",
                str(credentials),
                "The secrets of this mailbox cannot be read with the configured keys.",
            )
        rotation = self._stored_rotation(mailbox.id, credentials)
        target = replace(self._target(mailbox, credentials, rotation, watch), since=since)
        return self._probe(target, admit)

    def _probe(
        self, target: ProbeTarget, admit: Callable[[float], str] | None = None
    ) -> ProbeResult:
        return run_probe(
            target,
            timeout=self.settings.timeout,
            ca_file=self.settings.ca_file,
            connector=self.connector,
            egress=self.settings.egress,
            admit=admit,
        )

    def _with_held(
        self, values: Mapping[str, Any], connected: str | None, actor: Actor
    ) -> tuple[Mapping[str, Any], Rotation | None]:
        if not connected:
            return values, None
        if self.connect is None:
            raise ConfigurationError("Connect account is not set up for this checker.")
        return self.connect.held_values(values, form=connected, actor=actor)

    def _stored_rotation(self, mailbox_id: int, credentials: Credentials) -> Rotation | None:
        replaces = credentials.refresh_token
        if replaces is None:
            return None
        return lambda new: self._store_rotated(mailbox_id, new, replaces)

    def _store_rotated(self, mailbox_id: int, new: str, replaces: str) -> None:
        self.mailboxes.replace_refresh_token(mailbox_id, new, replaces=replaces)

    def _target(
        self,
        mailbox: MailboxCreate | MailboxPublic,
        credentials: Credentials,
        rotation: Rotation | None,
        watch: GrantWatch | None = None,
    ) -> ProbeTarget:
        token_source = None
        label = ""
        provider = mailbox.oauth_provider if mailbox.oauth_enabled else None
        if provider in (OAuthProvider.GMAIL, OAuthProvider.OFFICE365):
            request = TokenRequest(
                provider=provider,
                client_id=mailbox.client_id or "",
                account=mailbox.account,
                auth_method=mailbox.auth_method,
                tenant_id=mailbox.tenant_id,
                client_secret=credentials.client_secret,
                refresh_token=credentials.refresh_token,
                password=credentials.password,
                mailbox_type=mailbox.mailbox_type,
            )
            token_source = self._token_source(request, rotation, watch)
            label = f"{provider.value} XOAUTH2"
        return ProbeTarget(
            mailbox_type=mailbox.mailbox_type,
            host=mailbox.host,
            port=mailbox.port,
            account=mailbox.account,
            password=credentials.password,
            ssl_enabled=mailbox.ssl_enabled,
            starttls=mailbox.starttls,
            allow_self_signed=mailbox.allow_self_signed,
            allow_plaintext=mailbox.allow_plaintext_password,
            token_source=token_source,
            oauth_label=label,
            vitals=self.settings.vitals,
        )

    def _token_source(
        self, request: TokenRequest, rotation: Rotation | None, watch: GrantWatch | None = None
    ) -> Callable[[], str]:
        def fetch() -> str:
            used = watch.used if watch is not None else None
            try:
                return self.tokens.access_token(
                    request, on_new_refresh_token=rotation, on_used=used
                )
            except TokenError as exc:
                if watch is not None:
                    watch.failed(exc)
                raise

        return fetch


def _secret_for(field: str, edit: MailboxUpdate, stored: Credentials) -> str | None:
    """The secret to use: the stored one for a kept field, else the typed one (or none)."""
    if field in edit.kept_secrets:
        return str(getattr(stored, field))
    return _plain(getattr(edit, field))


def _problem(result: ProbeResult, watch: GrantWatch | None) -> str | None:
    """The failure's code; a token failure's is its class (oauth.GrantProblem) when known."""
    failed = result.failed_step
    if failed is None:
        return None
    if failed.problem == Problem.NO_TOKEN.value and watch is not None and watch.problem:
        return watch.problem.value
    return failed.problem or None


def _longest_first(
    running: dict[Future[_Done], MailboxPublic],
    since: dict[Future[_Done], float],
) -> list[tuple[MailboxPublic, float]]:
    """The checks still running, longest first, with the seconds each has run."""
    now = time.monotonic()
    ages = [(mailbox, now - since[future]) for future, mailbox in running.items()]
    return sorted(ages, key=lambda item: -item[1])


def _plain(secret: Any) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _failed(step: str, detail: str, hint: str) -> ProbeResult:
    return ProbeResult(steps=(Step(step, StepStatus.FAILED, 0.0, detail, hint),))


def _paused(until: datetime) -> ProbeResult:
    return ProbeResult(
        steps=(),
        skipped=f"paused after a refused sign-in until {until:%Y-%m-%d %H:%M} UTC: not tried, "
        "so the account is not locked (Retry now on its Edit page tests it)",
    )


def _record(
    mailbox_id: int,
    started: datetime,
    result: ProbeResult,
    origin: Origin,
    owner: str | None = None,
    since: datetime | None = None,
    *,
    grant: GrantWatch | None = None,
) -> CheckRecord:
    failed = result.failed_step
    check = MailboxCheck(
        mailbox_id=mailbox_id,
        started_at=started,
        ok=result.ok,
        failed_step=failed.name if failed else None,
        message=result.summary[:500],
        latency_ms=round(result.elapsed_ms, 1),
        message_count=_message_count(result),
        problem=_problem(result, grant),
        offer=result.offer.summary()[:300] if result.offer else None,
        **_vital_columns(result.vitals),
    )
    return CheckRecord(
        check=check,
        origin=origin,
        owner=owner,
        hint=failed.hint if failed else "",
        certificate=result.certificate,
        offer=result.offer,
        since=since,
        grant=grant.facts() if grant is not None else None,
    )


def _message_count(result: ProbeResult) -> int | None:
    if result.message_count is not None:
        return result.message_count
    backlog = result.vitals.backlog if result.vitals else None
    return backlog.messages if backlog else None


def _vital_columns(vitals: Vitals | None) -> dict[str, Any]:
    """A check's vital signs as its history columns (None: not known)."""
    quota = vitals.quota if vitals else None
    backlog = vitals.backlog if vitals else None
    columns: dict[str, Any] = {
        "quota_ratio": quota.ratio if quota else None,
        "quota_storage_used": quota.storage_used if quota else None,
        "quota_storage_limit": quota.storage_limit if quota else None,
        "quota_messages_used": quota.messages_used if quota else None,
        "quota_messages_limit": quota.messages_limit if quota else None,
        "unseen": backlog.unseen if backlog else None,
        "oldest_unseen_at": backlog.oldest_unseen_at if backlog else None,
        "arrived_since": backlog.arrived_since if backlog else None,
    }
    return columns
