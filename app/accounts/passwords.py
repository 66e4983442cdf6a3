"""Password hashing (argon2id) and the few rules we keep: length, and not a common password."""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import lazy_gettext as _l

from app.errors import InvalidInput

MIN_LENGTH = 8
MAX_LENGTH = 128
# The 20,000 most common passwords (from Django's list, BSD licence).
COMMON_PASSWORDS = Path(__file__).parent / "data" / "common-passwords.txt.gz"

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when a name is unknown, so that a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password, only for timing")


@cache
def _common() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip().casefold() for line in fh if line.strip())


def check_password_rules(password: str, *, display_name: str = "") -> None:
    """Refuse passwords that are too short, too long, common, or the display name itself."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(_l("Please use at least 8 characters. A short sentence works well."),
                           field="password")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(_l("Please use at most 128 characters."), field="password")
    folded = password.casefold()
    if folded in _common():
        raise InvalidInput(_l("That password is one of the most common ones, so it is easy to "
                              "guess. Please pick something more personal."), field="password")
    if display_name and folded == display_name.casefold():
        raise InvalidInput(_l("Please pick a password that is different from your name."),
                           field="password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; takes the same time when there is no account."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
