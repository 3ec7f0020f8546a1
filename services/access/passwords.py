"""People's passwords: Argon2id hashes (argon2-cffi's RFC 9106 low-memory profile:
3 passes over 64 MiB, 4 lanes), never the password itself.

Verifying costs tens of milliseconds of CPU on purpose, so callers run it off the event
loop (`asyncio.to_thread`). A name that has no password (unknown, or an identity that
signs in with keys only) is checked against `DUMMY_HASH`, so the answer takes as long as
for a wrong password and its timing does not tell which names exist.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.access.exceptions import InvalidIdentity

MIN_LENGTH = 12
# a bound on the work one request can ask of the hasher
MAX_LENGTH = 1024

_HASHER = PasswordHasher()
DUMMY_HASH = _HASHER.hash("a password nobody has, to spend the time of a check")


def checked(password: str) -> str:
    """The password if it may be set, else InvalidIdentity naming the rule it breaks."""
    if len(password) < MIN_LENGTH:
        raise InvalidIdentity(f"password: at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidIdentity(f"password: at most {MAX_LENGTH} characters")
    if not password.strip():
        raise InvalidIdentity("password: not only spaces")
    return password


def hashed(password: str) -> str:
    """The Argon2id hash (PHC string, with its own salt and parameters) of a password."""
    return _HASHER.hash(checked(password))


def matches(password_hash: str | None, password: str) -> bool:
    """Whether `password` is the one `password_hash` was made from; with no hash, spends
    the time of a check against the dummy and answers False."""
    try:
        _HASHER.verify(password_hash or DUMMY_HASH, password[: MAX_LENGTH + 1])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """Whether a hash was made with other parameters than the hasher's current ones."""
    return _HASHER.check_needs_rehash(password_hash)
