"""Connect account: a Gmail or Microsoft 365 mailbox signs in at the provider's consent page.

OAuth 2.0 authorization code with PKCE (RFC 7636), in three steps:

1. ``ConnectService.start`` (the form's session): a random ``state``, a PKCE verifier and a
   nonce; a pending consent row holds the state's SHA-256, the verifier encrypted, who
   started it and for which form; the answer is the provider's authorization URL
   (``login_hint`` = the Account).
2. The provider sends the browser back to the callback page, a new Streamlit session, so
   nothing here relies on the form's session. ``complete`` finds the consent by the
   state's hash and refuses, changing nothing, one that is unknown, used, older than
   ``CONSENT_TTL`` or started by another user; claims it (one conditional UPDATE, so a
   replay loses); exchanges the code with the verifier; checks that the ID token names
   the mailbox's Account; and holds the refresh token, encrypted, in the consent. The
   access token is dropped.
3. The form polls ``status``. OK / Save hands the form's reference to MailboxService,
   which moves the held token into the mailbox (``take_held``) in the same transaction
   and deletes the consent; Test connection uses it the same way (``held_values``).

A failure after the claim (the user denied, no refresh token, another account) is kept on
the consent as a message for the form; no token is. Consents are purged after ``HOLD``.

The provider URLs (authorization, token) come only from the operator's settings; the
Tenant ID is validated as a GUID or domain, so it is only ever one path segment of them.
The server dials only the token endpoint; the browser goes to the authorization page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from authlib.integrations.requests_client import OAuth2Session
from pydantic import SecretStr, TypeAdapter, ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from mailbox_core import repository
from mailbox_core.access import Actor, Permission
from mailbox_core.config import ConnectSettings
from mailbox_core.crypto import SecretBox
from mailbox_core.errors import FieldError, MailboxCoreError, ValidationFailed
from mailbox_core.models import PendingConsent, utcnow
from mailbox_core.oauth import TokenClient, TokenError, TokenRequest, delegated_scope
from mailbox_core.schemas import (
    LABELS,
    Account,
    AuthMethod,
    ClientId,
    MailboxType,
    OAuthProvider,
    Secret,
    TenantId,
    normalise_input,
    visible_fields,
)

log = logging.getLogger(__name__)

#: How long a started consent may take to come back (the issue: at most 10 minutes).
CONSENT_TTL = timedelta(minutes=10)
#: How long a connected refresh token waits for its form to be saved, at most.
HOLD = timedelta(hours=24)
GOOGLE_SCOPE = "openid email https://mail.google.com/"
PROVIDER_NAMES = {OAuthProvider.GMAIL: "Google", OAuthProvider.OFFICE365: "Microsoft"}


class ConnectRefused(MailboxCoreError):
    """A callback that is not a live consent of this user; nothing was changed."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


class ConnectState(StrEnum):
    WAITING = "waiting"  # started, the callback has not come back yet
    CONNECTED = "connected"  # a refresh token waits for the form to be saved
    FAILED = "failed"  # came back with an error; nothing was kept
    EXPIRED = "expired"  # not back within CONSENT_TTL


@dataclass(frozen=True)
class ConnectStatus:
    """Where a form's latest consent stands (no secret in it)."""

    state: ConnectState
    provider: OAuthProvider
    account: str  # the connected account, else the one asked for
    at: datetime
    message: str = ""
    hint: str = ""


@dataclass(frozen=True)
class ConnectOutcome:
    """What the callback page tells the user."""

    ok: bool
    provider: OAuthProvider
    account: str
    message: str
    hint: str = ""


def connectable(values: Mapping[str, Any]) -> OAuthProvider | None:
    """The provider whose consent page can sign these form values in, if any."""
    if "refresh_token" not in visible_fields(values):
        return None  # Gmail, and Office365 with Connect account (delegated), show it
    provider = str(values.get("oauth_provider") or "").strip().lower()
    return OAuthProvider.GMAIL if provider == "gmail" else OAuthProvider.OFFICE365


def scope_for(provider: OAuthProvider, mailbox_type: MailboxType | str) -> str:
    """What the consent asks for: the mailbox, offline access, and who the user is."""
    if provider is OAuthProvider.GMAIL:
        return GOOGLE_SCOPE
    # profile: Microsoft's preferred_username, when the ID token carries no email.
    return f"openid email profile {delegated_scope(mailbox_type)}"


def digest(text: str) -> str:
    """SHA-256, hex: how a state or nonce is kept (looked up, never read back)."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, repr=False)
class _Request:
    """The connect-relevant form values, validated; holds a secret: never log it."""

    provider: OAuthProvider
    mailbox_type: MailboxType
    account: str
    client_id: str | None
    tenant_id: str | None
    client_secret: str | None

    def token_request(self, client_secret: str | None = None) -> TokenRequest:
        return TokenRequest(
            provider=self.provider,
            client_id=self.client_id or "",
            account=self.account,
            auth_method=AuthMethod.DELEGATED if self.provider is OAuthProvider.OFFICE365 else None,
            tenant_id=self.tenant_id,
            client_secret=client_secret or self.client_secret,
            mailbox_type=self.mailbox_type,
        )


@dataclass(frozen=True, repr=False)
class HeldToken:
    """A connected refresh token waiting for its form; never log it."""

    consent_id: int
    provider: OAuthProvider
    account: str
    client_id: str | None
    tenant_id: str | None
    encrypted: str
    token: str
    #: When the provider issued it (the consent's token exchange).
    connected_at: datetime

    def __repr__(self) -> str:
        return f"HeldToken({self.provider.value}, {self.account}, <hidden>)"

    def apply(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The form values with this token as Refresh Token, when it fits them.

        A Refresh Token typed into the form wins; values whose sign-in uses no refresh
        token take none. Changed Account, provider, Client ID or Tenant ID after
        connecting refuse: the token belongs to what was connected.
        """
        data = normalise_input(values)
        if "refresh_token" not in visible_fields(data) or _text(values.get("refresh_token")):
            return dict(values)
        wrong = [field for field, held in self._connected().items() if _key(data, field) != held]
        if wrong:
            raise ValidationFailed(
                [
                    FieldError(
                        field,
                        LABELS[field],
                        f"is not what {self.account} was connected with: change it back, "
                        "or press Connect again",
                    )
                    for field in wrong
                ]
            )
        return {**values, "refresh_token": self.token}

    def audit(self) -> dict[str, Any]:
        return {"refresh_token": f"connected as {self.account} ({self.provider.value})"}

    def _connected(self) -> dict[str, str]:
        return {
            "oauth_provider": self.provider.value.lower(),
            "account": self.account.casefold(),
            "client_id": self.client_id or "",
            "tenant_id": (self.tenant_id or "").casefold(),
        }


def take_held(
    session: Session, box: SecretBox, *, form: str, actor: Actor, now: datetime | None = None
) -> HeldToken | None:
    """The refresh token this user's form connected, if one waits (within ``HOLD``)."""
    row = repository.latest_consent(session, form=form, actor=actor.name, subject=actor.subject)
    now = now or utcnow()
    if row is None or row.id is None or row.refresh_token_encrypted is None:
        return None
    if _aware(row.created_at) < now - HOLD:
        return None
    token = box.decrypt_or_none(row.refresh_token_encrypted)
    if token is None:
        return None  # made with a key that is gone: as if never connected
    return HeldToken(
        consent_id=row.id,
        provider=OAuthProvider(row.provider),
        account=row.connected_account or row.account,
        client_id=row.client_id,
        tenant_id=row.tenant_id,
        encrypted=row.refresh_token_encrypted,
        token=token,
        connected_at=_aware(row.finished_at or row.created_at),
    )


class ConnectService:
    """Connect account use cases over one engine, secret box and token client."""

    def __init__(
        self,
        engine: Engine,
        box: SecretBox,
        settings: ConnectSettings,
        tokens: TokenClient,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._box = box
        self.settings = settings
        self.tokens = tokens
        self._now = now

    # -- step 1: the form starts a consent

    def start(
        self,
        values: Mapping[str, Any],
        *,
        form: str,
        redirect_uri: str,
        actor: Actor,
        mailbox_id: int | None = None,
    ) -> str:
        """Store a pending consent for this form; returns the provider's consent URL."""
        actor.require(Permission.CREATE if mailbox_id is None else Permission.EDIT)
        request = _read_request(values)
        state, verifier, nonce = (secrets.token_urlsafe(n) for n in (32, 64, 24))
        with self._session() as session:
            secret = request.client_secret or self._stored_secret(session, request, mailbox_id)
            client_id = self._client_id(request.token_request(secret))
            now = self._now()
            repository.purge_consents(session, before=now - HOLD)
            repository.delete_consents(session, form=form, actor=actor.name)
            repository.add_consent(
                session,
                consent=PendingConsent(
                    state_hash=digest(state),
                    nonce_hash=digest(nonce),
                    verifier_encrypted=self._box.encrypt(verifier),
                    client_secret_encrypted=self._box.encrypt(secret) if secret else None,
                    actor=actor.name[:254],
                    actor_subject=actor.subject[:254] if actor.subject else None,
                    form=form,
                    mailbox_id=mailbox_id,
                    provider=request.provider.value,
                    mailbox_type=request.mailbox_type.value,
                    account=request.account,
                    client_id=request.client_id,
                    tenant_id=request.tenant_id,
                    scope=scope_for(request.provider, request.mailbox_type),
                    redirect_uri=redirect_uri,
                    created_at=now,
                ),
            )
            session.commit()
        log.info("Connect account: %s started a %s consent", actor.name, request.provider.value)
        return self._authorization_url(request, client_id, redirect_uri, state, verifier, nonce)

    # -- step 2: the provider sends the browser back

    def complete(self, params: Mapping[str, str], *, actor: Actor) -> ConnectOutcome:
        """Finish the consent named by ``params["state"]`` (the callback's query string).

        Raises ConnectRefused, changing nothing, unless it is a live consent this user
        started; otherwise claims it and returns what happened (a failure keeps no token).
        """
        consent = self._claim(params.get("state") or "", actor)
        try:
            token, account = self._finish(consent, params)
        except _Failed as failure:
            self._record(consent, error=failure)
            return ConnectOutcome(
                False, OAuthProvider(consent.provider), consent.account, str(failure), failure.hint
            )
        self._record(consent, token=token, account=account)
        log.info("Connect account: %s connected %s (%s)", actor.name, account, consent.provider)
        return ConnectOutcome(
            True,
            OAuthProvider(consent.provider),
            account,
            "Connected — you can close this tab.",
        )

    # -- step 3: the form polls

    def status(self, form: str, *, actor: Actor) -> ConnectStatus | None:
        """The form's latest consent, as far as this user may see it."""
        with self._session() as session:
            row = repository.latest_consent(
                session, form=form, actor=actor.name, subject=actor.subject
            )
        if row is None:
            return None
        provider = OAuthProvider(row.provider)
        if row.refresh_token_encrypted and row.connected_account:
            at = _aware(row.finished_at or row.created_at)
            return ConnectStatus(ConnectState.CONNECTED, provider, row.connected_account, at)
        if row.error:
            at = _aware(row.finished_at or row.created_at)
            return ConnectStatus(
                ConnectState.FAILED, provider, row.account, at, row.error, row.hint or ""
            )
        started = _aware(row.created_at)
        if started < self._now() - CONSENT_TTL:
            return ConnectStatus(
                ConnectState.EXPIRED,
                provider,
                row.account,
                started,
                f"The sign-in at {PROVIDER_NAMES[provider]} was not finished within "
                f"{CONSENT_TTL.seconds // 60} minutes.",
                "Press Connect again.",
            )
        return ConnectStatus(ConnectState.WAITING, provider, row.account, started)

    def held_values(
        self, values: Mapping[str, Any], *, form: str, actor: Actor
    ) -> tuple[dict[str, Any], Callable[[str], None] | None]:
        """Form values with the token the form connected, and how to keep a rotated one."""
        with self._session() as session:
            held = take_held(session, self._box, form=form, actor=actor, now=self._now())
        if held is None:
            return dict(values), None
        applied = held.apply(values)
        if applied.get("refresh_token") != held.token:
            return applied, None
        return applied, lambda rotated: self._rotate_held(held, rotated)

    # -- helpers

    def _claim(self, state: str, actor: Actor) -> PendingConsent:
        if not state:
            raise ConnectRefused(
                "This page is where Google or Microsoft sends you back after Connect "
                "account, and it was opened without a sign-in to finish.",
                "Start from a mailbox form: choose Gmail (or Office365 with Connect account) "
                "and press Connect.",
            )
        with self._session() as session:
            consent = _live(
                repository.consent_by_state(session, state_hash=digest(state)), actor, self._now()
            )
            actor.require(Permission.CREATE if consent.mailbox_id is None else Permission.EDIT)
            if consent.id is None or not repository.claim_consent(session, consent_id=consent.id):
                raise _used()
            session.commit()
            return consent

    def _finish(self, consent: PendingConsent, params: Mapping[str, str]) -> tuple[str, str]:
        """The refresh token and the account it signs in, or _Failed."""
        provider = OAuthProvider(consent.provider)
        if params.get("error"):
            raise _provider_error(provider, params["error"], params.get("error_description", ""))
        if not params.get("code"):
            raise _Failed(
                f"{PROVIDER_NAMES[provider]} sent the browser back without a code.",
                "Press Connect again.",
            )
        secret = self._open(consent.client_secret_encrypted)
        request = _Request(
            provider,
            MailboxType(consent.mailbox_type),
            consent.account,
            consent.client_id,
            consent.tenant_id,
            secret,
        ).token_request()
        try:
            client_id, _ = self.tokens.client(request)
            answer = self.tokens.exchange_code(
                request,
                code=params["code"],
                code_verifier=self._open(consent.verifier_encrypted) or "",
                redirect_uri=consent.redirect_uri,
                scope=consent.scope,
            )
        except TokenError as exc:
            raise _Failed(str(exc), exc.hint) from exc
        account = _signed_in_account(provider, answer, client_id, consent, self._now())
        if account.casefold() != consent.account.casefold():
            raise _Failed(
                f"You signed in as {account}, but this mailbox is {consent.account}.",
                f"Press Connect again and sign in at {PROVIDER_NAMES[provider]} as "
                f"{consent.account} (use another account there), or correct Account.",
            )
        refresh = answer.get("refresh_token")
        if not refresh:
            raise _Failed(
                f"{PROVIDER_NAMES[provider]} returned no refresh token.", _NO_REFRESH[provider]
            )
        return str(refresh), account

    def _record(
        self,
        consent: PendingConsent,
        *,
        token: str | None = None,
        account: str | None = None,
        error: _Failed | None = None,
    ) -> None:
        with self._session() as session:
            row = session.get(PendingConsent, consent.id)
            if row is None:
                return  # the form was saved or cancelled meanwhile
            row.finished_at = self._now()
            # The verifier and a typed client secret have done their job.
            row.verifier_encrypted = row.client_secret_encrypted = None
            if token is not None:
                row.refresh_token_encrypted = self._box.encrypt(token)
                row.connected_account = account
            if error is not None:
                row.error, row.hint = str(error)[:500], error.hint[:500]
            session.add(row)
            session.commit()

    def _rotate_held(self, held: HeldToken, rotated: str) -> None:
        with self._session() as session:
            repository.swap_held_token(
                session,
                consent_id=held.consent_id,
                expected=held.encrypted,
                token=self._box.encrypt(rotated),
            )
            session.commit()

    def _stored_secret(
        self, session: Session, request: _Request, mailbox_id: int | None
    ) -> str | None:
        """On the Edit page: the mailbox's stored Client Secret, if the app is the same."""
        if mailbox_id is None:
            return None
        row = repository.get_mailbox(session, mailbox_id=mailbox_id)
        if row is None or row.client_secret_encrypted is None:
            return None
        same = (row.oauth_provider, row.client_id) == (request.provider, request.client_id)
        return self._box.decrypt_or_none(row.client_secret_encrypted) if same else None

    def _client_id(self, request: TokenRequest) -> str:
        try:
            client_id, _ = self.tokens.client(request)
        except TokenError as exc:
            raise ValidationFailed(
                [FieldError("client_id", LABELS["client_id"], f"is required: {exc.hint}")]
            ) from exc
        return client_id

    def _authorization_url(
        self,
        request: _Request,
        client_id: str,
        redirect_uri: str,
        state: str,
        verifier: str,
        nonce: str,
    ) -> str:
        extra: dict[str, str] = {"login_hint": request.account, "nonce": nonce}
        if request.provider is OAuthProvider.GMAIL:
            url = self.settings.google_authorize_url
            # A refresh token every time: offline access, and the consent screen even
            # for a user who consented before (Google omits the token otherwise).
            extra |= {"access_type": "offline", "prompt": "consent"}
        else:
            url = self.tokens.microsoft_url(request.tenant_id or "", "authorize")
        client = OAuth2Session(
            client_id=client_id,
            scope=scope_for(request.provider, request.mailbox_type),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        )
        with client:
            uri, _ = client.create_authorization_url(
                url, state=state, code_verifier=verifier, **extra
            )
        return str(uri)

    def _open(self, token: str | None) -> str | None:
        return self._box.decrypt_or_none(token) if token else None

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session:
            yield session


class _Failed(Exception):
    """The consent came back, but connected nothing (message and hint for the form)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


_NO_REFRESH = {
    OAuthProvider.GMAIL: "Google returns one only when the consent screen grants offline "
    "access: remove Mailbox Manager under https://myaccount.google.com/permissions, then "
    "press Connect again.",
    OAuthProvider.OFFICE365: "Microsoft returns one only for the offline_access permission: "
    "add it to the app's API permissions in Entra ID, then press Connect again.",
}


def _live(consent: PendingConsent | None, actor: Actor, now: datetime) -> PendingConsent:
    """``consent`` if it is live and this user's; else ConnectRefused."""
    if consent is None:
        raise ConnectRefused(
            "This sign-in is not one Mailbox Manager started (or it was cleaned up).",
            "Go back to the mailbox form and press Connect again.",
        )
    if (consent.actor, consent.actor_subject) != (actor.name, actor.subject):
        raise ConnectRefused(
            "This sign-in was started by another user: only they can finish it.",
            "Press Connect on your own mailbox form.",
        )
    if consent.used:
        raise _used()
    if _aware(consent.created_at) < now - CONSENT_TTL:
        raise ConnectRefused(
            f"This sign-in was started more than {CONSENT_TTL.seconds // 60} minutes ago "
            "and has expired.",
            "Go back to the mailbox form and press Connect again.",
        )
    return consent


def _used() -> ConnectRefused:
    return ConnectRefused(
        "This sign-in was already used: each one connects once.",
        "Go back to the mailbox form; press Connect again if it does not show the account.",
    )


def _provider_error(provider: OAuthProvider, error: str, description: str) -> _Failed:
    name = PROVIDER_NAMES[provider]
    if error == "access_denied":
        return _Failed(
            f"The consent at {name} was cancelled or refused (access_denied).",
            f"Press Connect again and allow access at {name}; an organisation may need "
            "an admin to approve the app first.",
        )
    detail = description.splitlines()[0][:200] if description else ""
    hints = {
        "invalid_scope": "The app may not ask for mailbox access: check its API permissions.",
        "unauthorized_client": "Check Client ID, and that the app allows this redirect URI.",
        "consent_required": "An admin must consent to the app for the organisation first.",
        "interaction_required": "Press Connect again and finish the sign-in at the provider.",
    }
    return _Failed(
        f"{name} refused the consent ({error}){': ' + detail if detail else ''}.",
        hints.get(error, "Press Connect again; if it keeps failing, check the app's settings."),
    )


def _signed_in_account(
    provider: OAuthProvider,
    answer: Mapping[str, object],
    client_id: str,
    consent: PendingConsent,
    now: datetime,
) -> str:
    """The account the ID token names, after checking it was made for this consent.

    The ID token came straight from the token endpoint over the TLS connection this
    client authenticated on, so its signature need not be checked (OpenID Connect Core
    3.1.3.7, step 6); audience, expiry and nonce are.
    """
    claims = _claims(answer.get("id_token"))
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    nonce = claims.get("nonce")
    expires = claims.get("exp")
    if (
        client_id not in audiences
        or not isinstance(nonce, str)
        or digest(nonce) != consent.nonce_hash
        or not isinstance(expires, int | float)
        or expires < now.timestamp() - 60
    ):
        raise _Failed(
            "The ID token in the provider's answer was not made for this sign-in.",
            "Press Connect again; check the token endpoint settings if it keeps failing.",
        )
    if provider is OAuthProvider.GMAIL and claims.get("email_verified") in (False, "false"):
        raise _Failed(
            "Google says the account's email address is not verified.",
            "Verify the address at Google, then press Connect again.",
        )
    for claim in ("email", "preferred_username", "upn"):
        value = claims.get(claim)
        if isinstance(value, str) and "@" in value:
            return value.strip()
    raise _Failed(
        "The provider's answer did not name the signed-in account.",
        "Microsoft: add the email optional claim to the app (Token configuration).",
    )


def _claims(id_token: object) -> dict[str, Any]:
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        raise _Failed(
            "The provider's answer had no ID token, so the signed-in account is unknown.",
            "The consent must include the openid and email scopes: press Connect again.",
        )
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise _Failed("The provider's ID token could not be read.", "Press Connect again.") from exc
    if not isinstance(claims, dict):
        raise _Failed("The provider's ID token could not be read.", "Press Connect again.")
    return claims


def _read_request(values: Mapping[str, Any]) -> _Request:
    """The connect-relevant fields of the form, each checked by its own field rule."""
    provider = connectable(values)
    if provider is None:
        raise ValidationFailed(
            [
                FieldError(
                    "oauth_provider",
                    LABELS["oauth_provider"],
                    "Connect works for Gmail, and for Office365 with Authentication Method "
                    "Connect account (delegated)",
                )
            ]
        )
    fields: dict[str, Any] = {
        "account": Account,
        "client_id": ClientId | None,
        "client_secret": Secret | None,
    }
    if provider is OAuthProvider.OFFICE365:
        fields["tenant_id"] = TenantId
    read: dict[str, Any] = {}
    problems: list[FieldError] = []
    for field, kind in fields.items():
        try:
            read[field] = TypeAdapter(kind).validate_python(values.get(field) or None)
        except ValidationError:
            rule = "is required" if not _text(values.get(field)) else "is not valid"
            problems.append(FieldError(field, LABELS[field], f"{rule} to connect"))
    if problems:
        raise ValidationFailed(problems)
    secret: SecretStr | None = read["client_secret"]
    return _Request(
        provider=provider,
        mailbox_type=MailboxType(str(values.get("mailbox_type") or "IMAP").upper()),
        account=str(read["account"]),
        client_id=read["client_id"],
        tenant_id=read.get("tenant_id"),
        client_secret=secret.get_secret_value() if secret else None,
    )


def _key(data: Mapping[str, Any], field: str) -> str:
    value = data.get(field)
    text = value.value if isinstance(value, StrEnum) else _text(value)
    return (
        text.lower()
        if field == "oauth_provider"
        else (text if field == "client_id" else text.casefold())
    )


def _text(value: Any) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value.strip() if isinstance(value, str) else ""


def _aware(moment: datetime) -> datetime:
    # SQLite hands datetimes back without their zone; they were stored in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
