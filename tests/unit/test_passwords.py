"""auth/passwords.py: Argon2id for new hashes, werkzeug's kinds still read, which need a rehash."""
from __future__ import annotations

import pytest
from werkzeug.security import generate_password_hash

from auth import passwords

CHEAP = "argon2id:64:1:1"


@pytest.mark.parametrize("method", [CHEAP, "scrypt:1024:8:1", "pbkdf2:sha256:1000"])
def test_pwd001_each_method_hashes_and_verifies_and_any_verify_reads_it(method: str) -> None:
    h = passwords.hash_password("a password", method)
    assert h != passwords.hash_password("a password", method), "salted"
    assert passwords.verify(h, "a password") and not passwords.verify(h, "a passworD")
    assert not passwords.needs_rehash(h, method)


def test_pwd002_a_hash_of_another_kind_or_other_parameters_needs_a_rehash() -> None:
    argon_cheap = passwords.hash_password("pw", CHEAP)
    argon_default = passwords.hash_password("pw")
    scrypt = generate_password_hash("pw", method="scrypt")         # werkzeug's default N=2^15
    assert argon_default.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.needs_rehash(argon_cheap, passwords.DEFAULT_METHOD)
    assert not passwords.needs_rehash(argon_default, passwords.DEFAULT_METHOD)
    assert passwords.needs_rehash(scrypt, passwords.DEFAULT_METHOD)
    assert not passwords.needs_rehash(scrypt, "scrypt"), "scrypt names werkzeug's parameters"
    assert not passwords.needs_rehash(scrypt, "scrypt:32768:8:1")
    assert passwords.needs_rehash(scrypt, "scrypt:1024:8:1")
    assert passwords.needs_rehash(argon_default, "scrypt")
    assert passwords.needs_rehash("$argon2i$garbage", passwords.DEFAULT_METHOD)


@pytest.mark.parametrize("stored", ["", "plain", "$argon2id$v=19$m=64,t=1,p=1$bad", "scrypt:1024:8:1$x$y",
                                    "md5$abc$def", "$argon2id$"])
def test_pwd003_a_malformed_stored_hash_is_a_mismatch_not_an_error(stored: str) -> None:
    assert passwords.verify(stored, "a password") is False


@pytest.mark.parametrize("method", [CHEAP, "scrypt:1024:8:1"])
def test_pwd005_a_password_that_is_no_text_is_a_mismatch_not_an_error(method: str) -> None:
    h = passwords.hash_password("a password", method)
    assert passwords.verify(h, "a pass\ud800word") is False


@pytest.mark.parametrize("method", ["md5", "argon2id", "argon2id:19456:2", "argon2id:4:1:1", "argon2id:64:0:1",
                                   "argon2i:64:1:1", "argon2id:64:1:1 ", "", "scrypt:x"])
def test_pwd004_an_unknown_or_malformed_method_is_refused(method: str) -> None:
    with pytest.raises(ValueError):
        passwords.check_method(method)
