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
# A message for at least this many sockets is written by FAN_OUT_THREADS native threads
# under gevent (send_all): a socket write is a system call (~40 us on loopback here) that
# releases the GIL, so they write on every core while the server's loop goes on.
PARALLEL_MIN = 64
FAN_OUT_THREADS = 2
CLOSE = object()        # queued to tell a client's loop to end
# Told to every client when the relay loses Redis and when it is back (live.js shows it).
STORE_UNAVAILABLE = b'{"type":"status","data_store":"unavailable"}'
STORE_AVAILABLE = b'{"type":"status","data_store":"available"}'


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
        self._by_channel: dict[str, set[Client]] = {}
        self._versions: dict[tuple[str, str], int] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.relayed = 0
        self._pool: Any = None                 # _offload: None = not looked up yet, False = none
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
            for members in self._by_channel.values():
                members.discard(client)

    def subscribed(self, client: Client, added: list[str], removed: list[str]) -> None:
        with self._lock:
            for ch in added:
                self._by_channel.setdefault(ch, set()).add(client)
            for ch in removed:
                self._by_channel.get(ch, set()).discard(client)

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
        for raw in stored.values():
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
        with self._lock:
            targets = [c for c in self._by_channel.get(channel, ()) if c.conn.wants(channel)]
        out = Outgoing(payload)           # decoded and framed once, not once per client
        offload = self._offload()
        shares: list[list[Client]] = []
        jobs = []
        if offload is not None and len(targets) >= PARALLEL_MIN:
            # Native threads write the sockets that can take the frame now (reserved here),
            # each its share, while this loop serves HTTP: the writes are system calls that
            # release the GIL, so they run on both cores.
            ready = [c for c in targets if c.direct is not None and c.direct.reserve()]
            step = max(1, -(-len(ready) // FAN_OUT_THREADS))
            shares = [ready[i:i + step] for i in range(0, len(ready), step)]
            jobs = [offload(send_all, [c.direct.raw for c in share], out.frame) for share in shares]
            taken = set(ready)
            targets = [c for c in targets if c not in taken]
        n = 0
        for c in targets:
            # Straight to the socket when it can take it now (no greenlet switch per client),
            # else through the client's queue and pump.
            if (c.direct is not None and c.direct(out.frame)) or c.push(out):
                n += 1
        for share, job in zip(shares, jobs):
            try:
                results = job.get()
            except Exception as exc:      # never leave a reserved socket's send lock held
                log.warning("live fan-out thread failed (%s): closing its %d sockets", exc, len(share))
                results = [-1] * len(share)
            for c, sent in zip(share, results):
                c.direct.finish(out.frame, sent)
                n += 1
        self.relayed += n
        return n

    def _offload(self) -> Callable[..., Any] | None:
        """gevent's native thread pool (the server runs on gevent), else None."""
        if self._pool is None:
            self._pool = False
            try:
                from gevent import monkey
                if monkey.is_module_patched("socket"):
                    import gevent
                    self._pool = gevent.get_hub().threadpool.spawn
            except ImportError:
                pass
        return self._pool or None

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
            channels = {ch: list(members) for ch, members in self._by_channel.items() if members}
        for ch, members in channels.items():
            snap = self.snapshot(ch)
            if snap is None:
                continue
            out = Outgoing(snap)
            self._stale(ch, snap)        # what the clients now have: an older message is stale
            for c in members:
                if c.conn.wants(ch):
                    c.push(out)


def send_one(raw: Any, frame: bytes) -> int:
    """One write on a non-blocking OS socket: bytes taken, 0 when its buffer is full, -1
    when the socket failed."""
    try:
        return raw.send(frame)
    except BlockingIOError:
        return 0
    except OSError:
        return -1


def send_all(raws: list[Any], frame: bytes) -> list[int]:
    """send_one on each socket (a native thread's share of a fan-out)."""
    return [send_one(raw, frame) for raw in raws]


def announce_close(r: redis.Redis, keys: Keys, user: str) -> None:
    """Ask every web process to close this user's sockets (sign-out, disabled, new password)."""
    r.publish(keys.live_control, orjson.dumps({"close_user": user}))


def announce_close_credential(r: redis.Redis, keys: Keys, credential: str) -> None:
    """Ask every web process to close the sockets of one sign-in or API token (sign-out, revoked)."""
    r.publish(keys.live_control, orjson.dumps({"close_credential": credential}))


def make_connection(principal: Any, authorize: Callable[[Any, str], bool], settings: Any) -> Connection:
    return Connection(principal, authorize, max_message_bytes=settings.ws_max_message_bytes,
                      rate_per_second=settings.ws_rate_per_s)
