"""Live push over /ws: event-to-screen latency, fan-out and memory with many subscribed clients.

    python bench/push.py [--clients 1000] [--processes 1|2] [--rate 20] [--seconds 30]
                         [--client-procs 4] [--client lean|websockets] [--batch 50]
                         [--pipeline web|separate|publisher|apart] [--no-compression]
                         [--redis-url redis://127.0.0.1:6379/13]

What it does (FLUSHDBs the --redis-url database first):

1. Raises this process's RLIMIT_NOFILE soft limit to the hard limit (the servers and client
   processes inherit it), then starts --processes web processes `python cli.py serve`
   (gevent WSGI server, QMS_DEMO=0) on free ports. Process 1 runs the aggregator thread and
   the live publisher; any other runs neither (QMS_RUN_AGGREGATOR=0, QMS_LIVE_PUBLISHER=0).
   Waits for /health, then creates an admin API token with `cli.py tokens create`.
2. Warm-up: a few events, then HTTP baselines of GET /api/dashboard/executive?timeframe=24h
   (--http-requests sequential requests to every web process on one keep-alive connection,
   interleaved with as many on a new connection each): idle, and while events stream at
   --rate with no WebSocket client ("streaming, 0 clients"). Server CPU is measured idle and
   while streaming, with and without clients.
3. Opens --clients WebSocket clients `ws://.../ws?token=...` (no Origin header), spread
   evenly over the web processes and over --client-procs asyncio processes, at most
   --batch handshakes in flight in all; each subscribes to dashboard.qa and
   gets its snapshot. Reports connect times and server RSS before/after (per connection).
4. Measured phase: one POST /api/events per event (exactly one
   workflow.quality_gate_executed each) at --rate for --seconds, open loop (started on
   schedule by up to --post-threads threads), round-robin over the web processes; the
   accept time of each is when its 202 arrives. Meanwhile the HTTP probe runs again.
   Every client parses each data_update carrying the 24h timeframe and records the first
   time its `total_gates_executed` text reached each count. The 24h count equals the number
   of applied events, so event e is on screen once the count reaches need(e) = the number of
   accepted events whose POST was sent before e's 202 arrived (e's position when POSTs are
   one at a time; see Poster). Latency of e = first time a client saw count >= need(e) minus
   e's accept time (a round that covers several events delivers all of them); also shown
   from the POST's send time. Over all (client, event) pairs: p50/p95/p99/max; pairs never
   observed are counted. Messages/s = data_update messages received during streaming.
   A Redis pub/sub observer in this process splits the latency into accept -> applied by
   the aggregator (its `live-applied` wake-up + HGET meta applied) -> PUBLISHed by the
   publisher -> received by the clients (fan-out through the web processes), and shows
   how long the publish rounds took (qa 24h message -> the version's last message).
   All times are CLOCK_MONOTONIC, which is system-wide, so processes compare.
5. Client honesty: each client process runs a 10 ms ticker and reports its event-loop lag
   (a busy client loop adds its lag to the measured latency) and its CPU use.

--pipeline separate runs the aggregator and publisher in their own `cli.py aggregate`
process instead (no web process runs them); publisher: the aggregator in the first web
process, the publisher in a `cli.py publish` process; apart: each in a process of its own.
--client lean (default) runs the clients on a minimal WebSocket client (LeanWebSocket: a few us
of the client's loop per message; it offers no extension, which the server refuses anyway);
--client websockets on the `websockets` library, whose ~50-70 us a message made the clients
the limit on two shared cores. --no-compression: the websockets clients do not offer
permessage-deflate (browsers do). --keep-logs copies the servers' logs to the temp dir.

Prints a summary table and whether the target "p95 < 50 ms with 1,000 clients; HTTP p95
unchanged" was met (HTTP p95 "unchanged": with clients <= 1.25 x the streaming baseline
+ 2 ms). Exit status is non-zero only on errors, not on missed targets.
The servers and client processes are stopped at the end, also on Ctrl+C and errors.
"""
from __future__ import annotations

import argparse
import asyncio
import bisect
import multiprocessing as mp
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson  # noqa: E402
from _common import (  # noqa: E402
    ROOT,
    Child,
    _child_env,
    connect,
    exit_on_sigterm,
    flush,
    free_port,
    pct,
    print_machine,
    proc_cpu,
    redis_cpu,
    table,
)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
CHANNEL = "dashboard.qa"
KPI = "total_gates_executed"
TF = "24h"
TARGET_P95_MS = 50.0
TARGET_CLIENTS = 1000
HTTP_FACTOR, HTTP_SLACK_MS = 1.25, 2.0     # "HTTP p95 unchanged": <= factor x baseline + slack
TICK_S = 0.010                              # client-side loop-lag ticker
mono = time.monotonic


# --- small helpers ----------------------------------------------------------------------------

def rss_kib(pid: int) -> int:
    """VmRSS of a process and all its descendants, in KiB (0 if gone)."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return total


def ms(x: float) -> str:
    return "-" if x != x else f"{x:,.1f}"


def count_of(text: Any) -> int:
    if text in (None, "no data"):
        return 0
    return int(str(text).replace(",", ""))


def count_in(msg: dict[str, Any]) -> int | None:
    """The 24h total_gates_executed of a data_update, or None if it has no 24h part."""
    part = ((msg.get("data") or {}).get("timeframes") or {}).get(TF)
    if part is None:
        return None
    kpi = (part.get("kpis") or {}).get(KPI)      # a delta part holds only the cards that changed
    return None if kpi is None else count_of(kpi["text"])


def gate_event(n: int, tag: str) -> bytes:
    now = datetime.now(timezone.utc)
    return orjson.dumps({
        "id": f"bench-push-{tag}-{n}", "type": "workflow.quality_gate_executed",
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "source": "bench-push",
        "data": {"workflow_id": f"WF-BENCH-{n % 97}", "gate_name": "bench-gate", "passed": n % 4 != 0,
                 "execution_time": 10 + n % 30},
    })


def stats(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    return {"n": len(v), "p50": pct(v, 50), "p95": pct(v, 95), "p99": pct(v, 99),
            "max": v[-1] if v else float("nan"), "min": v[0] if v else float("nan")}


# --- servers ----------------------------------------------------------------------------------

@dataclass
class Server:
    index: int
    child: Child
    port: int
    data_dir: str
    runs_pipeline: str            # "aggregator + publisher", "aggregator", "" (web only)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def rss(self) -> int:
        return rss_kib(self.child.pid)


# --pipeline: where the aggregator and the publisher run -> (web1 runs the aggregator thread,
# web1 runs the publisher, `cli.py aggregate` runs (None: no such process) with the publisher,
# a `cli.py publish` process runs it).
PIPELINES = {"web": (True, True, None, False), "separate": (False, False, True, False),
             "publisher": (True, False, None, True), "apart": (False, False, False, True)}


def start_servers(n: int, redis_url: str, pipeline: str) -> tuple[list[Server], list[Child]]:
    """n web processes, and the aggregator and publisher where --pipeline puts them (PIPELINES):
    in the first web process, or in a `cli.py aggregate` and/or a `cli.py publish` process."""
    secret = secrets.token_hex(32)            # the same session/JWT key in every process
    web_agg, web_pub, agg_pub, own_pub = PIPELINES[pipeline]
    servers = []
    extra = []
    if agg_pub is not None:
        extra.append(Child("aggregate", [sys.executable, str(ROOT / "cli.py"), "aggregate", "--name", "bench-push"],
                           _child_env(redis_url, {"QMS_LIVE_PUBLISHER": "1" if agg_pub else "0", "QMS_DEMO": "0"})))
    if own_pub:
        extra.append(Child("publish", [sys.executable, str(ROOT / "cli.py"), "publish"],
                           _child_env(redis_url, {"QMS_DEMO": "0"})))
    for i in range(n):
        port = free_port()
        data_dir = tempfile.mkdtemp(prefix=f"bench-push-{i}-")
        env = _child_env(redis_url, {
            "QMS_HOST": "127.0.0.1", "QMS_PORT": str(port), "QMS_DEMO": "0", "QMS_DATA_DIR": data_dir,
            "QMS_SECRET_KEY": secret, "QMS_RUN_AGGREGATOR": "1" if i == 0 and web_agg else "0",
            "QMS_LIVE_PUBLISHER": "1" if i == 0 and web_pub else "0"})
        child = Child(f"web{i + 1}", [sys.executable, str(ROOT / "cli.py"), "serve"], env)
        roles = [what for what, on in (("aggregator", web_agg), ("publisher", web_pub)) if on and i == 0]
        servers.append(Server(i, child, port, data_dir, " + ".join(roles)))
    return servers, extra


def wait_healthy(servers: list[Server], timeout: float = 60.0) -> None:
    import requests
    deadline = mono() + timeout
    for s in servers:
        while True:
            s.child.check()
            try:
                r = requests.get(s.http + "/health", timeout=2)
                if r.status_code == 200:
                    break
                if mono() > deadline:
                    raise RuntimeError(f"{s.child.name}: /health answered {r.status_code}: {r.text[:300]}")
            except requests.RequestException:
                if mono() > deadline:
                    raise TimeoutError(f"{s.child.name} did not answer /health; log:\n{s.child.tail()}") from None
            time.sleep(0.1)


def create_token(redis_url: str) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "cli.py"), "tokens", "create", "bench-push", "--role", "admin",
                          "--created-by", "bench/push.py"], cwd=ROOT, env=_child_env(redis_url),
                         capture_output=True, text=True, timeout=60)
    token = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if out.returncode != 0 or not token.startswith("qms_"):
        raise RuntimeError(f"cli.py tokens create failed ({out.returncode}): {out.stderr.strip()} {out.stdout.strip()}")
    return token


def stop_servers(servers: list[Server], keep_logs: bool = False) -> None:
    for s in servers:
        if keep_logs:
            dest = Path(tempfile.gettempdir()) / f"bench-push-{s.child.name}.log"
            try:
                shutil.copyfile(s.child.log.name, dest)
                print(f"{s.child.name} log: {dest}", file=sys.stderr)
            except OSError:
                pass
        try:
            s.child.stop(timeout=10)
        except Exception as exc:    # keep stopping the others
            print(f"warning: stopping {s.child.name}: {exc}", file=sys.stderr)
        shutil.rmtree(s.data_dir, ignore_errors=True)


# --- HTTP: producer and probe (threads of this process) -----------------------------------------

@dataclass
class Post:
    sent: float                       # monotonic time the request was sent
    accepted: float | None = None     # ... its 202 arrived (None = failed)


class Poster:
    """One gate event per POST, open loop: POSTs are started on schedule by up to `threads`
    threads (a slow answer does not hold back the next POST).

    Which count proves that event e was applied? The 24h count is the number of applied
    events. Every event applied before e was POSTed before e was accepted, so once the count
    reaches need(e) = the number of accepted events sent before e's 202 arrived (e included),
    e is certainly in it. With one POST in flight at a time need(e) is exactly e's position."""

    def __init__(self, servers: list[Server], token: str, threads: int) -> None:
        from concurrent.futures import ThreadPoolExecutor
        self.urls = [s.http + "/api/events" for s in servers]
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.tag = uuid.uuid4().hex[:8]
        self.posts: list[Post] = []       # in send order
        self.failed: list[str] = []
        self.lock = threading.Lock()
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="poster")
        self._i = 0

    def _session(self) -> Any:
        sess = getattr(self.local, "sess", None)
        if sess is None:
            import requests
            sess = self.local.sess = requests.Session()
            sess.headers.update(self.headers)
        return sess

    def _post(self, i: int) -> None:
        url = self.urls[i % len(self.urls)]
        body = gate_event(i, self.tag)
        sess = self._session()
        with self.lock:
            p = Post(mono())
            self.posts.append(p)
        try:
            resp = sess.post(url, data=body, timeout=60)
            t = mono()
            if resp.status_code == 202 and resp.json().get("accepted") == 1:
                p.accepted = t
            else:
                self.failed.append(f"{resp.status_code}: {resp.text[:200]}")
        except Exception as exc:
            self.failed.append(f"{type(exc).__name__}: {exc}")

    def post_one(self) -> None:
        self._i += 1
        self._post(self._i)

    def stream(self, rate: float, seconds: float) -> tuple[int, int, float, float]:
        """Paced POSTs; returns (lo, hi) = the slice of self.posts they are, the wall time
        from the first send to the last answer, and the largest delay of a send behind schedule."""
        lo = len(self.posts)
        total = int(round(rate * seconds))
        futures = []
        t0 = mono()
        for i in range(total):
            wait = t0 + i / rate - mono()
            if wait > 0:
                time.sleep(wait)
            self._i += 1
            try:
                futures.append(self.pool.submit(self._post, self._i))
            except RuntimeError:      # shut down (Ctrl+C, error)
                break
        for f in futures:
            f.result()
        took = mono() - t0
        hi = len(self.posts)
        behind = max((p.sent - (t0 + i / rate) for i, p in enumerate(self.posts[lo:hi])), default=0.0)
        return lo, hi, took, behind

    @property
    def n(self) -> int:
        return sum(1 for p in self.posts if p.accepted is not None)

    def needs(self, lo: int, hi: int) -> list[tuple[int, Post]]:
        """(need(e), e) for the accepted events among posts[lo:hi]."""
        sent = sorted(p.sent for p in self.posts if p.accepted is not None)
        return [(bisect.bisect_right(sent, p.accepted), p) for p in self.posts[lo:hi] if p.accepted is not None]

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def probe(server: Server, token: str, n: int) -> dict[str, list[float]]:
    """n sequential GET /api/dashboard/executive?timeframe=24h on one keep-alive connection
    (what a browser does) interleaved with n on a new connection each; ms each."""
    import requests
    hdr = {"Authorization": f"Bearer {token}"}
    sess = requests.Session()
    sess.headers.update(hdr)
    url = server.http + "/api/dashboard/executive?timeframe=24h"
    out: dict[str, list[float]] = {"keep-alive": [], "new conn": []}
    for _ in range(n):
        for kind in out:
            t0 = mono()
            r = sess.get(url, timeout=30) if kind == "keep-alive" else requests.get(url, headers=hdr, timeout=30)
            out[kind].append((mono() - t0) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"GET {url}: {r.status_code} {r.text[:200]}")
    return out


def probe_all(servers: list[Server], token: str, n: int) -> dict[int, dict[str, list[float]]]:
    """Every web process probed at the same time (one thread each)."""
    res: dict[int, dict[str, list[float]]] = {}
    errs: list[BaseException] = []

    def run(s: Server) -> None:
        try:
            res[s.index] = probe(s, token, n)
        except BaseException as exc:   # reported by the caller
            errs.append(exc)
    threads = [threading.Thread(target=run, args=(s,), daemon=True) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errs:
        raise errs[0]
    return res


class Observer(threading.Thread):
    """A Redis pub/sub subscriber: when the aggregator announced each applied count
    (live-applied + HGET meta applied) and when the publisher PUBLISHed each 24h count."""

    def __init__(self, redis_url: str, prefix: str = "qms") -> None:
        super().__init__(name="observer", daemon=True)
        from data.keys import Keys
        self.r = connect(redis_url)
        # Pub/sub channel names may carry the database number (Keys.of); older code: Keys(prefix).
        self.k = Keys.of(self.r, prefix) if hasattr(Keys, "of") else Keys(prefix)
        self.pubsub = self.r.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(self.k.live(CHANNEL), self.k.live_applied)
        self.stop_evt = threading.Event()
        self.applied: list[tuple[int, float]] = []     # (applied count, first time seen)
        self.published: list[tuple[int, float]] = []   # (24h count, first time seen)
        self.messages: list[tuple[float, int, tuple[str, ...], int]] = []   # (time, version, timeframes, bytes)
        self.error: BaseException | None = None

    def run(self) -> None:
        live, applied_ch = self.k.live(CHANNEL).encode(), self.k.live_applied.encode()
        try:
            while not self.stop_evt.is_set():
                m = self.pubsub.get_message(timeout=0.2)
                if m is None:
                    continue
                t = mono()
                if m["channel"] == applied_ch:
                    n = int(self.r.hget(self.k.meta, "applied") or 0)
                    if not self.applied or n > self.applied[-1][0]:
                        self.applied.append((n, t))
                elif m["channel"] == live:
                    msg = orjson.loads(m["data"])
                    data = msg.get("data") or {}
                    self.messages.append((t, int(data.get("version") or 0), tuple(data.get("timeframes") or ()),
                                          len(m["data"])))
                    n = count_in(msg)
                    if n is not None and (not self.published or n > self.published[-1][0]):
                        self.published.append((n, t))
        except BaseException as exc:
            self.error = exc
        finally:
            self.pubsub.close()

    def rounds(self, t0: float, t1: float) -> dict[str, Any]:
        """Publish rounds seen on the channel between t0 and t1: how long from the version's
        24h message to its last one (1h, 4h; 7d and 30d every slow_every_s), and the gaps."""
        by_version: dict[int, list[tuple[float, tuple[str, ...]]]] = {}
        sizes = []
        for t, v, tfs, size in self.messages:
            if t0 <= t <= t1:
                by_version.setdefault(v, []).append((t, tfs))
                sizes.append(float(size))
        fast, slow, starts = [], [], []
        for msgs in by_version.values():
            span = (msgs[-1][0] - msgs[0][0]) * 1000
            (slow if any("30d" in tfs for _, tfs in msgs) else fast).append(span)
            starts.append(msgs[0][0])
        starts.sort()
        gaps = [(b - a) * 1000 for a, b in zip(starts, starts[1:])]
        return {"rounds": len(by_version), "fast": stats(fast), "slow": stats(slow), "gap": stats(gaps),
                "bytes": stats(sizes)}

    def seen(self, which: str) -> int:
        lst = getattr(self, which)
        return lst[-1][0] if lst else 0

    def stop(self) -> None:
        self.stop_evt.set()
        self.join(5)


# --- WebSocket clients (child processes, one asyncio loop each) --------------------------------

@dataclass
class ClientState:
    cid: int
    server: int
    handshake_ms: float = float("nan")      # TCP connect + HTTP upgrade
    subscribed_ms: float = float("nan")     # ... + subscribe answered + snapshot received
    snapshot: int | None = None
    got_sub: bool = False
    max_count: int = -1
    trans: list[tuple[int, float]] = field(default_factory=list)   # (count, first time reached)
    messages: int = 0
    error: str | None = None
    closed: str | None = None
    closed_at: float | None = None
    extensions: str = ""


def split_ws_url(url: str) -> tuple[str, int, str]:
    """ws://host:port/path?query -> (host, port, /path?query)."""
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return host, int(port or 80), "/" + path


class LeanWebSocket(asyncio.Protocol):
    """A WebSocket client of the least work per message (RFC 6455, no extensions): the
    `websockets` library costs ~50-70 us of the client's loop per message, which at 20,000
    messages/s on the server's two cores made the clients, not the server, the measured
    limit. Frames are parsed straight from the transport's chunks; every frame in a chunk
    is stamped with the chunk's arrival time. Until `on_message` is set (subscribed and
    snapshot in), messages go to the `setup` queue. Client frames are masked, as the RFC
    requires."""

    def __init__(self, host: str, port: int, path: str) -> None:
        import base64
        loop = asyncio.get_running_loop()
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[str] = loop.create_future()
        self.setup: asyncio.Queue[bytes] = asyncio.Queue()
        self.on_message: Any = None
        self.extensions = ""
        self.buf = bytearray()
        self.parts: list[bytes] = []           # a fragmented message's frames so far
        self.transport: Any = None
        self.handshaken = False
        self.last_at = 0.0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        t = mono()
        self.last_at = t
        self.buf += data
        if not self.handshaken and not self._handshake():
            return
        buf = self.buf
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, off = b1 & 0x7F, pos + 2
            if n == 126:
                if end - pos < 4:
                    break
                n, off = int.from_bytes(buf[pos + 2:pos + 4], "big"), pos + 4
            elif n == 127:
                if end - pos < 10:
                    break
                n, off = int.from_bytes(buf[pos + 2:pos + 10], "big"), pos + 10
            if b1 & 0x80:
                self._fail("a masked frame from the server")
                return
            if end - off < n:
                break
            payload = bytes(buf[off:off + n])
            pos = off + n
            self._frame(b0 & 0x0F, bool(b0 & 0x80), payload, t)
        del buf[:pos]

    def _handshake(self) -> bool:
        import base64
        import hashlib
        i = self.buf.find(b"\r\n\r\n")
        if i < 0:
            return False
        head = bytes(self.buf[:i]).decode("latin-1")
        del self.buf[:i + 4]
        lines = head.split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        want = base64.b64encode(hashlib.sha1((self.key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                                .digest()).decode()
        if not lines[0].startswith("HTTP/1.1 101") or headers.get("sec-websocket-accept") != want:
            self._fail(f"handshake refused: {lines[0]}")
            return False
        self.extensions = headers.get("sec-websocket-extensions", "")
        self.handshaken = True
        self.opened.set_result(None)
        return True

    def _frame(self, opcode: int, fin: bool, payload: bytes, t: float) -> None:
        if opcode in (1, 2, 0):
            self.parts.append(payload)
            if not fin:
                return
            msg = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
            self.parts = []
            if self.on_message is not None:
                self.on_message(msg, t)
            else:
                self.setup.put_nowait(msg)
        elif opcode == 8:                       # close: answer it, then the server ends the TCP
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self._send(8, payload[:2])
            self._end(f"closed by server: {code} {payload[2:].decode('utf-8', 'replace')}")
        elif opcode == 9:                       # ping -> pong
            self._send(10, payload)

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else
                                         bytes([0x80 | 126]) + n.to_bytes(2, "big") if n < 65536 else
                                         bytes([0x80 | 127]) + n.to_bytes(8, "big"))
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.transport.write(head + mask + masked)

    def send_text(self, data: bytes) -> None:
        self._send(1, data)

    async def close(self) -> None:
        """The close handshake (1000), at most 2 s, then the TCP connection."""
        if not self.closed.done():
            self._send(8, (1000).to_bytes(2, "big"))
            try:
                await asyncio.wait_for(asyncio.shield(self.closed), 2)
            except asyncio.TimeoutError:
                pass
        if self.transport is not None:
            self.transport.close()

    def _fail(self, why: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(RuntimeError(why))
        self._end(why)
        self.transport.close()

    def _end(self, why: str) -> None:
        if not self.closed.done():
            self.closed.set_result(why)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"connection lost before the handshake: {exc}"))
        self._end(f"closed: {exc or 'EOF'}")


def _client_process(conn: Any, jobs: list[tuple[int, int, str]], batch: int, compression: bool, lean: bool,
                    nice: int = 0) -> None:
    """Entry of a client process: runs the commands main() sends over `conn`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # the parent handles Ctrl+C and tells us to stop
    if nice:
        os.nice(nice)       # --client-nice: the clients yield the cores, as browsers elsewhere would
    try:
        asyncio.run(_client_main(conn, jobs, batch, compression, lean))
    except BaseException:
        try:
            conn.send(("error", traceback.format_exc()))
        except Exception:
            pass


async def _client_main(conn: Any, jobs: list[tuple[int, int, str]], batch: int, compression: bool,
                       lean: bool) -> None:
    from websockets.asyncio.client import connect as ws_connect
    from websockets.exceptions import ConnectionClosed

    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[Any] = asyncio.Queue()

    def reader() -> None:
        while True:
            try:
                cmd = conn.recv()
            except (EOFError, OSError):
                cmd = ("quit",)
            loop.call_soon_threadsafe(commands.put_nowait, cmd)
            if cmd[0] == "quit":
                return
    threading.Thread(target=reader, daemon=True).start()

    states = [ClientState(cid, server) for cid, server, _ in jobs]
    sockets: dict[int, Any] = {}
    hist: dict[int, int] = {}           # data_update messages per 100 ms of monotonic time
    lags: list[tuple[float, float]] = []
    ready: dict[int, asyncio.Event] = {}
    sub = orjson.dumps({"type": "subscribe", "channels": [CHANNEL]}).decode()

    async def ticker() -> None:
        nxt = mono() + TICK_S
        while True:
            await asyncio.sleep(max(0.0, nxt - mono()))
            now = mono()
            lags.append((now, now - nxt))
            nxt = now + TICK_S

    def on_update(st: ClientState, raw: bytes | str, t: float) -> None:
        """A message after the snapshot: count it; the 24h count's first time reached."""
        if not raw.startswith(b'{"type":"data_update"' if isinstance(raw, bytes) else '{"type":"data_update"'):
            return
        st.messages += 1
        b = int(t * 10)
        hist[b] = hist.get(b, 0) + 1
        n = count_in(orjson.loads(raw))
        if n is not None and n > st.max_count:
            st.max_count = n
            st.trans.append((n, t))

    def on_setup(st: ClientState, raw: bytes | str) -> bool:
        """A message before the snapshot; True once subscribed and the snapshot is in."""
        msg = orjson.loads(raw)
        if msg.get("type") == "subscribed":
            st.got_sub = True
        elif msg.get("type") == "data_update":
            n = count_in(msg)
            if n is not None:
                st.snapshot = n
                st.max_count = n
        elif msg.get("type") == "error":
            raise RuntimeError(f"server error: {msg}")
        return st.got_sub and st.snapshot is not None

    async def client(st: ClientState, url: str, sem: asyncio.Semaphore) -> None:
        ev = ready[st.cid]
        try:
            async with sem:
                t0 = mono()
                ws = await (lean_open if lean else library_open)(st, url, t0)
                st.subscribed_ms = (mono() - t0) * 1000
        except BaseException as exc:
            st.error = f"{type(exc).__name__}: {exc}"
            ev.set()
            return
        ev.set()
        try:
            st.closed = await (lean_stream if lean else library_stream)(st, ws)
        except asyncio.CancelledError:
            return
        st.closed_at = mono()

    async def library_open(st: ClientState, url: str, t0: float) -> Any:
        ws = await ws_connect(url, open_timeout=120, ping_interval=None, close_timeout=2, max_size=2 ** 24,
                              compression="deflate" if compression else None)
        st.handshake_ms = (mono() - t0) * 1000
        ext = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
        st.extensions = ext or "none"
        sockets[st.cid] = ws
        await ws.send(sub)
        while not on_setup(st, await asyncio.wait_for(ws.recv(), 60)):
            pass
        return ws

    async def library_stream(st: ClientState, ws: Any) -> str:
        try:
            async for raw in ws:
                on_update(st, raw, mono())
            return f"closed by server: {ws.close_code} {ws.close_reason}"
        except ConnectionClosed as exc:
            return f"closed: {exc}"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    async def lean_open(st: ClientState, url: str, t0: float) -> Any:
        host, port, path = split_ws_url(url)
        _, proto = await asyncio.wait_for(
            loop.create_connection(lambda: LeanWebSocket(host, port, path), host, port), 120)
        await asyncio.wait_for(proto.opened, 120)
        st.handshake_ms = (mono() - t0) * 1000
        st.extensions = proto.extensions or "none"
        sockets[st.cid] = proto
        proto.send_text(sub.encode())
        while not on_setup(st, await asyncio.wait_for(proto.setup.get(), 60)):
            pass
        proto.on_message = lambda raw, t: on_update(st, raw, t)
        while not proto.setup.empty():     # anything that came after the snapshot, in order
            on_update(st, proto.setup.get_nowait(), proto.last_at)
        return proto

    async def lean_stream(st: ClientState, proto: Any) -> str:
        return str(await proto.closed)

    tasks: list[asyncio.Task[Any]] = []
    tick = asyncio.create_task(ticker())
    while True:
        cmd = await commands.get()
        if cmd[0] == "connect":
            sem = asyncio.Semaphore(batch)
            t0 = mono()
            for st, (_, _, url) in zip(states, jobs):
                ready[st.cid] = asyncio.Event()
                tasks.append(asyncio.create_task(client(st, url, sem)))
            for e in ready.values():
                await e.wait()
            conn.send(("connected", mono() - t0,
                       [(s.cid, s.server, s.handshake_ms, s.subscribed_ms, s.snapshot, s.error, s.extensions)
                        for s in states]))
        elif cmd[0] == "progress":
            live = [s.max_count for s in states if s.error is None and s.closed is None]
            conn.send(("progress", min(live) if live else None, sum(1 for s in states if s.closed)))
        elif cmd[0] == "results":
            conn.send(("results", [(s.cid, s.server, s.trans, s.messages, s.closed, s.closed_at, s.error)
                                   for s in states], hist, lags))
        elif cmd[0] == "close":
            t0 = mono()
            await asyncio.gather(*(ws.close() for ws in sockets.values()), return_exceptions=True)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            conn.send(("closed", mono() - t0))
        elif cmd[0] == "quit":
            tick.cancel()
            for t in tasks:
                t.cancel()
            return


class ClientProcs:
    def __init__(self, servers: list[Server], token: str, clients: int, procs: int, batch: int,
                 compression: bool, lean: bool, nice: int = 0) -> None:
        ctx = mp.get_context("spawn")
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        jobs: list[list[tuple[int, int, str]]] = [[] for _ in range(procs)]
        for cid in range(clients):
            s = servers[cid % len(servers)]
            jobs[cid % procs].append((cid, s.index, f"{s.ws}?token={token}"))
        for i in range(procs):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_client_process, args=(child, jobs[i], batch, compression, lean, nice),
                            name=f"bench-push-clients-{i}", daemon=True)
            p.start()
            child.close()
            self.procs.append(p)
            self.conns.append(parent)

    def ask(self, *cmd: Any, timeout: float = 600) -> list[Any]:
        for c in self.conns:
            c.send(cmd)
        out = []
        for c, p in zip(self.conns, self.procs):
            if not c.poll(timeout):
                raise TimeoutError(f"client process {p.name} did not answer {cmd[0]!r} in {timeout:.0f}s")
            msg = c.recv()
            if msg[0] == "error":
                raise RuntimeError(f"client process {p.name} failed:\n{msg[1]}")
            out.append(msg)
        return out

    def cpu(self) -> float:
        return sum(proc_cpu(p.pid) for p in self.procs)

    def rss(self) -> int:
        return sum(rss_kib(p.pid) for p in self.procs)

    def stop(self) -> None:
        for c in self.conns:
            try:
                c.send(("quit",))
            except Exception:
                pass
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(2)


# --- the run ------------------------------------------------------------------------------------

def first_time(counts: list[int], trans: list[tuple[int, float]], n: int) -> float | None:
    """The first time a count >= n was seen (None = never); counts = [c for c, _ in trans]."""
    i = bisect.bisect_left(counts, n)
    return trans[i][1] if i < len(trans) else None


def wait_published(obs: Observer, n: int, servers: list[Server], timeout: float) -> None:
    deadline = mono() + timeout
    while obs.seen("published") < n:
        if obs.error:
            raise obs.error
        for s in servers:
            s.child.check()
        if mono() > deadline:
            raise TimeoutError(f"the publisher did not publish count {n} in {timeout:.0f}s "
                               f"(applied {obs.seen('applied')}, published {obs.seen('published')})")
        time.sleep(0.05)


def server_errors(servers: list[Server]) -> list[str]:
    """A summary of each server log's tracebacks: how often each final exception line occurs."""
    out = []
    for s in servers:
        try:
            lines = Path(s.child.log.name).read_text(errors="replace").splitlines()
        except OSError:
            continue
        errors = [ln for ln in lines if " ERROR " in ln]
        finals: dict[str, int] = {}
        for i, ln in enumerate(lines):
            if ln.startswith("Traceback"):
                j = i + 1
                while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                    j += 1
                if j < len(lines) and not lines[j].startswith("During handling"):
                    finals[lines[j][:300]] = finals.get(lines[j][:300], 0) + 1
        if errors or finals:
            out.append(f"{s.child.name}: {len(errors)} ERROR line(s) in its log, e.g. {errors[0][:200] if errors else '-'}")
            out += [f"    {n} x {exc}" for exc, n in sorted(finals.items(), key=lambda x: -x[1])]
    return out


def split_latency(poster: Poster, obs: Observer, lo: int, hi: int, offset: int) -> dict[str, dict[str, float]]:
    """accept -> applied (aggregator) and accept -> PUBLISHed (publisher), per event, in ms."""
    out = {}
    for name in ("applied", "published"):
        trans = getattr(obs, name)
        counts = [c for c, _ in trans]
        vals, missing = [], 0
        for need, p in poster.needs(lo, hi):
            t = first_time(counts, trans, need + (offset if name == "published" else 0))
            if t is None:
                missing += 1
            else:
                vals.append((t - p.accepted) * 1000)
        st = stats(vals)
        st["missing"] = missing
        out[name] = st
    return out


def run(args: argparse.Namespace) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft2, hard2 = resource.getrlimit(resource.RLIMIT_NOFILE)
    print(f"RLIMIT_NOFILE: soft {soft} -> {soft2} (hard {hard2}); the servers and client processes inherit it",
          flush=True)
    per_proc = -(-args.clients // args.client_procs)
    if soft2 < per_proc + 100:
        print(f"warning: {per_proc} sockets per client process is close to the open-files limit", flush=True)

    r = connect(args.redis_url)
    print_machine(r)
    flush(r)
    print(f"FLUSHDB {args.redis_url}", flush=True)
    load0 = " ".join(f"{x:.2f}" for x in os.getloadavg())

    servers: list[Server] = []
    extra: list[Child] = []
    clients: ClientProcs | None = None
    obs: Observer | None = None
    poster: Poster | None = None
    R: dict[str, Any] = {}
    try:
        servers, extra = start_servers(args.processes, args.redis_url, args.pipeline)
        wait_healthy(servers)
        for c in extra:
            c.check()
            print(f"{c.name}: pid {c.pid}, `cli.py {c.name}`"
                  + (" with the publisher" if c.name == "aggregate" and PIPELINES[args.pipeline][2] else ""), flush=True)
        token = create_token(args.redis_url)
        for s in servers:
            print(f"{s.child.name}: pid {s.child.pid}, {s.http}, "
                  f"{s.runs_pipeline or 'web only'}", flush=True)
        obs = Observer(args.redis_url)
        obs.start()
        poster = Poster(servers, token, args.post_threads)

        # Warm-up: the first rounds import and cache things.
        for _ in range(5):
            poster.post_one()
            time.sleep(0.1)
        if poster.failed:
            raise RuntimeError(f"POST /api/events failed: {poster.failed[:3]}")
        wait_published(obs, poster.n, servers, 60)

        print(f"\n== HTTP baselines: {args.http_requests} x GET /api/dashboard/executive?timeframe=24h per process "
              f"on keep-alive + as many on new connections; then {args.baseline_seconds:g}s of streaming, 0 clients",
              flush=True)
        http: dict[str, dict[int, dict[str, list[float]]]] = {}
        http["idle, 0 clients"] = probe_all(servers, token, args.http_requests)
        box: dict[str, Any] = {}
        th = threading.Thread(target=lambda: box.update(res=poster.stream(args.rate, args.baseline_seconds)),
                              daemon=True)
        cpu0 = {s.index: s.child.cpu() for s in servers}
        t0 = mono()
        th.start()
        time.sleep(0.5)
        http["streaming, 0 clients"] = probe_all(servers, token, args.http_requests)
        th.join()
        R["cpu_base"] = {s.index: (s.child.cpu() - cpu0[s.index]) / (mono() - t0) for s in servers}
        if poster.failed:
            raise RuntimeError(f"POST /api/events failed: {poster.failed[:3]}")
        b0 = poster.n
        wait_published(obs, b0, servers, 60)
        # The same split as below, with no client connected: accept -> applied -> published.
        R["base_split"] = split_latency(poster, obs, box["res"][0], box["res"][1], 0)
        R["base_rounds"] = obs.rounds(t0, mono())
        R["base_post"] = stats([(p.accepted - p.sent) * 1000 for p in poster.posts[box["res"][0]:box["res"][1]]
                                if p.accepted])

        time.sleep(1.0)
        R["rss0"] = {s.index: s.rss() for s in servers}
        idle0 = {s.index: s.child.cpu() for s in servers}
        time.sleep(args.idle_seconds)
        R["cpu_idle0"] = {s.index: (s.child.cpu() - idle0[s.index]) / args.idle_seconds for s in servers}

        print(f"\n== connecting {args.clients:,} WebSocket clients "
              f"({args.client_procs} client process(es) at nice {args.client_nice}, {args.batch} handshakes in flight in all)", flush=True)
        clients = ClientProcs(servers, token, args.clients, args.client_procs,
                              max(1, args.batch // args.client_procs), not args.no_compression,
                              args.client == "lean", args.client_nice)
        t0 = mono()
        answers = clients.ask("connect", timeout=900)
        R["connect_wall"] = mono() - t0
        rows = [row for a in answers for row in a[2]]
        ok = [row for row in rows if row[5] is None]
        R["errors"] = errors = [row for row in rows if row[5] is not None]
        R["connected"] = len(ok)
        R["hs"] = hs = stats([row[2] for row in ok])
        R["subd"] = stats([row[3] for row in ok])
        R["ext"] = ", ".join(sorted({row[6] for row in ok}))
        snaps = sorted({row[4] for row in ok})
        print(f"connected {len(ok):,} of {args.clients:,} in {R['connect_wall']:.1f}s; handshake p50 {ms(hs['p50'])} "
              f"ms p95 {ms(hs['p95'])} ms max {ms(hs['max'])} ms; subscribed+snapshot p95 {ms(R['subd']['p95'])} ms; "
              f"extensions: {R['ext']}", flush=True)
        if errors:
            print(f"{len(errors)} clients failed to connect, e.g. {errors[0][5]}", flush=True)
        if not ok:
            raise RuntimeError("no client connected")
        # The 24h count should equal the number of accepted events; latencies use the offset if not.
        R["offset"] = offset = (snaps[0] - b0) if len(snaps) == 1 else 0
        if snaps != [b0]:
            print(f"warning: snapshot counts {snaps[:5]} differ from the {b0} accepted events", flush=True)
        for s in servers:
            s.child.check()
        time.sleep(2.0)
        R["rss1"] = {s.index: s.rss() for s in servers}
        R["per_server"] = {s.index: sum(1 for row in ok if row[1] == s.index) for s in servers}
        idle0 = {s.index: s.child.cpu() for s in servers}
        cidle0 = clients.cpu()
        time.sleep(args.idle_seconds)
        R["cpu_idle1"] = {s.index: (s.child.cpu() - idle0[s.index]) / args.idle_seconds for s in servers}
        R["ccpu_idle"] = (clients.cpu() - cidle0) / args.idle_seconds

        print(f"\n== streaming: {args.rate:g} POST/s (one gate event each, up to {args.post_threads} in flight) for "
              f"{args.seconds:g}s, HTTP probe alongside", flush=True)
        cpu0 = {s.index: s.child.cpu() for s in servers}
        rcpu0, ccpu0, acpu0 = redis_cpu(r), clients.cpu(), {c.name: c.cpu() for c in extra}
        box = {}
        th = threading.Thread(target=lambda: box.update(res=poster.stream(args.rate, args.seconds)), daemon=True)
        t_start = mono()
        th.start()
        time.sleep(min(2.0, args.seconds / 4))
        http["streaming, clients connected"] = probe_all(servers, token, args.http_requests)
        th.join()
        t_end = mono()
        R["window"] = (t_start, t_end)
        R["cpu"] = {s.index: (s.child.cpu() - cpu0[s.index]) / (t_end - t_start) for s in servers}
        R["rcpu"] = (redis_cpu(r) - rcpu0) / (t_end - t_start)
        R["ccpu"] = (clients.cpu() - ccpu0) / (t_end - t_start)
        R["acpu"] = {c.name: (c.cpu() - acpu0[c.name]) / (t_end - t_start) for c in extra}
        lo, hi, took, behind = box["res"]
        R["stream"] = (lo, hi, took, behind)
        R["post"] = stats([(p.accepted - p.sent) * 1000 for p in poster.posts[lo:hi] if p.accepted])
        n_acc = sum(1 for p in poster.posts[lo:hi] if p.accepted)
        print(f"accepted {n_acc:,} of {hi - lo:,} events in {took:.1f}s; POST p50 {ms(R['post']['p50'])} ms "
              f"p95 {ms(R['post']['p95'])} ms; sends up to {behind * 1000:.0f} ms behind schedule; "
              f"failed {len(poster.failed)}", flush=True)
        if poster.failed:
            raise RuntimeError(f"POST /api/events failed: {poster.failed[:3]}")

        # Drain: until every connected client saw the last count (or --drain seconds).
        last = poster.n + offset
        deadline = mono() + args.drain
        try:
            wait_published(obs, last, servers, args.drain)
        except TimeoutError as exc:
            print(f"warning: {exc}", flush=True)
        while mono() < deadline:
            prog = clients.ask("progress")
            mins = [p[1] for p in prog if p[1] is not None]
            if not mins or min(mins) >= last:
                break
            time.sleep(0.2)
        R["drained"] = mono() - t_end
        R["rss2"] = {s.index: s.rss() for s in servers}
        res = clients.ask("results", timeout=300)
        for s in servers:
            s.child.check()
        R["load"] = f"{load0} -> {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
        R["split"] = split_latency(poster, obs, lo, hi, offset)
        R["rounds"] = obs.rounds(t_start, mono())
        print_report(args, servers, poster, res, http, R)
        closed = clients.ask("close", timeout=120)
        print(f"\nclosed the clients in {max(c[1] for c in closed):.1f}s", flush=True)
        errs = server_errors(servers)
        if errs:
            print("\n" + "\n".join(errs))
        return 0
    except BaseException:
        for line in server_errors(servers):
            print(line, file=sys.stderr)
        raise
    finally:
        if clients is not None:
            clients.stop()
        if obs is not None:
            obs.stop()
        if poster is not None:
            poster.close()
        stop_servers(servers, args.keep_logs)
        for c in extra:
            c.stop()


def print_report(args: argparse.Namespace, servers: list[Server], poster: Poster, res: list[Any],
                 http: dict[str, dict[int, dict[str, list[float]]]], R: dict[str, Any]) -> None:
    lo, hi, took, behind = R["stream"]
    offset = R["offset"]
    needs = poster.needs(lo, hi)
    lat: list[float] = []            # first seen - accept time (the 202 arrived)
    lat_sent: list[float] = []       # first seen - send time of the POST (includes the POST itself)
    per_server: dict[int, list[float]] = {s.index: [] for s in servers}
    missed = 0
    closed = []
    connected = R["connected"]
    for answer in res:
        for _cid, server, trans, _msgs, closed_why, _closed_at, error in answer[1]:
            if error is not None:
                continue
            if closed_why:
                closed.append(closed_why)
            counts = [c for c, _ in trans]
            for need, p in needs:
                t = first_time(counts, trans, need + offset)
                if t is None:
                    missed += 1
                else:
                    v = (t - p.accepted) * 1000
                    lat.append(v)
                    lat_sent.append((t - p.sent) * 1000)
                    per_server[server].append(v)
    L, LS = stats(lat), stats(lat_sent)
    pairs = connected * len(needs)
    t_start, t_end = R["window"]
    b_lo, b_hi = int(t_start * 10), int(t_end * 10)
    msgs = sum(c for a in res for b, c in a[2].items() if b_lo <= b < b_hi)
    msgs_all = sum(c for a in res for c in a[2].values())
    dur = (b_hi - b_lo) / 10
    G = stats([lag * 1000 for a in res for (t, lag) in a[3] if t_start <= t <= t_end])
    busy = sum(max(0.0, R["cpu"][s.index] - R["cpu_idle1"][s.index]) for s in servers) * (t_end - t_start)
    per_msg = busy / max(msgs, 1) * 1e6
    n_events = len(needs)

    print(f"\n== results: {args.processes} web process(es), {connected:,} clients, {n_events:,} events "
          f"at {args.rate:g}/s for {args.seconds:g}s\n")
    rows = [
        ["clients connected", f"{connected:,} of {args.clients:,}"
                              + (f" ({len(R['errors'])} failed, e.g. {R['errors'][0][5]})" if R["errors"] else "")],
        ["connect: all clients (wall)", f"{R['connect_wall']:.1f} s (extensions: {R['ext']})"],
        ["connect: handshake p50 / p95 / max", f"{ms(R['hs']['p50'])} / {ms(R['hs']['p95'])} / {ms(R['hs']['max'])} ms"],
        ["connect: + subscribed + snapshot p50 / p95 / max",
         f"{ms(R['subd']['p50'])} / {ms(R['subd']['p95'])} / {ms(R['subd']['max'])} ms"],
        ["events accepted (one per POST)", f"{n_events:,} of {hi - lo:,}, {n_events / took:.1f}/s; "
                                           f"sends up to {behind * 1000:.0f} ms behind schedule"],
        ["POST /api/events p50 / p95 (0 clients -> clients)",
         f"{ms(R['base_post']['p50'])} / {ms(R['base_post']['p95'])} -> {ms(R['post']['p50'])} / "
         f"{ms(R['post']['p95'])} ms"],
        ["LATENCY accept (202) -> client p50 / p95 / p99 / max",
         f"{ms(L['p50'])} / {ms(L['p95'])} / {ms(L['p99'])} / {ms(L['max'])} ms (min {ms(L['min'])})"],
        ["latency POST sent -> client p50 / p95 / p99 / max",
         f"{ms(LS['p50'])} / {ms(LS['p95'])} / {ms(LS['p99'])} / {ms(LS['max'])} ms"],
        ["(client, event) pairs observed", f"{L['n']:,} of {pairs:,}; never observed: {missed:,}"],
    ]
    if len(servers) > 1:
        for s in servers:
            S = stats(per_server[s.index])
            rows.append([f"  clients of {s.child.name}: latency p50 / p95 / p99",
                         f"{ms(S['p50'])} / {ms(S['p95'])} / {ms(S['p99'])} ms"])
    for label, sp in (("0 clients", R["base_split"]), ("with clients", R["split"])):
        a, p = sp["applied"], sp["published"]
        rows.append([f"  split, {label}: accept -> applied p50 / p95",
                     f"{ms(a['p50'])} / {ms(a['p95'])} ms" + (f" ({a['missing']} unseen)" if a["missing"] else "")])
        rows.append([f"  split, {label}: accept -> PUBLISHed p50 / p95",
                     f"{ms(p['p50'])} / {ms(p['p95'])} ms" + (f" ({p['missing']} unseen)" if p["missing"] else "")])
    for label, rd in (("0 clients", R["base_rounds"]), ("with clients", R["rounds"])):
        rows.append([f"  publish rounds, {label}",
                     f"{rd['rounds']}, gap p50 {ms(rd['gap']['p50'])} ms; qa 24h -> last message p50 / max "
                     f"{ms(rd['fast']['p50'])} / {ms(rd['fast']['max'])} ms; with 7d+30d ({rd['slow']['n']}) "
                     f"{ms(rd['slow']['p50'])} / {ms(rd['slow']['max'])} ms; message bytes p50 / max "
                     f"{rd['bytes']['p50']:,.0f} / {rd['bytes']['max']:,.0f}"])
    rows += [
        ["clients closed by the server", f"{len(closed)}" + (f", e.g. {closed[0]}" if closed else "")],
        ["data_update messages delivered", f"{msgs:,} in {dur:.1f} s = {msgs / dur:,.0f}/s (all clients), "
                                           f"{msgs / max(connected, 1) / dur:.2f}/s per client; {msgs_all:,} in all"],
        ["web CPU per delivered message", f"{per_msg:.0f} us (web processes' CPU while streaming minus idle with "
                                          f"clients, over the messages; includes POST, HTTP probe"
                                          + (f", {servers[0].runs_pipeline})" if servers[0].runs_pipeline else ")")],
        ["drain after the last POST", f"{R['drained']:.1f} s"],
        ["client loop lag p50 / p99 / max (streaming)",
         f"{ms(G['p50'])} / {ms(G['p99'])} / {ms(G['max'])} ms ({args.client_procs} client process(es), "
         f"{TICK_S * 1000:.0f} ms ticker)"],
        ["CPU client processes: idle / streaming", f"{R['ccpu_idle'] * 100:.0f}% / {R['ccpu'] * 100:.0f}% of one core"],
        ["CPU Redis (whole server) streaming", f"{R['rcpu'] * 100:.0f}% of one core"],
        ["load average 1/5/15 min, start -> end", R["load"]],
    ]
    for name, cpu in R["acpu"].items():
        rows.append([f"CPU `cli.py {name}` streaming", f"{cpu * 100:.0f}% of one core"])
    for s in servers:
        i = s.index
        n = max(R["per_server"][i], 1)
        rows += [
            [f"{s.child.name}: CPU idle / streaming, 0 clients",
             f"{R['cpu_idle0'][i] * 100:.0f}% / {R['cpu_base'][i] * 100:.0f}% of one core"],
            [f"{s.child.name}: CPU idle / streaming, clients connected",
             f"{R['cpu_idle1'][i] * 100:.0f}% / {R['cpu'][i] * 100:.0f}% of one core"
             + (f" (runs {s.runs_pipeline})" if s.runs_pipeline else "")],
            [f"{s.child.name}: RSS 0 clients / connected / after streaming",
             f"{R['rss0'][i] / 1024:.1f} / {R['rss1'][i] / 1024:.1f} / {R['rss2'][i] / 1024:.1f} MiB"],
            [f"{s.child.name}: memory per connection",
             f"{(R['rss1'][i] - R['rss0'][i]) / n:.1f} KiB connected, {(R['rss2'][i] - R['rss0'][i]) / n:.1f} KiB "
             f"after streaming ({R['per_server'][i]:,} connections)"],
        ]
        for phase, per in http.items():
            for kind, vals in per[i].items():
                H = stats(vals)
                rows.append([f"{s.child.name}: HTTP p50 / p95, {kind}, {phase}", f"{ms(H['p50'])} / {ms(H['p95'])} ms"])
    print(table(["measure", "value"], rows))

    http_ok = True
    notes = []
    for s in servers:
        for kind in http["streaming, 0 clients"][s.index]:
            base = stats(http["streaming, 0 clients"][s.index][kind])["p95"]
            now = stats(http["streaming, clients connected"][s.index][kind])["p95"]
            limit = HTTP_FACTOR * base + HTTP_SLACK_MS
            http_ok = http_ok and now <= limit
            notes.append(f"{s.child.name} {kind} {ms(base)} -> {ms(now)} ms (limit {ms(limit)})")
    lat_ok = L["p95"] < TARGET_P95_MS and missed == 0
    n_ok = connected >= TARGET_CLIENTS
    met = lat_ok and http_ok and n_ok
    print(f"\ntarget \"p95 < {TARGET_P95_MS:.0f} ms with {TARGET_CLIENTS:,} clients; HTTP p95 unchanged\": "
          f"{'MET' if met else 'NOT MET'}")
    print(f"  latency p95 {ms(L['p95'])} ms {'<' if L['p95'] < TARGET_P95_MS else '>='} {TARGET_P95_MS:.0f} ms; "
          f"{missed:,} pairs never observed; {connected:,} clients connected "
          f"({'enough' if n_ok else f'fewer than {TARGET_CLIENTS:,}'})")
    print(f"  HTTP p95 while streaming, without -> with clients (unchanged = <= {HTTP_FACTOR} x + {HTTP_SLACK_MS:g} ms): "
          f"{'; '.join(notes)} -> {'unchanged' if http_ok else 'CHANGED'}")
    if G["p99"] > 10:
        print(f"  note: the client processes' loop lag (p99 {ms(G['p99'])} ms) is part of the measured latency")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--redis-url", default=DEFAULT_REDIS_URL,
                    help=f"Redis database to use; it is FLUSHed at the start (default {DEFAULT_REDIS_URL})")
    ap.add_argument("--processes", type=int, default=1, choices=(1, 2), help="web processes (default 1)")
    ap.add_argument("--clients", type=int, default=1000, help="WebSocket clients (default 1000)")
    ap.add_argument("--client-procs", type=int, default=4,
                    help="asyncio processes that run the clients (default 4; 1 = a single event loop)")
    ap.add_argument("--client", choices=("lean", "websockets"), default="lean",
                    help="lean: a minimal RFC 6455 client on asyncio.Protocol (default; a few us a message); "
                         "websockets: the `websockets` library (~50-70 us a message: the clients become the limit)")
    ap.add_argument("--client-nice", type=int, default=0, metavar="N",
                    help="run the client processes at this niceness (e.g. 19): the server then gets a core "
                         "whenever it needs one, as it would with its browsers on other machines (default 0)")
    ap.add_argument("--batch", type=int, default=50,
                    help="WebSocket handshakes in flight at most, over all client processes (default 50)")
    ap.add_argument("--pipeline", choices=tuple(PIPELINES), default="web",
                    help="web: the first web process runs the aggregator thread and the publisher (default); "
                         "separate: neither web process does, one `cli.py aggregate` process runs both; "
                         "publisher: the first web process runs the aggregator, a `cli.py publish` process "
                         "the publisher; apart: a `cli.py aggregate` and a `cli.py publish` process")
    ap.add_argument("--rate", type=float, default=20.0, help="POSTs (events) per second (default 20)")
    ap.add_argument("--seconds", type=float, default=30.0, help="streaming time (default 30)")
    ap.add_argument("--baseline-seconds", type=float, default=5.0,
                    help="streaming time of the 0-client baseline (default 5)")
    ap.add_argument("--http-requests", type=int, default=50,
                    help="HTTP probe requests per process, phase and kind (keep-alive / new connection)")
    ap.add_argument("--post-threads", type=int, default=4,
                    help="POSTs in flight at most (default 4; 1 = strictly one after the other)")
    ap.add_argument("--idle-seconds", type=float, default=3.0,
                    help="how long server CPU is measured idle, before and after connecting (default 3)")
    ap.add_argument("--drain", type=float, default=20.0,
                    help="seconds to wait after the last POST for every client to see it (default 20)")
    ap.add_argument("--keep-logs", action="store_true", help="copy the servers' logs to the temp directory at the end")
    ap.add_argument("--no-compression", action="store_true",
                    help="do not offer permessage-deflate (browsers offer it; by default the clients do too)")
    args = ap.parse_args()
    if not 0 <= args.client_nice <= 19:
        ap.error("--client-nice must be 0-19")
    if min(args.clients, args.client_procs, args.post_threads, args.batch) < 1 or min(args.rate, args.seconds) <= 0:
        ap.error("--clients, --client-procs, --post-threads, --batch, --rate and --seconds must be positive")
    args.client_procs = min(args.client_procs, args.clients)
    exit_on_sigterm()
    try:
        sys.exit(run(args))
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
    except Exception:
        traceback.print_exc()
        print("error: the benchmark failed (servers stopped)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
