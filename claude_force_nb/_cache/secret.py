"""The key that signs cached rows: from the environment, or a private file.

Same idea as nbformat's notebook signatures (a random key in its own file,
readable only by its owner) and itsdangerous (sign with the newest key,
accept any listed key, so a secret can be rotated without losing the cache).
"""

from __future__ import annotations

import hmac
import os
import secrets as _random
import time
from collections.abc import Sequence
from pathlib import Path

from .._config import ENV_HOME, ENV_OLD_SECRETS, ENV_SECRET
from .._errors import CacheFileError
from .database import private_directory

SECRET_FILENAME = "secret"
_SECRET_BYTES = 32
_KEY_ID_LABEL = b"claude-force-nb/key-id/1"


# What verify() finds: signed by a key held here, by a key held here but not over these bytes
# (edited: tampered), or by a key this process does not hold (another kernel's secret: foreign).
VALID, TAMPERED, FOREIGN = "valid", "tampered", "foreign"


def key_id(secret: bytes) -> str:
    """A public name for ``secret``: says which key signed a row without revealing the key."""
    return hmac.new(secret, _KEY_ID_LABEL, "sha256").hexdigest()[:16]


class Signer:
    """HMAC-SHA256 signatures: sign with the newest secret, verify with the one a row names."""

    __slots__ = ("_keyed", "key_id", "source")

    def __init__(self, keys: Sequence[bytes], source: str):
        if not keys or not all(keys):
            raise ValueError("A Signer needs at least one non-empty secret.")
        # Keyed once; copying a keyed HMAC skips hashing the key on every row.
        self._keyed = {key_id(key): hmac.new(key, digestmod="sha256") for key in reversed(keys)}
        self.key_id = key_id(keys[0])  # the newest, which signs
        self.source = source  # "env", "argument" or the secret file's path; never the secret

    def sign(self, data: bytes) -> bytes:
        mac = self._keyed[self.key_id].copy()
        mac.update(data)
        return mac.digest()

    def verify(self, data: bytes, signature: object, signed_by: object) -> str:
        """VALID, TAMPERED (a key held here, but the bytes changed) or FOREIGN (a key not held here)."""
        keyed = self._keyed.get(signed_by) if type(signed_by) is str else None
        if keyed is None:
            return FOREIGN
        if type(signature) is not bytes:
            return TAMPERED
        mac = keyed.copy()
        mac.update(data)
        return VALID if hmac.compare_digest(mac.digest(), signature) else TAMPERED

    def holds(self, signed_by: str) -> bool:
        return signed_by in self._keyed

    def __repr__(self) -> str:
        return f"Signer(source={self.source!r}, keys={len(self._keyed)})"


def load_signer(directory: Path, secrets: Sequence[bytes | str] | None = None, *, source: str = "env") -> Signer:
    """A signer from ``secrets`` (newest first) or else from ``directory/secret``."""
    keys = [s.encode() if isinstance(s, str) else bytes(s) for s in secrets or ()]
    keys = [k for k in keys if k]
    if keys:
        return Signer(keys, source)
    path = Path(directory) / SECRET_FILENAME
    return Signer([_file_secret(path)], str(path))


def _file_secret(path: Path) -> bytes:
    """Read the secret file, creating it (0600, exclusively) if it is missing."""
    try:
        private_directory(path.parent)
        # O_EXCL: when two kernels start at once, exactly one creates the file
        # and the other reads what it wrote.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    except OSError as exc:
        raise CacheFileError(
            f"Could not create the cache secret {path}: {exc.strerror}. Set {ENV_SECRET}, or point "
            f"{ENV_HOME} at a writable directory."
        ) from exc
    # Hex text rather than raw bytes: the file's contents can be pasted into
    # CLAUDE_CACHE_SECRET elsewhere (CI) to verify the same cache there.
    secret = _random.token_hex(_SECRET_BYTES).encode()
    with os.fdopen(fd, "wb") as f:
        f.write(secret + b"\n")
        f.flush()
        os.fsync(f.fileno())
    return secret


def _read_secret(path: Path, *, attempts: int = 50, pause: float = 0.01) -> bytes:
    # The creator writes right after creating; a reader that wins the race to
    # the file may briefly find it empty.
    for _ in range(attempts):
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise CacheFileError(f"Could not read the cache secret {path}: {exc.strerror}.") from exc
        if secret:
            _tighten(path)
            return secret
        time.sleep(pause)
    raise CacheFileError(
        f"The cache secret {path} is empty. Delete it and a new one is created; answers signed with "
        f"the old one are then fetched again (or set {ENV_SECRET} / {ENV_OLD_SECRETS})."
    )


def _tighten(path: Path) -> None:
    """Best effort: a secret others can read is not a secret."""
    try:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError:
        pass
