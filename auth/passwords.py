"""Password hashes: Argon2id for new ones, werkzeug's scrypt/pbkdf2 still read.

A method names the hash written for a new password:

* ``argon2id:M:T:P`` — Argon2id with M KiB of memory, T passes, P lanes (argon2-cffi). The
  default, ``argon2id:19456:2:1``, is OWASP's first recommended configuration (19 MiB, two
  passes, one lane): ~18 ms of CPU here, where werkzeug's scrypt default (N = 2^15, r = 8,
  itself under OWASP's N = 2^17 for scrypt) costs ~75 ms. Sign-in cost is what 500 users
  signing in at once wait for.
* anything werkzeug's ``generate_password_hash`` takes (``scrypt``, ``scrypt:N:r:p``,
  ``pbkdf2:sha256:600000``): for a deployment that must stay on them, and cheap ones in tests.

`verify` reads either kind whatever the method; `needs_rehash` tells that a stored hash is
not the method's (an older kind or other parameters), so a right password can be hashed
again on sign-in (data/users.py) and old hashes move to the current method as people sign in.
"""
from __future__ import annotations

import functools
import re

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from werkzeug.security import check_password_hash, generate_password_hash

DEFAULT_METHOD = "argon2id:19456:2:1"
_ARGON2_RE = re.compile(r"argon2id:(\d{1,7}):(\d{1,3}):(\d{1,3})")


def check_method(method: str) -> str:
    """The method, if it is one this module can hash with (ValueError otherwise)."""
    if not isinstance(method, str) or not method:
        raise ValueError("a password hash method is a non-empty string")
    if method.startswith("argon2"):
        _hasher(method)
    else:
        _werkzeug_prefix(method)        # werkzeug's own check of the name (ValueError)
    return method


@functools.lru_cache(maxsize=8)
def _hasher(method: str) -> PasswordHasher:
    m = _ARGON2_RE.fullmatch(method)
    if m is None:
        raise ValueError(f"{method!r}: an Argon2 method is argon2id:MEMORY_KIB:PASSES:LANES")
    memory, passes, lanes = (int(g) for g in m.groups())
    if not (8 * lanes <= memory and passes >= 1 and lanes >= 1):
        raise ValueError(f"{method!r}: Argon2 needs at least 8 KiB per lane and one pass")
    return PasswordHasher(time_cost=passes, memory_cost=memory, parallelism=lanes, type=Type.ID)


def hash_password(password: str, method: str = DEFAULT_METHOD) -> str:
    """A new salted hash of the password by `method`."""
    if method.startswith("argon2"):
        return _hasher(method).hash(password)
    return generate_password_hash(password, method=method)


def verify(stored: str, password: str) -> bool:
    """Is `password` the one `stored` was made from? Either kind of hash, in constant time;
    a malformed stored hash is a mismatch, not an error."""
    if stored.startswith("$argon2"):
        try:
            # Any PasswordHasher verifies any Argon2 hash: the parameters are in the hash.
            return bool(_hasher(DEFAULT_METHOD).verify(stored, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeEncodeError):
            return False            # (a lone surrogate cannot be the UTF-8 of any password)
    try:
        return check_password_hash(stored, password)
    except (ValueError, TypeError):
        return False


def needs_rehash(stored: str, method: str) -> bool:
    """Was `stored` made by another method (another kind or other parameters) than `method`?"""
    if method.startswith("argon2"):
        if not stored.startswith("$argon2id$"):
            return True
        try:
            return bool(_hasher(method).check_needs_rehash(stored))
        except InvalidHashError:
            return True
    if stored.startswith("$argon2"):
        return True
    made_by = stored.split("$", 1)[0]
    return made_by != method and made_by != _werkzeug_prefix(method)


@functools.lru_cache(maxsize=8)
def _werkzeug_prefix(method: str) -> str:
    """What werkzeug writes before the salt for `method` ("scrypt" → "scrypt:32768:8:1")."""
    return generate_password_hash("probe", method=method).split("$", 1)[0]
