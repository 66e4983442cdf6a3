"""Secrets at rest (tracker tokens): Fernet encryption with key rotation.

TOKEN_KEYS holds one or more Fernet keys, comma-separated, newest first. New values are encrypted
with the first; every listed key can still decrypt, so a key is retired by putting a new one in
front, running `flask wearables rotate-keys`, then removing the old one.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenCipher:
    """Encrypts and decrypts short secrets with a MultiFernet."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        return self._fernet.decrypt(ciphertext.encode()).decode()

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt with the newest key."""
        return self._fernet.rotate(ciphertext.encode()).decode()


def new_key() -> str:
    return Fernet.generate_key().decode()


__all__ = ["InvalidToken", "TokenCipher", "new_key"]
