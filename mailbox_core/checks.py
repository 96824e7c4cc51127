"""Connection tests of saved and unsaved mailboxes, and Check all with bounded concurrency."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from typing import Any

from mailbox_core.access import Actor, Permission
from mailbox_core.config import CheckSettings
from mailbox_core.errors import MailboxCoreError, StoredSecretRefused
from mailbox_core.models import MailboxCheck
from mailbox_core.oauth import TokenClient, TokenRequest
from mailbox_core.probe import (
    Connector,
    ProbeResult,
    ProbeTarget,
    Step,
    StepStatus,
    default_connector,
    run_probe,
)
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


class MailboxChecker:
    """Runs connection tests and records their results as health."""

    def __init__(
        self,
        mailboxes: MailboxService,
        settings: CheckSettings | None = None,
        *,
        tokens: TokenClient | None = None,
        connector: Connector = default_connector,
    ) -> None:
        self.mailboxes = mailboxes
        self.settings = settings or CheckSettings()
        self.tokens = tokens or TokenClient(
            google_token_url=self.settings.google_token_url,
            microsoft_authority=self.settings.microsoft_authority,
            timeout=self.settings.timeout,
        )
        self.connector = connector

    def test_values(self, values: Mapping[str, Any], *, actor: Actor) -> ProbeResult:
        """Test the unsaved form; raises ValidationFailed when the values are invalid."""
        actor.require(Permission.TEST)
        create = parse_create(values)
        credentials = Credentials(**{f: _plain(getattr(create, f)) for f in SECRET_FIELDS})
        return self._probe(self._target(create, credentials, mailbox_id=None))

    def test_edit(
        self,
        mailbox_id: int,
        values: Mapping[str, Any],
        clear: frozenset[str] | set[str] = frozenset(),
        *,
        actor: Actor,
    ) -> ProbeResult:
        """Test unsaved edits of a saved mailbox: blank secrets use the stored ones.

        A stored secret is used only while the destination it was saved for is
        unchanged; otherwise StoredSecretRefused asks for it to be typed again, and
        nothing is sent. Nothing is saved or recorded; raises ValidationFailed for
        invalid values.
        """
        actor.require(Permission.TEST)
        [(saved, stored)] = self.mailboxes.mailboxes_for_check([mailbox_id])
        if isinstance(stored, MailboxCoreError):
            return _failed(
                "Sign-in",
                str(stored),
                "The stored secrets cannot be read with "
                "the configured keys; type them again to test.",
            )
        kept = {f for f in SECRET_FIELDS if getattr(stored, f)} - set(clear)
        edit = parse_update(values, kept)
        used = secrets_used(edit)
        kept_and_used = [f for f in used if f in edit.kept_secrets]
        changed = changed_destination(saved, edit)
        if kept_and_used and changed:
            raise StoredSecretRefused(kept_and_used, changed, LABELS)
        credentials = Credentials(
            **{f: _secret_for(f, edit, stored) if f in used else None for f in SECRET_FIELDS}
        )
        # A provider may rotate the refresh token it was given: store the rotation only
        # when that token was the stored one.
        keeps_token = "refresh_token" in edit.kept_secrets
        target = self._target(edit, credentials, mailbox_id=mailbox_id if keeps_token else None)
        return self._probe(target)

    def check_mailbox(self, mailbox_id: int, *, actor: Actor) -> ProbeResult:
        """Test a saved mailbox and record the result."""
        actor.require(Permission.TEST)
        [(mailbox, credentials)] = self.mailboxes.mailboxes_for_check([mailbox_id])
        started = datetime.now(UTC)
        result = self._check(mailbox, credentials)
        self.mailboxes.record_checks([_record(mailbox.id, started, result)])
        return result

    def check_many(
        self,
        mailbox_ids: list[int] | None = None,
        *,
        actor: Actor,
        on_progress: Progress | None = None,
    ) -> dict[int, ProbeResult]:
        """Test mailboxes concurrently (all active ones by default); record every result.

        Workers only talk to the network; results are written here, in batches, so the
        database sees a few short transactions instead of one per worker.
        """
        actor.require(Permission.CHECK_ALL if mailbox_ids is None else Permission.TEST)
        loaded = self.mailboxes.mailboxes_for_check(mailbox_ids)
        results: dict[int, ProbeResult] = {}
        pending: list[MailboxCheck] = []
        workers = max(1, min(self.settings.concurrency, len(loaded)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check") as pool:
            futures = {pool.submit(self._timed_check, m, c): m for m, c in loaded}
            for done, future in enumerate(as_completed(futures), start=1):
                mailbox = futures[future]
                started, result = future.result()
                results[mailbox.id] = result
                pending.append(_record(mailbox.id, started, result))
                if len(pending) >= 100:
                    self.mailboxes.record_checks(pending)
                    pending = []
                if on_progress:
                    on_progress(done, len(loaded), mailbox, result)
        if pending:
            self.mailboxes.record_checks(pending)
        return results

    # -- helpers

    def _timed_check(
        self, mailbox: MailboxPublic, credentials: Credentials | MailboxCoreError
    ) -> tuple[datetime, ProbeResult]:
        return datetime.now(UTC), self._check(mailbox, credentials)

    def _check(
        self, mailbox: MailboxPublic, credentials: Credentials | MailboxCoreError
    ) -> ProbeResult:
        if isinstance(credentials, MailboxCoreError):
            return _failed(
                "Sign-in",
                str(credentials),
                "The secrets of this mailbox cannot be read with the configured keys.",
            )
        return self._probe(self._target(mailbox, credentials, mailbox_id=mailbox.id))

    def _probe(self, target: ProbeTarget) -> ProbeResult:
        return run_probe(
            target,
            timeout=self.settings.timeout,
            ca_file=self.settings.ca_file,
            connector=self.connector,
            egress=self.settings.egress,
        )

    def _target(
        self,
        mailbox: MailboxCreate | MailboxPublic,
        credentials: Credentials,
        mailbox_id: int | None,
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
            )
            token_source = self._token_source(request, mailbox_id)
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
        )

    def _token_source(self, request: TokenRequest, mailbox_id: int | None) -> Callable[[], str]:
        def rotated(new_token: str) -> None:
            if mailbox_id is not None and request.refresh_token is not None:
                self.mailboxes.replace_refresh_token(
                    mailbox_id, new_token, replaces=request.refresh_token
                )

        def fetch() -> str:
            return self.tokens.access_token(request, on_new_refresh_token=rotated)

        return fetch


def _secret_for(field: str, edit: MailboxUpdate, stored: Credentials) -> str | None:
    """The secret to use: the stored one for a kept field, else the typed one (or none)."""
    if field in edit.kept_secrets:
        return str(getattr(stored, field))
    return _plain(getattr(edit, field))


def _plain(secret: Any) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _failed(step: str, detail: str, hint: str) -> ProbeResult:
    return ProbeResult(steps=(Step(step, StepStatus.FAILED, 0.0, detail, hint),))


def _record(mailbox_id: int, started: datetime, result: ProbeResult) -> MailboxCheck:
    failed = result.failed_step
    return MailboxCheck(
        mailbox_id=mailbox_id,
        started_at=started,
        ok=result.ok,
        failed_step=failed.name if failed else None,
        message=result.summary[:500],
        latency_ms=round(result.elapsed_ms, 1),
        message_count=result.message_count,
    )
