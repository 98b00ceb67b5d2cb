"""One per web process: a single Redis pub/sub subscription relayed to every local client
(WebSocket or Server-Sent Events). Clients never touch Redis themselves.

Publishers send ready-made JSON messages; the hub reads only the version to drop stale or
repeated ones (two publishers, a reconnect) and forwards the bytes unchanged. A client has
a bounded outbound queue: a client that cannot keep up is disconnected (its browser
reconnects and starts again from a snapshot) instead of slowing everyone else down.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable

import orjson
import redis

from data.keys import Keys
from live.frames import FrameTail, Outgoing
from live.protocol import Connection

log = logging.getLogger("qms.live")
QUEUE_SIZE = 256
# A message is written to its sockets on the server's loop, FAN_OUT_CHUNK sockets at a time
# with a yield to the loop between (requests waiting get it every ~0.5 ms): a write is one
# non-blocking system call (~3 us here). Until stop 20 two native threads wrote the sockets,
# but each write then had to take the GIL back from the loop (and from the other thread).
FAN_OUT_CHUNK = 128
# gevent.sleep(0) may resume this greenlet before the loop polls (the requests would wait
# the whole fan-out); any positive time waits for the loop's next turn.
YIELD_S = 1e-6
# While the process is handling an HTTP request (`Requests`), the fan-out gives way to it: a
# request waits on Redis several times, and each reply that came during a slice of the
# fan-out waited for the slice. Then it writes BUSY_CHUNK sockets a slice and waits BUSY_WAIT_S
# between slices — longer than a Redis round trip here, so the request runs on as soon as its
# reply is in and the fan-out goes on when the request waits again or is done.
BUSY_CHUNK = 16
BUSY_WAIT_S = 0.0005
CLOSE = object()        # queued to tell a client's loop to end
# Told to every client when the relay loses Redis and when it is back (live.js shows it).
STORE_UNAVAILABLE = b'{"type":"status","data_store":"unavailable"}'
STORE_AVAILABLE = b'{"type":"status","data_store":"available"}'


class Requests:
    """How many HTTP requests this process is handling (its live sockets not counted): the
    WSGI app wrapped by `counted` (live.routes.init_live)."""

    active = 0
    _lock = threading.Lock()     # a threaded server's requests must not lose a count

    @classmethod
    def counted(cls, app: Callable[..., Any], skip: tuple[str, ...]) -> Callable[..., Any]:
        lock = cls._lock

        def counting(environ: dict[str, Any], start_response: Any) -> Any:
            if environ.get("PATH_INFO") in skip:
                return app(environ, start_response)
            with lock:
                cls.active += 1
            try:
                return app(environ, start_response)
            finally:
                with lock:
                    cls.active -= 1
        return counting


class Client:
    """One browser connection: its protocol state and its outbound queue."""

    def __init__(self, conn: Connection, user: str | None, credential: str | None = None) -> None:
        self.conn = conn
        self.user = user
        self.credential = credential     # "session:<digest>" / "token:<id>": closed when it ends
        self.out: queue.Queue[Any] = queue.Queue(QUEUE_SIZE)
        self.closed = False
        self.dropped = 0
        # Set by a transport that can write a frame without waiting (gevent WebSocket,
        # live.routes.DirectWriter): direct(frame) returns False when the frame must go
        # through the queue instead.
        self.direct: Any = None

    def push(self, payload: Outgoing | FrameTail | str) -> bool:
        if self.closed:
            return False
        try:
            self.out.put_nowait(payload)
            return True
        except queue.Full:
            self.dropped += 1
            self.close()
            return False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.out.put_nowait(CLOSE)
            except queue.Full:
                # The loop is behind; it sees `closed` when it next looks.
                pass


class Hub:
    """`still_valid(principal)`: does a socket's credential still pass what an HTTP request
    checks (a RedisError: cannot tell now)? Asked every `recheck_s()` seconds once per
    distinct principal, by one loop of the process (Hub.recheck), not by each socket: with
    thousands of sockets their own checks were thousands of Redis calls in flight at once on
    a busy process, which emptied the connection pool (2,500 sockets a process)."""

    def __init__(self, r: redis.Redis, keys: Keys, still_valid: Callable[[Any], bool] | None = None,
                 recheck_s: Callable[[], float] = lambda: 30.0) -> None:
        self.r = r
        self.k = keys
        self._still_valid = still_valid
        self._recheck_s = recheck_s
        self._sweeper: threading.Thread | None = None
        # Each channel's snapshot as last read, with the channel's count of relayed messages
        # at that read: valid while no message came since (the snapshot is written in the
        # same MULTI as each PUBLISH). One read per channel and message, not per subscriber.
        self._published: dict[str, int] = {}
        self._snaps: dict[str, tuple[int, bytes | None]] = {}
        self._snap_locks: dict[str, threading.Lock] = {}
        self._prefix = keys.live("")
        self._lock = threading.Lock()
        self._clients: set[Client] = set()
        # Each channel's subscribers by what their authorisation depends on (_principal_key):
        # a message asks it once per group, not once per socket (Hub._targets).
        self._by_channel: dict[str, dict[Any, set[Client]]] = {}
        self._versions: dict[tuple[str, str], int] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.relayed = 0
        self.connected = threading.Event()     # set while the pub/sub subscription is up

    # --- clients ------------------------------------------------------------------------
    def add(self, client: Client) -> None:
        with self._lock:
            self._clients.add(client)
        self.start()

    def remove(self, client: Client) -> None:
        client.close()
        with self._lock:
            self._clients.discard(client)
            key = _principal_key(client.conn)
            for groups in self._by_channel.values():
                _leave(groups, key, client)

    def subscribed(self, client: Client, added: list[str], removed: list[str]) -> None:
        with self._lock:
            key = _principal_key(client.conn)
            for ch in added:
                self._by_channel.setdefault(ch, {}).setdefault(key, set()).add(client)
            for ch in removed:
                _leave(self._by_channel.get(ch, {}), key, client)

    def _targets(self, channel: str) -> list[Client]:
        """The channel's subscribers that may have its message now: authorisation (re-asked for
        every message, as `Connection.wants` does) once per group of equal principals."""
        with self._lock:
            groups = [list(members) for members in self._by_channel.get(channel, {}).values() if members]
        targets: list[Client] = []
        for members in groups:
            if members[0].conn.may(channel):
                targets += [c for c in members if channel in c.conn.channels]
        return targets

    def count(self) -> int:
        return len(self._clients)

    def close_user(self, user: str) -> int:
        return self._close_where(lambda c: c.user == user)

    def close_credential(self, credential: str) -> int:
        """Close the sockets of one sign-in or API token (the user's others stay open)."""
        return self._close_where(lambda c: c.credential == credential)

    def _close_where(self, which: Callable[[Client], bool]) -> int:
        with self._lock:
            mine = [c for c in self._clients if which(c)]
        for c in mine:
            c.close()
        return len(mine)

    def snapshot(self, channel: str) -> bytes | None:
        """The channel's last data, all timeframes in one message (for a new subscriber): read
        once per published message while the relay hears the channels (a subscriber that gets
        an older one is subscribed already, so the newer message reaches it too), else at once;
        concurrent readers of one channel share one read."""
        if not self.connected.is_set():
            return self._read_snapshot(channel)
        with self._lock:
            lock = self._snap_locks.setdefault(channel, threading.Lock())
        with lock:
            with self._lock:
                seen = self._published.get(channel, 0)
                cached = self._snaps.get(channel)
            if cached is not None and cached[0] == seen:
                return cached[1]
            snap = self._read_snapshot(channel)
            with self._lock:
                self._snaps[channel] = (seen, snap)
            return snap

    def _read_snapshot(self, channel: str) -> bytes | None:
        stored = self.r.hgetall(self.k.live_last(channel))
        if not stored:
            return None
        merged: dict[str, Any] | None = None
        newest: dict[str, int] = {}         # timeframe -> version of the part kept
        for field, raw in stored.items():
            if field.startswith(b"v:"):     # the publisher's record of each part's version
                continue
            msg = orjson.loads(raw)
            version = msg["data"]["version"]
            if merged is None:
                merged = msg
                newest = dict.fromkeys(msg["data"]["timeframes"], version)
                continue
            for tf, part in msg["data"]["timeframes"].items():
                if version >= newest.get(tf, -1):       # two fields may hold one timeframe: the newer
                    merged["data"]["timeframes"][tf] = part
                    newest[tf] = version
            merged["data"]["version"] = max(merged["data"]["version"], version)
        if merged is None:
            return None
        # Each part says its own version ("v"): the base later deltas of it are checked against.
        for tf, part in merged["data"]["timeframes"].items():
            if isinstance(part, dict):
                part["v"] = newest[tf]
        return orjson.dumps(merged)

    # --- relay --------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run_until_exit, name="qms-live-hub", daemon=True)
            self._thread.start()
            if self._still_valid is not None and (self._sweeper is None or not self._sweeper.is_alive()):
                self._sweeper = threading.Thread(target=self._sweep, name="qms-live-recheck", daemon=True)
                self._sweeper.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            c.close()
        if self._thread is not None:
            self._thread.join(5)
        if self._sweeper is not None:
            self._sweeper.join(5)

    # --- credentials ----------------------------------------------------------------------
    def _sweep(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(min(1.0, self._recheck_s())):
            if time.monotonic() - last >= self._recheck_s():
                last = time.monotonic()
                try:
                    self.recheck()
                except Exception:           # noqa: BLE001 - the next round tries again
                    log.exception("live credential re-check failed")

    def recheck(self) -> int:
        """Close the clients whose credential no longer passes `still_valid`, asking once per
        distinct principal, one after the other; returns how many were closed. Redis away:
        nothing could have been revoked meanwhile (revoking writes to it) — the round ends."""
        if self._still_valid is None:
            return 0
        groups: dict[Any, list[Client]] = {}
        with self._lock:
            for c in self._clients:
                if not c.closed:
                    who = c.conn.principal
                    try:
                        hash(who)
                    except TypeError:
                        who = id(c)
                    groups.setdefault(who, []).append(c)
        closed = 0
        for members in groups.values():
            if self._stop.is_set():
                break
            try:
                ok = self._still_valid(members[0].conn.principal)
            except redis.RedisError:
                break
            if not ok:
                for c in members:
                    c.close()
                closed += len(members)
        return closed

    def _run_until_exit(self) -> None:
        try:
            self._run()
        except SystemExit:        # the thread was told to exit (a test runner stopping its server)
            self._stop.set()

    def _run(self) -> None:
        backoff = 0.5
        missed = False
        while not self._stop.is_set():
            pubsub = self.r.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe(self.k.live_pattern)
                pubsub.subscribe(self.k.live_control)
                if missed:
                    # Messages were missed while Redis was away: now that we hear the channels
                    # again (nothing is lost between the two), resend every subscriber its
                    # channels' snapshots. A restarted Redis may count versions anew.
                    with self._lock:
                        self._versions.clear()
                        self._snaps.clear()
                    self._resync()
                    self._tell_all(STORE_AVAILABLE)
                    missed = False
                self.connected.set()
                backoff = 0.5
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=1.0)
                    if msg is not None:
                        self.dispatch(msg["channel"], msg["data"])
            except redis.RedisError as exc:
                self.connected.clear()
                if not missed:              # the pages say "reconnecting to the data store"
                    self._tell_all(STORE_UNAVAILABLE)
                missed = True
                log.warning("live hub lost Redis (%s); retrying in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                try:
                    pubsub.close()
                except redis.RedisError:
                    pass
        self.connected.clear()

    def dispatch(self, redis_channel: bytes | str, payload: bytes) -> int:
        """Relay one published message to the local clients that want it; returns how many."""
        name = redis_channel.decode() if isinstance(redis_channel, bytes) else redis_channel
        if name == self.k.live_control:
            ctl = orjson.loads(payload)
            if ctl.get("close_user"):
                self.close_user(ctl["close_user"])
            if ctl.get("close_credential"):
                self.close_credential(ctl["close_credential"])
            return 0
        channel = name[len(self._prefix):]
        with self._lock:
            self._published[channel] = self._published.get(channel, 0) + 1
        if self._stale(channel, payload):
            return 0
        targets = self._targets(channel)
        out = Outgoing(payload)           # decoded and framed once, not once per client
        frame = out.frame
        n = 0
        for i, c in enumerate(targets, 1):
            # Straight to the socket when it can take it now (no greenlet switch per client),
            # else through the client's queue and pump.
            if (c.direct is not None and c.direct(frame)) or c.push(out):
                n += 1
            if not i % BUSY_CHUNK:
                if Requests.active:
                    time.sleep(BUSY_WAIT_S)
                elif not i % FAN_OUT_CHUNK:
                    time.sleep(YIELD_S)
        self.relayed += n
        return n

    def _stale(self, channel: str, payload: bytes) -> bool:
        """A data update no newer than what was relayed for its channel and timeframe."""
        if not payload.startswith(b'{"type":"data_update"'):
            return False
        data = orjson.loads(payload).get("data") or {}
        version = data.get("version")
        if not isinstance(version, int):
            return False
        tfs = list((data.get("timeframes") or {}).keys()) or [""]
        stale = True
        with self._lock:
            for tf in tfs:
                key = (channel, tf)
                if version > self._versions.get(key, -1):
                    self._versions[key] = version
                    stale = False
        return stale

    def _tell_all(self, payload: bytes) -> None:
        """One message to every local client, whatever it subscribed to."""
        with self._lock:
            clients = list(self._clients)
        out = Outgoing(payload)
        for c in clients:
            c.push(out)

    def _resync(self) -> None:
        """Each subscriber its channels' snapshots, as published messages are sent: framed
        (Outgoing), never as raw bytes, which a socket's pump writes unframed. A RedisError
        propagates: the relay loop reconnects and resyncs again."""
        with self._lock:
            channels = {ch: [c for members in groups.values() for c in members]
                        for ch, groups in self._by_channel.items()}
        for ch, members in channels.items():
            snap = self.snapshot(ch)
            if snap is None:
                continue
            out = Outgoing(snap)
            self._stale(ch, snap)        # what the clients now have: an older message is stale
            for c in members:
                if c.conn.wants(ch):
                    c.push(out)


def _principal_key(conn: Connection) -> Any:
    """What a socket's authorisation depends on: its principal and its authorize function
    (an unhashable principal: the socket alone)."""
    key = (conn.principal, conn.authorizer)
    try:
        hash(key)
    except TypeError:
        return id(conn)
    return key


def _leave(groups: dict[Any, set[Client]], key: Any, client: Client) -> None:
    members = groups.get(key)
    if members is not None:
        members.discard(client)
        if not members:
            del groups[key]


def announce_close(r: redis.Redis, keys: Keys, user: str) -> None:
    """Ask every web process to close this user's sockets (sign-out, disabled, new password)."""
    r.publish(keys.live_control, orjson.dumps({"close_user": user}))


def announce_close_credential(r: redis.Redis, keys: Keys, credential: str) -> None:
    """Ask every web process to close the sockets of one sign-in or API token (sign-out, revoked)."""
    r.publish(keys.live_control, orjson.dumps({"close_credential": credential}))


def make_connection(principal: Any, authorize: Callable[[Any, str], bool], settings: Any) -> Connection:
    return Connection(principal, authorize, max_message_bytes=settings.ws_max_message_bytes,
                      rate_per_second=settings.ws_rate_per_s)
