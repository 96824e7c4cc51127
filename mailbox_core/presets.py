"""Suggested server settings from the Account's domain, for well-known mail providers."""

from __future__ import annotations

from dataclasses import dataclass

from mailbox_core.schemas import MailboxType, OAuthProvider


@dataclass(frozen=True)
class Provider:
    name: str
    imap_host: str
    pop3_host: str | None
    note: str = ""


@dataclass(frozen=True)
class Suggestion:
    """Settings to offer on the form; always implicit TLS on the standard port."""

    provider: str
    mailbox_type: MailboxType
    host: str
    port: int
    note: str

    @property
    def summary(self) -> str:
        return f"{self.provider}: {self.mailbox_type.value} {self.host} port {self.port} with SSL"


_APP_PASSWORD = "without OAuth it needs an app password, not the normal password"
_GOOGLE = Provider(
    "Gmail",
    "imap.gmail.com",
    "pop.gmail.com",
    f"Enable IMAP/POP in Gmail settings; {_APP_PASSWORD}.",
)
_MICROSOFT = Provider(
    "Outlook.com / Office365",
    "outlook.office365.com",
    "outlook.office365.com",
    "Basic sign-in is off for most tenants: use OAuth (Office365).",
)
_YAHOO = Provider(
    "Yahoo Mail", "imap.mail.yahoo.com", "pop.mail.yahoo.com", f"Yahoo {_APP_PASSWORD}."
)
_ICLOUD = Provider(
    "iCloud Mail", "imap.mail.me.com", None, f"iCloud offers no POP3, and {_APP_PASSWORD}."
)
_PROVIDERS: dict[str, Provider] = {
    **dict.fromkeys(("gmail.com", "googlemail.com"), _GOOGLE),
    **dict.fromkeys(("outlook.com", "hotmail.com", "live.com", "msn.com"), _MICROSOFT),
    **dict.fromkeys(("yahoo.com", "ymail.com", "rocketmail.com"), _YAHOO),
    **dict.fromkeys(("icloud.com", "me.com", "mac.com"), _ICLOUD),
    "aol.com": Provider("AOL Mail", "imap.aol.com", "pop.aol.com", f"AOL {_APP_PASSWORD}."),
    **dict.fromkeys(
        ("gmx.com", "gmx.net", "gmx.de"), Provider("GMX", "imap.gmx.net", "pop.gmx.net")
    ),
    "zoho.com": Provider("Zoho Mail", "imap.zoho.com", "pop.zoho.com"),
    "fastmail.com": Provider(
        "Fastmail", "imap.fastmail.com", "pop.fastmail.com", f"Fastmail {_APP_PASSWORD}."
    ),
}


def suggest(account: str, mailbox_type: MailboxType | str) -> Suggestion | None:
    """Settings for the Account's provider, in the chosen type when the provider has it."""
    domain = account.rsplit("@", 1)[-1].strip().lower() if "@" in account else ""
    provider = _PROVIDERS.get(domain)
    if provider is None:
        return None
    wanted = MailboxType(mailbox_type) if mailbox_type in set(MailboxType) else MailboxType.IMAP
    if wanted is MailboxType.POP3 and provider.pop3_host:
        return Suggestion(provider.name, MailboxType.POP3, provider.pop3_host, 995, provider.note)
    return Suggestion(provider.name, MailboxType.IMAP, provider.imap_host, 993, provider.note)


#: The IMAP server of each OAuth provider's mailboxes (XOAUTH2 over implicit TLS).
_OAUTH_SERVERS = {
    OAuthProvider.GMAIL: _GOOGLE,
    OAuthProvider.OFFICE365: _MICROSOFT,
}


def oauth_server(provider: OAuthProvider | str | None) -> Suggestion | None:
    """The server an OAuth provider's mailboxes use: imap.gmail.com or outlook.office365.com."""
    known = next((p for p in _OAUTH_SERVERS if p.value == provider), None)
    if known is None:
        return None
    server = _OAUTH_SERVERS[known]
    return Suggestion(server.name, MailboxType.IMAP, server.imap_host, 993, "")
