"""The secret box: Fernet encryption with a key list, so keys can be rotated."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from mailbox_core.errors import ConfigurationError

log = logging.getLogger(__name__)


class UndecryptableSecret(Exception):
    """Raised by ``SecretBox.decrypt``; the service turns it into SecretDecryptionError."""


#: Length (hex digits) of a key ID: 64 bits tell a handful of configured keys apart.
KEY_ID_LENGTH = 16


def key_id(key: str) -> str:
    """A short ID of a Fernet key, stored beside each secret it encrypted.

    A keyed hash (HMAC under the key itself, over a fixed label), so the ID can be computed
    only by someone who holds the key and reveals nothing about it; the key never lives in
    the database (SPEC §4).
    """
    raw = base64.urlsafe_b64decode(key.strip().encode("ascii"))
    digest = hmac.new(raw, b"mailbox-manager key id v1", hashlib.sha256).hexdigest()
    return digest[:KEY_ID_LENGTH]


class SecretBox:
    """Encrypts with the first key, decrypts with any of them (MultiFernet)."""

    def __init__(self, keys: list[str] | tuple[str, ...]) -> None:
        if not keys:
            raise ConfigurationError("At least one encryption key is required.")
        fernets = []
        ids = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode("ascii")))
                ids.append(key_id(key))
            except (ValueError, UnicodeEncodeError) as exc:
                raise ConfigurationError(
                    f"Encryption key #{position} is not a valid Fernet key (32 url-safe "
                    "base64-encoded bytes). Generate one with "
                    "`python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`."
                ) from exc
        self._fernet = MultiFernet(fernets)
        self._fernets = tuple(zip(ids, fernets, strict=True))
        #: IDs of the configured keys, the encrypting one first.
        self.key_ids: tuple[str, ...] = tuple(ids)

    @property
    def primary_key_id(self) -> str:
        """The ID of the key that ``encrypt`` and ``rotate`` use (the first)."""
        return self.key_ids[0]

    def key_id_of(self, token: str) -> str | None:
        """The ID of the configured key that opens ``token``, or None when none does."""
        try:
            data = token.encode("ascii")
        except UnicodeError:
            return None
        for identifier, fernet in self._fernets:
            try:
                fernet.decrypt(data)
            except InvalidToken:
                continue
            return identifier
        return None

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


def load_or_create_key_file(path: Path, *, before_create: Callable[[], None] | None = None) -> str:
    """Read the key file, creating it owner-only when missing (``before_create`` may refuse)."""
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    if before_create is not None:
        before_create()  # raises to refuse, e.g. while the database holds secrets
    make_private_dir(path.parent)
    key = generate_key()
    try:
        created = _publish_key(path, key)
    except OSError as exc:
        raise ConfigurationError(f"The key file {path} cannot be created: {_reason(exc)}.") from exc
    if not created:  # another process starting at the same moment was first: use its key
        return _read_key_file(path)
    log.warning(
        "Created a new encryption key at %s (mode 0600). Back it up: without it the "
        "stored passwords and tokens cannot be decrypted.",
        path,
    )
    return key


def _publish_key(path: Path, key: str) -> bool:
    """Write ``key`` to ``path`` unless something is there; False when another process was first.

    The key goes to a temporary file that is hard-linked into place (link, like O_EXCL, never
    replaces an existing file), so a process starting at the same moment reads the whole key
    or finds no file, never an empty one. File systems without hard links get O_EXCL.
    """
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:  # mkstemp: mode 0600
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())  # a crash must not leave an empty key behind secrets
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        except OSError:  # no hard links here (some network and FUSE file systems)
            return _create_exclusively(path, key)
    finally:
        os.unlink(temporary)
    return True


def _create_exclusively(path: Path, key: str) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return True


def make_private_dir(path: Path) -> None:
    """Create a directory and its missing parents owner-only (0700), whatever the umask.

    Directories that already exist keep their permissions: they are the user's choice.
    """
    try:
        _make_private_dirs(path)
    except FileExistsError as exc:
        raise ConfigurationError(
            f"The directory {path} cannot be created: {exc.filename} exists and is not a directory."
        ) from exc
    except OSError as exc:
        raise ConfigurationError(
            f"The directory {path} cannot be created: {_reason(exc)}."
        ) from exc


def _make_private_dirs(path: Path) -> None:
    if path.is_dir():
        return
    _make_private_dirs(path.parent)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if path.is_dir():  # another process made it meanwhile
            return
        raise
    # mkdir's mode passes through the umask (which may drop owner bits): set it exactly.
    path.chmod(0o700)


def _read_key_file(path: Path) -> str:
    """The key file's text; FileNotFoundError only when nothing is there (not even a link)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        if path.is_symlink():
            raise ConfigurationError(
                f"The key file {path} is a symbolic link to {os.readlink(path)}, which does "
                "not exist. Restore the file it points to, or remove the link."
            ) from None
        raise
    except IsADirectoryError as exc:
        raise ConfigurationError(
            f"The key file {path} is a directory; it must be a file holding the key."
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"The key file {path} holds non-ASCII bytes (at byte {exc.start}); a Fernet key is "
            "url-safe base64 text. Restore the file from your backup."
        ) from exc
    except OSError as exc:
        raise ConfigurationError(f"The key file {path} cannot be read: {_reason(exc)}.") from exc
    if not text:
        raise ConfigurationError(f"The key file {path} is empty.")
    if path.stat().st_mode & 0o077:
        log.warning("The key file %s is readable by other users; run chmod 600 on it.", path)
    return text


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
