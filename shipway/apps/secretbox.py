"""Encrypt secret config values at rest with Fernet and the key kept in DATA/secret.key."""

from __future__ import annotations

import base64
import contextlib
import os
import stat
import uuid
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shipway.errors import SecretKeyError

KEY_FILE = "secret.key"

#: Permission bits that let anyone but the owner at the key.
_SHARED = stat.S_IRWXG | stat.S_IRWXO


class SecretBox:
    """Seals and opens secret values; one key per shipway installation."""

    def __init__(self, key: bytes, path: Path | None = None) -> None:
        self.path = path
        self._key = key
        try:
            self._fernet = Fernet(key)
        except ValueError as e:
            raise SecretKeyError(f"{path or 'the key'} does not hold a valid key: {e}") from e

    @classmethod
    def load(cls, data_dir: Path) -> SecretBox:
        """The box of DATA_DIR's key, which is created on first need and never replaced."""
        path = data_dir / KEY_FILE
        try:
            key = _read_key(path)
        except FileNotFoundError:
            key = _create_key(path)
        return cls(key, path)

    def derive(self, purpose: str) -> bytes:
        """A key of its own for PURPOSE (a Fernet key), so that nothing sealed for one use
        opens as another's."""
        raw = base64.urlsafe_b64decode(self._key)
        kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
        return base64.urlsafe_b64encode(kdf.derive(raw))

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The plain value; SecretKeyError when it was sealed with another key or is damaged."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as e:
            where = self.path or "the secret key"
            raise SecretKeyError(
                f"a secret cannot be decrypted with the key in {where}: it was encrypted "
                "with another key or is damaged; restore the original key file or set the "
                "secret again"
            ) from e


def _read_key(path: Path) -> bytes:
    """The key in PATH, refused when group or others could read it."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as file:
        mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)
        if mode & _SHARED:
            raise SecretKeyError(
                f"{path} is open to group or others (mode {mode:04o}); "
                f"fix it with `chmod 600 {path}`"
            )
        return file.read().strip()


def _create_key(path: Path) -> bytes:
    """Write a new key with mode 0600 beside PATH, then link it in; an existing key wins."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(Fernet.generate_key())
            file.flush()
            os.fsync(file.fileno())
        # A link, unlike a rename, fails when PATH exists: a key is never overwritten.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        _sync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key(path)


def _sync_dir(directory: Path) -> None:
    """Make the new directory entry durable: a lost key loses every secret."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
