"""Failed sign-in limits that slow an attacker down without letting anyone lock a user out.

Three fixed-window counters (Redis strings with the window as TTL):

- per user name × client address: `max_failures` refuse that name from that address for
  the rest of the window (an attacker guessing one account from one address stops there);
- per address: `address_max_failures` over any names refuse that address (one client
  spraying a common password over many names);
- per user name, from every address: past `max_failures`, every attempt for that name is
  *delayed*, doubling per further failure up to `slow_max_s` — never refused. A distributed
  attacker gets fewer guesses per second; the real user, from their own address, still gets
  in (a few seconds later at worst). A hard lock of a name for all addresses would let anyone
  lock out anyone, the admin included.

The pair and address counters count an attempt when it is let in (`attempt`), in the same
transaction that reads them, and give it back when the password was right (`success`):
counted only after a failed check, requests sent at once would all pass a check made before
any of them failed. The name counter counts failed checks (`failure`), so attempts refused
at their address slow nobody down.
"""
from __future__ import annotations

import hashlib
import ipaddress
from typing import NamedTuple

import redis

from data.keys import Keys
from data.users import NAME_RE


class Verdict(NamedTuple):
    wait_s: int        # > 0: refuse this attempt; the client may retry after this long
    delay_s: float     # > 0: check the password only after this long (the per-name slowdown)


# DEL the pair; DECR the address only while its window lives (DECR would recreate it with no TTL).
GIVE_BACK = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECR', KEYS[2]) end
"""


class SignInLimiter:
    def __init__(self, r: redis.Redis, keys: Keys, max_failures: int = 5, window_s: int = 300,
                 address_max_failures: int = 20, slow_base_s: float = 0.5, slow_max_s: float = 8.0) -> None:
        self._r = r
        self._keys = keys
        self.max_failures = max_failures
        self.window_s = window_s
        # Higher than the pair limit: many people behind one office NAT mistype too.
        self.address_max_failures = address_max_failures
        self.slow_base_s = slow_base_s
        self.slow_max_s = slow_max_s
        self._give_back = r.register_script(GIVE_BACK)

    def attempt(self, name: str, ip: str) -> Verdict:
        """Count an attempt of this name from this address: may it go on now, and how much later?
        (Refused attempts count too; they cannot lengthen the window.)"""
        pair, user, addr = self._counter_keys(name, ip)
        with self._r.pipeline(transaction=True) as pipe:
            for key in (pair, addr):
                # SET NX EX starts the window on the first attempt; INCR keeps the TTL.
                pipe.set(key, 0, ex=self.window_s, nx=True)
                pipe.incr(key)
                pipe.pttl(key)
            pipe.get(user)
            _, n_pair, t_pair, _, n_addr, t_addr, n_user = pipe.execute()
        wait = 0
        if n_pair > self.max_failures:
            wait = max(wait, self._seconds(t_pair))
        if n_addr > self.address_max_failures:
            wait = max(wait, self._seconds(t_addr))
        return Verdict(wait, self._delay(int(n_user or 0)))

    def failure(self, name: str, ip: str) -> None:
        """The password of an attempt was wrong: the name's slowdown grows."""
        user = self._counter_keys(name, ip)[1]
        with self._r.pipeline(transaction=True) as pipe:
            pipe.set(user, 0, ex=self.window_s, nx=True)
            pipe.incr(user)
            pipe.execute()

    def success(self, name: str, ip: str) -> None:
        """The password of an attempt was right: the pair starts again, the address gets its
        attempt back (one valid account does not reset a spraying client's count), and the
        name's slowdown keeps going while others are still guessing it."""
        pair, _user, addr = self._counter_keys(name, ip)
        self._give_back(keys=[pair, addr])

    def _delay(self, failures: int) -> float:
        if failures < self.max_failures:
            return 0.0
        return min(self.slow_max_s, self.slow_base_s * 2 ** min(failures - self.max_failures, 32))

    def _counter_keys(self, name: str, ip: str) -> tuple[str, str, str]:
        subject, address = _subject(name), _address(ip)
        return (self._keys.signin_fail_pair(subject, address), self._keys.signin_fail_user(subject),
                self._keys.signin_fail_ip(address))

    def _seconds(self, pttl: int) -> int:
        if pttl == -2:          # expired between GET and PTTL
            return 0
        if pttl < 0:            # no TTL should never happen; stay blocked for a window rather than forever
            return self.window_s
        return max(1, -(-pttl // 1000))


def _digest(value: str) -> str:
    return "h:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _subject(name: str) -> str:
    # Names come from the sign-in form: anything that could not be a user name is hashed,
    # so attacker input cannot make long or odd keys.
    return name if NAME_RE.fullmatch(name) else _digest(name)


def _address(ip: str) -> str:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return _digest(ip)
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        # One IPv6 client usually holds a whole /64; counting single addresses would not limit it.
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)
