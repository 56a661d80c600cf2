"""Provider keys at rest: Fernet (AES-128-CBC + HMAC-SHA256) with rotation through MultiFernet.

The first configured key encrypts; every configured key decrypts, so adding a new key in front
and running ``tollhouse keys rotate-secrets`` re-encrypts old rows without downtime. With no key
configured, one is generated once into ``<data_dir>/secret.key`` (mode 0600): fine for one
machine; a cluster must configure ``tenancy.encryption_keys`` so every replica can decrypt.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from tollhouse.errors import ConfigError


class SecretBox:
    def __init__(self, keys: tuple[str, ...]) -> None:
        if not keys:
            raise ConfigError("tenancy.encryption_keys: at least one key is needed")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except (ValueError, TypeError) as exc:
            raise ConfigError("tenancy.encryption_keys: each key must be 32 url-safe base64 bytes") from exc

    @classmethod
    def from_settings(cls, keys: tuple[str, ...], data_dir: Path) -> SecretBox:
        if keys:
            return cls(keys)
        path = data_dir / "secret.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
        return cls((path.read_text().strip(),))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str | None:
        """None when no configured key can decrypt it (a removed key): the key is then unusable."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            return None

    def rotate(self, ciphertext: str) -> str:
        return self._fernet.rotate(ciphertext.encode()).decode()
