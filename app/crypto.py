"""Secrets at rest (tracker tokens, authenticator secrets): Fernet encryption with key rotation.

TOKEN_KEYS holds one or more Fernet keys, comma-separated, newest first. New values are encrypted
with the first; every listed key can still decrypt, so a key is retired by putting a new one in
front, running `flask wearables rotate-keys`, then removing the old one.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask

_CIPHER = "hearten.cipher"


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


def app_cipher(app: Flask) -> TokenCipher:
    """The app's cipher for secrets at rest, made from TOKEN_KEYS once per app."""
    cipher: TokenCipher | None = app.extensions.get(_CIPHER)
    if cipher is None:
        cipher = app.extensions[_CIPHER] = TokenCipher(list(app.config["TOKEN_KEYS"]))
    return cipher


__all__ = ["InvalidToken", "TokenCipher", "app_cipher", "new_key"]
