"""The secret box: Fernet encryption with a key list, so keys can be rotated."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from mailbox_core.errors import ConfigurationError

log = logging.getLogger(__name__)


class UndecryptableSecret(Exception):
    """Raised by ``SecretBox.decrypt``; the service turns it into SecretDecryptionError."""


class SecretBox:
    """Encrypts with the first key, decrypts with any of them (MultiFernet)."""

    def __init__(self, keys: list[str] | tuple[str, ...]) -> None:
        if not keys:
            raise ConfigurationError("At least one encryption key is required.")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode("ascii")))
            except (ValueError, UnicodeEncodeError) as exc:
                raise ConfigurationError(
                    f"Encryption key #{position} is not a valid Fernet key (32 url-safe "
                    "base64-encoded bytes). Generate one with "
                    "`python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`."
                ) from exc
        self._fernet = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> str:
        """Encrypt ``plaintext`` with the first key; returns an ASCII token."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt a token made with any configured key."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise UndecryptableSecret from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt a token made with any configured key under the first key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as exc:
            raise UndecryptableSecret from exc

    def decrypt_or_none(self, token: str) -> str | None:
        """The plaintext, or None when no configured key opens ``token``."""
        try:
            return self.decrypt(token)
        except UndecryptableSecret:
            return None

    def can_decrypt(self, token: str) -> bool:
        """True when one of the configured keys opens ``token``."""
        try:
            self.decrypt(token)
        except UndecryptableSecret:
            return False
        return True


def generate_key() -> str:
    """Return a fresh Fernet key as text."""
    return Fernet.generate_key().decode("ascii")


def load_or_create_key_file(path: Path) -> str:
    """Read the key file, creating it with owner-only permissions on first use."""
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    try:
        # O_EXCL: two processes starting at once must not each write a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key_file(path)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    log.warning(
        "Created a new encryption key at %s (mode 0600). Back it up: without it the "
        "stored passwords and tokens cannot be decrypted.",
        path,
    )
    return key


def _read_key_file(path: Path) -> str:
    text = path.read_text(encoding="ascii").strip()
    if not text:
        raise ConfigurationError(f"The key file {path} is empty.")
    if path.stat().st_mode & 0o077:
        log.warning("The key file %s is readable by other users; run chmod 600 on it.", path)
    return text
