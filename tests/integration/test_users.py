"""Accounts, sign-in limiting, API tokens and their CLI on a real Redis."""
from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

import data.users as users_mod
from auth import passwords, users_cli
from data.keys import Keys
from data.signin import SignInLimiter, Verdict
from data.users import TokenStore, UnknownToken, UnknownUser, UserError, UserStore
from tests.helpers import everything_in_redis

K = Keys("qms")
FAST = "scrypt:1024:8:1"        # still scrypt, cheap enough for tests
PASSWORD = "correct horse battery"  # noqa: S105 - a test fixture




@pytest.fixture
def users(r: Any) -> UserStore:
    return UserStore(r, K, hash_method=FAST)


def test_usr001_add_get_and_check_password(users: UserStore) -> None:
    added = users.add("ann.lee@example", ["qa_lead", "developer"], PASSWORD)
    got = users.get("ann.lee@example")
    assert got == added and got.roles == ("qa_lead", "developer") and not got.disabled
    assert users.check_password("ann.lee@example", PASSWORD) == added
    assert users.check_password("ann.lee@example", PASSWORD + "x") is None
    assert users.check_password("bob", PASSWORD) is None
    assert users.check_password("no such/user!", PASSWORD) is None
    assert users.get("bob") is None and users.count() == 1
    with pytest.raises(UserError, match="already exists"):
        users.add("ann.lee@example", ["developer"], PASSWORD)
    users.set_disabled("ann.lee@example", True)
    assert users.check_password("ann.lee@example", PASSWORD) is None, "disabled users cannot sign in"
    users.set_disabled("ann.lee@example", False)
    assert users.check_password("ann.lee@example", PASSWORD) is not None


@pytest.mark.parametrize("name, roles, password, message", [
    ("", ["developer"], PASSWORD, "user name"),
    ("x" * 65, ["developer"], PASSWORD, "user name"),
    ("ann:admin", ["developer"], PASSWORD, "user name"),
    ("ann", [], PASSWORD, "at least one role"),
    ("ann", ["Bad Role"], PASSWORD, "not a role name"),
    ("ann", ["developer"], "short", "at least 8"),
])
def test_usr002_add_validates(users: UserStore, name: str, roles: list[str], password: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        users.add(name, roles, password)
    assert users.count() == 0


def test_usr003_clear_password_is_nowhere_in_redis(r: Any, users: UserStore) -> None:
    users.add("ann", ["developer"], PASSWORD)
    users.set_password("ann", "second secret pw")
    blob = everything_in_redis(r)
    assert b"ann" in blob, "the scan sees the user's data"
    assert PASSWORD.encode() not in blob and b"second secret pw" not in blob
    assert r.hget(K.user("ann"), "pw").startswith(b"scrypt:")


def test_usr004_session_epoch_bumps_on_password_disable_and_roles(users: UserStore) -> None:
    first = users.add("ann", ["developer"], PASSWORD)
    assert first.accepts_session(first.session_epoch)
    users.set_password("ann", "another password")
    after_pw = users.get("ann")
    assert after_pw is not None and after_pw.session_epoch == first.session_epoch + 1
    assert after_pw.password_changed >= first.password_changed
    assert not after_pw.accepts_session(first.session_epoch)
    assert users.check_password("ann", PASSWORD) is None and users.check_password("ann", "another password")
    users.set_disabled("ann", True)
    disabled = users.get("ann")
    assert disabled is not None and disabled.session_epoch == first.session_epoch + 2
    assert not disabled.accepts_session(disabled.session_epoch)
    users.set_roles("ann", ["qa_lead"])
    changed = users.get("ann")
    assert changed is not None and changed.roles == ("qa_lead",) and changed.session_epoch == first.session_epoch + 3
    changes: list[Callable[[], None]] = [lambda: users.set_password("ghost", PASSWORD),
                                         lambda: users.set_disabled("ghost", True),
                                         lambda: users.set_roles("ghost", ["developer"])]
    for change in changes:
        with pytest.raises(UnknownUser):
            change()
    assert users.get("ghost") is None, "a change to an unknown user creates nothing"


def test_usr005_unknown_users_cost_a_hash_too(users: UserStore, monkeypatch: pytest.MonkeyPatch) -> None:
    users.add("ann", ["developer"], PASSWORD)
    calls: list[str] = []

    verify = passwords.verify

    def counting(pwhash: str, password: str) -> bool:
        calls.append(pwhash.split("$")[0])
        return verify(pwhash, password)

    monkeypatch.setattr(passwords, "verify", counting)
    users.check_password("ann", "wrong password")
    users.check_password("nobody", "wrong password")
    users.check_password("bad name!", "wrong password")
    users.set_disabled("ann", True)
    users.check_password("ann", PASSWORD)
    assert calls == [FAST] * 4


def test_usr006_list_sorted(users: UserStore) -> None:
    for name in ("carl", "ann", "bea"):
        users.add(name, ["developer"], PASSWORD)
    assert [u.name for u in users.list()] == ["ann", "bea", "carl"]


def test_usr007_new_passwords_are_argon2id_with_owasps_parameters(r: Any) -> None:
    users = UserStore(r, K)                  # the default method, as the app makes accounts
    added = users.add("ann", ["developer"], PASSWORD)
    stored = r.hget(K.user("ann"), "pw").decode()
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), stored
    assert users.check_password("ann", PASSWORD) == added
    assert users.check_password("ann", PASSWORD + "x") is None
    assert r.hget(K.user("ann"), "pw").decode() == stored, "a sign-in with the current method writes nothing"


def test_usr008_a_scrypt_hash_is_hashed_again_at_sign_in_and_the_sessions_stay(r: Any) -> None:
    old = UserStore(r, K, hash_method=FAST)
    ann = old.add("ann", ["developer"], PASSWORD)
    sid = old.sessions.create("ann", ann.session_epoch, 3600, False)
    scrypt_hash = r.hget(K.user("ann"), "pw").decode()
    assert scrypt_hash.startswith(FAST + "$")
    users = UserStore(r, K)                  # the app after the upgrade: Argon2id
    assert users.check_password("ann", "wrong password") is None
    assert r.hget(K.user("ann"), "pw").decode() == scrypt_hash, "a wrong password moves nothing"
    assert users.check_password("ann", PASSWORD) == ann
    stored = r.hget(K.user("ann"), "pw").decode()
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), stored
    assert users.get("ann") == ann, "not a password change: epoch and password_changed as they were"
    assert users.signed_in("ann", sid) is not None, "the sign-in made before goes on"
    assert users.check_password("ann", PASSWORD) == ann and users.check_password("ann", "wrong password") is None
    assert r.hget(K.user("ann"), "pw").decode() == stored
    # And back: a deployment that names scrypt again hashes Argon2id ones with it at sign-in.
    assert old.check_password("ann", PASSWORD) == ann
    assert r.hget(K.user("ann"), "pw").decode().startswith(FAST + "$")


def test_usr009_a_password_changed_during_a_sign_in_is_not_overwritten_by_its_rehash(
        r: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    UserStore(r, K, hash_method=FAST).add("ann", ["developer"], PASSWORD)
    users = UserStore(r, K)
    needs = passwords.needs_rehash

    def changed_meanwhile(stored: str, method: str) -> bool:
        UserStore(r, K, hash_method=FAST).set_password("ann", "a new password")     # an admin, now
        return needs(stored, method)

    monkeypatch.setattr(passwords, "needs_rehash", changed_meanwhile)
    assert users.check_password("ann", PASSWORD) is not None      # right when it was read
    monkeypatch.setattr(passwords, "needs_rehash", needs)
    assert r.hget(K.user("ann"), "pw").decode().startswith(FAST + "$"), "the admin's change stays"
    assert users.check_password("ann", PASSWORD) is None
    assert users.check_password("ann", "a new password") is not None


def test_usr010_a_hash_method_is_checked_when_the_store_is_made(r: Any) -> None:
    for bad in ("md5", "argon2id:19456", "argon2id:4:1:1", "argon2id:x:2:1", ""):
        with pytest.raises(ValueError):
            UserStore(r, K, hash_method=bad)
    assert UserStore(r, K, hash_method="pbkdf2:sha256:1000").add("bob", ["developer"], PASSWORD)
    assert r.hget(K.user("bob"), "pw").startswith(b"pbkdf2:sha256:1000$")


def _wrong(limiter: SignInLimiter, name: str, ip: str) -> Verdict:
    """An attempt with a wrong password, as the sign-in views make it."""
    verdict = limiter.attempt(name, ip)
    if not verdict.wait_s:
        limiter.failure(name, ip)
    return verdict


def test_lim001_five_failures_limit_that_user_at_that_address_only(r: Any) -> None:
    limiter = SignInLimiter(r, K, max_failures=5, window_s=60)
    for _ in range(5):
        assert _wrong(limiter, "ann", "10.0.0.1").wait_s == 0
    for _ in range(10):
        assert 0 < limiter.attempt("ann", "10.0.0.1").wait_s <= 60, "five failures limit ann at that address"
    elsewhere = limiter.attempt("ann", "10.0.0.99")
    assert elsewhere.wait_s == 0, "ann is never locked out from another address"
    assert elsewhere.delay_s == limiter.slow_base_s, "but slowed down, by its 5 failures (refused attempts are none)"
    assert limiter.attempt("bea", "10.0.0.1") == limiter.attempt("bea", "10.0.0.2") == (0, 0.0)
    limiter.success("ann", "10.0.0.1")
    assert limiter.attempt("ann", "10.0.0.1").wait_s == 0, "a success clears the pair"


def test_lim002_blocks_per_address_and_success_keeps_that(r: Any) -> None:
    limiter = SignInLimiter(r, K, max_failures=5, window_s=60, address_max_failures=8)
    for i in range(8):
        _wrong(limiter, f"user{i}", "192.0.2.7")
    assert limiter.attempt("someone", "192.0.2.7").wait_s > 0, "spraying names from one address is blocked"
    assert limiter.attempt("someone", "192.0.2.8").wait_s == 0
    limiter.success("user0", "192.0.2.7")
    assert limiter.attempt("someone", "192.0.2.7").wait_s > 0, "a valid sign-in does not reset the address"
    for i in range(8):
        _wrong(limiter, f"v6user{i}", f"2001:db8::{i + 1}")
    assert limiter.attempt("x", "2001:db8::ffff").wait_s > 0, "one IPv6 /64 counts as one address"
    assert limiter.attempt("x", "2001:db8:0:1::1").wait_s == 0
    for i in range(30):              # an office behind one address signing in, right passwords
        assert limiter.attempt(f"staff{i}", "198.51.100.1").wait_s == 0, i
        limiter.success(f"staff{i}", "198.51.100.1")


def test_lim003_unblocks_when_the_window_expires(r: Any) -> None:
    limiter = SignInLimiter(r, K, max_failures=2, window_s=1)
    _wrong(limiter, "ann", "10.1.1.1")
    _wrong(limiter, "ann", "10.1.1.1")
    assert limiter.attempt("ann", "10.1.1.1").wait_s == 1
    keys = [K.signin_fail_pair("ann", "10.1.1.1"), K.signin_fail_user("ann"), K.signin_fail_ip("10.1.1.1")]
    assert all(0 < r.pttl(k) <= 1000 for k in keys), "counters carry the window as TTL"
    for k in keys:
        r.pexpire(k, 20)          # fast-forward the window instead of sleeping through it
    time.sleep(0.05)
    assert limiter.attempt("ann", "10.1.1.1") == (0, 0.0)
    r.delete(K.signin_fail_ip("10.1.1.1"))      # the window ends while the password is checked
    limiter.success("ann", "10.1.1.1")
    assert not r.exists(K.signin_fail_ip("10.1.1.1")), "giving the attempt back makes no counter without a window"


def test_lim005_a_distributed_attack_slows_the_user_but_never_locks_them_out(r: Any) -> None:
    """Every address guessing ann runs into its own limit; ann's own attempts, from an address
    that did not fail, are only delayed, doubling per failure past the limit up to a cap."""
    limiter = SignInLimiter(r, K, max_failures=5, window_s=60, slow_base_s=0.5, slow_max_s=8.0)
    delays = []
    for i in range(40):
        own = limiter.attempt("ann", f"10.9.{i}.1")
        assert own.wait_s == 0
        delays.append(own.delay_s)
        assert _wrong(limiter, "ann", f"172.16.{i // 5}.1").wait_s == 0
    assert delays[:5] == [0.0] * 5
    assert delays[5:10] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert set(delays[10:]) == {8.0}
    assert all(limiter.attempt("ann", f"172.16.{i}.1").wait_s > 0 for i in range(8)), "each guessing address is limited"


def test_lim004_odd_input_makes_bounded_keys(r: Any) -> None:
    limiter = SignInLimiter(r, K)
    _wrong(limiter, "x" * 5000, "not an address" * 100)
    assert all(len(k) < 100 for k in r.keys("*")), [k[:80] for k in r.keys("*")]


def test_tok001_create_verify_revoke(r: Any) -> None:
    tokens = TokenStore(r, K)
    token_id, secret = tokens.create("ci-producer", ["producer"], "admin")
    assert secret.startswith(f"qms_{token_id}_") and len(secret.split("_", 2)[2]) == 43
    token = tokens.verify(secret)
    assert token is not None and token.id == token_id and token.name == "ci-producer"
    assert token.roles == ("producer",) and token.created_by == "admin" and not token.revoked
    assert token.last_used > 0
    assert [t.id for t in tokens.list()] == [token_id]
    tokens.revoke(token_id)
    assert tokens.verify(secret) is None
    listed = tokens.list()[0]
    assert listed.revoked > 0
    tokens.revoke(token_id)
    assert tokens.list()[0].revoked == listed.revoked, "revoking twice keeps the first time"
    with pytest.raises(UnknownToken):
        tokens.revoke("0123456789abcdef")
    with pytest.raises(UnknownToken):
        tokens.revoke("../../etc")


def test_tok002_secret_not_stored_and_malformed_rejected(r: Any) -> None:
    tokens = TokenStore(r, K)
    token_id, secret = tokens.create("ci", ["producer"], "admin")
    blob = everything_in_redis(r)
    assert token_id.encode() in blob and secret.split("_", 2)[2].encode() not in blob and secret.encode() not in blob
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    other_id = "0" * 16 if token_id != "0" * 16 else "1" * 16
    for bad in ("", "qms_", secret + "x", secret[:-1], tampered, secret.replace("qms_", "qmx_", 1),
                secret.replace(token_id, other_id), " " + secret, secret.upper(), None, 42):
        assert tokens.verify(bad) is None, bad  # type: ignore[arg-type]
    assert tokens.verify(secret) is not None


def test_tok003_last_used_written_at_most_once_a_minute(r: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = TokenStore(r, K)
    token_id, secret = tokens.create("ci", ["producer"], "admin")
    now = [1_700_000_000_000]
    monkeypatch.setattr(users_mod, "now_ms", lambda: now[0])
    tokens.verify(secret)
    now[0] += 59_000
    tokens.verify(secret)
    assert int(r.hget(K.token(token_id), "last_used")) == 1_700_000_000_000
    now[0] += 2_000
    tokens.verify(secret)
    assert int(r.hget(K.token(token_id), "last_used")) == 1_700_000_061_000


# --- CLI handlers ------------------------------------------------------------------------

@pytest.fixture
def services(r: Any, settings: Any) -> SimpleNamespace:
    return SimpleNamespace(redis=r, keys=K, settings=settings)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    users_cli.register(parser.add_subparsers(dest="cmd", required=True))
    return parser.parse_args(argv)


def test_cli101_users_add_passwd_disable_list(services: SimpleNamespace, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    args = parse("users", "add", "ann", "--role", "qa_lead", "--role", "export_never", "--password-stdin")
    with pytest.raises(SystemExit) as exit_:
        args.fn(args, services)
    assert exit_.value.code == 2 and "unknown role(s) 'export_never'" in capsys.readouterr().err
    args = parse("users", "add", "ann", "--role", "qa_lead", "--password-stdin")
    assert args.needs_services
    args.fn(args, services)
    store = UserStore(services.redis, K)
    assert store.check_password("ann", PASSWORD) is not None
    prompts = iter(["new password 1", "new password 1"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(prompts))
    args = parse("users", "passwd", "ann")
    args.fn(args, services)
    assert store.check_password("ann", "new password 1") is not None
    prompts = iter(["new password 2", "typo password 2"])
    with pytest.raises(SystemExit) as exit_:
        args.fn(args, services)
    assert exit_.value.code == 1
    for cmd in (("users", "disable", "ann"), ("users", "list")):
        args = parse(*cmd)
        args.fn(args, services)
    out = capsys.readouterr()
    assert "ann" in out.out and "disabled" in out.out and "qa_lead" in out.out
    everything = out.out + out.err
    assert PASSWORD not in everything and "new password" not in everything and "typo" not in everything
    assert store.check_password("ann", "new password 1") is None
    args = parse("users", "enable", "ann")
    args.fn(args, services)
    assert store.check_password("ann", "new password 1") is not None
    args = parse("users", "disable", "ghost")
    with pytest.raises(SystemExit) as exit_:
        args.fn(args, services)
    assert exit_.value.code == 1 and "no user 'ghost'" in capsys.readouterr().err


def test_cli102_short_password_from_stdin_refused(services: SimpleNamespace, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    args = parse("users", "add", "ann", "--role", "developer", "--password-stdin")
    with pytest.raises(SystemExit) as exit_:
        args.fn(args, services)
    assert exit_.value.code == 1 and "at least 8" in capsys.readouterr().err
    assert UserStore(services.redis, K).count() == 0


def test_cli103_tokens_create_list_revoke(services: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("tokens", "create", "ci-producer", "--role", "producer", "--created-by", "ops@example")
    args.fn(args, services)
    out = capsys.readouterr()
    secret = out.out.strip()
    assert "shown only this once" in out.err and secret not in out.err
    token = TokenStore(services.redis, K).verify(secret)
    assert token is not None and token.roles == ("producer",) and token.created_by == "ops@example"
    args = parse("tokens", "list")
    args.fn(args, services)
    listed = capsys.readouterr().out
    assert token.id in listed and "ci-producer" in listed and secret not in listed
    args = parse("tokens", "revoke", token.id)
    args.fn(args, services)
    assert TokenStore(services.redis, K).verify(secret) is None
    args = parse("tokens", "create", "x", "--role", "root")
    with pytest.raises(SystemExit) as exit_:
        args.fn(args, services)
    assert exit_.value.code == 2 and "known roles: admin" in capsys.readouterr().err


# --- server-side sign-ins (data/sessions.py) --------------------------------------------------

def test_sid001_sign_ins_are_ended_one_or_all_and_keep_no_id_in_clear(r: Any, users: UserStore) -> None:
    users.add("ann", ["developer"], PASSWORD)
    a, b = users.sessions.create("ann", 1, 3600), users.sessions.create("ann", 1, 3600, remember=True)
    assert users.sessions.get(a).user == "ann" and users.sessions.get(b).remember
    blob = everything_in_redis(r)
    assert a.encode() not in blob and b.encode() not in blob
    assert users.signed_in("ann", a) is not None
    assert users.signed_in("bea", a) is None, "the id is only good for its own user"
    users.sessions.end(a)
    assert users.sessions.get(a) is None and users.signed_in("ann", a) is None
    assert users.signed_in("ann", b) is not None
    users.set_password("ann", "another passphrase")
    assert users.sessions.get(b) is None
    assert list(r.scan_iter("qms:session:*")) == [] and not r.exists(K.user_sessions("ann"))


def test_sid002_a_users_sign_ins_are_bounded_and_the_expired_drop_out(r: Any, users: UserStore,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users.sessions, "MAX_PER_USER", 3)
    first = [users.sessions.create("ann", 1, 3590 + i) for i in range(5)]     # the first ones expire first
    assert [users.sessions.get(s) is not None for s in first] == [False, False, True, True, True]
    assert r.zcard(K.user_sessions("ann")) == 3
    assert 3590_000 < r.pttl(K.user_sessions("ann")) <= 3594_000, "the set lives as long as its longest sign-in"
    r.zadd(K.user_sessions("ann"), {"gone": 1})          # a sign-in that expired long ago
    users.sessions.create("ann", 1, 60)
    assert r.zscore(K.user_sessions("ann"), "gone") is None
