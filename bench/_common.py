"""Shared helpers of the benchmark scripts (not a test module, not product code).

The scripts start the real pieces as separate processes, the way a deployment runs them:
the Flask app (`create_app(settings).server`) behind werkzeug's threaded WSGI server
(bench/_serve.py) and one `python cli.py aggregate` process. Everything talks to the
Redis database given by --redis-url, which the scripts FLUSHDB at start.
"""
from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parent.parent
# The repository first: bench/pages.py must not shadow the app's `pages` package.
if str(ROOT) in sys.path:
    sys.path.remove(str(ROOT))
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import redis  # noqa: E402

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
STREAM = "qms:events"
META = "qms:meta"
GROUP = "aggregators"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- environment --------------------------------------------------------------------------

def machine_info(r: redis.Redis) -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    info = r.info("server")
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "ram": mem, "python": platform.python_version(),
            "redis": str(info.get("redis_version")), "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "data", "api", "factory.py", "settings.py",
                                "cli.py"], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.split("\n")
        changed = [ln[3:] for ln in dirty if ln.strip()]
        return head + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


def speed_check() -> float:
    """Seconds of one core for a fixed pure-Python loop (0.36-0.61 s on this project's
    machine on one day): a figure's machine state, printed with it, as the same code's load
    figures have moved by half with it."""
    t = time.perf_counter()
    sum(i * i for i in range(10**7))
    return time.perf_counter() - t


def print_machine(r: redis.Redis) -> None:
    m = machine_info(r)
    print(f"machine: {m['nproc']} cpu ({m['cpu']}), {m['ram']} RAM, Python {m['python']}, "
          f"Redis {m['redis']}, load average {m['load']}; speed check {speed_check():.2f} s", flush=True)
    print(f"code: {git_state()}; {native_state()}", flush=True)


def native_state() -> str:
    """Whether this run's processes load the compiled aggregation path (data/native.py)."""
    from data import native
    if not native.enabled():
        return "compiled modules off (QMS_NATIVE=0)"
    built = [m for m in native.MODULES if native.built_path(m).is_file()]
    return f"compiled modules {len(built)}/{len(native.MODULES)} (scripts/build_native.py)"


def connect(url: str) -> redis.Redis:
    r = redis.Redis.from_url(url)
    r.ping()
    return r


def flush(r: redis.Redis) -> None:
    db = r.connection_pool.connection_kwargs.get("db", 0)
    if db == 15:
        sys.exit("refusing to FLUSHDB database 15 (the test database); use another --redis-url")
    r.flushdb(asynchronous=True)      # lazy free: a multi-GB database would block the server


def redis_cpu(r: redis.Redis) -> float:
    c = r.info("cpu")
    return float(c["used_cpu_user"]) + float(c["used_cpu_sys"])


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def used_memory(r: redis.Redis) -> dict[str, Any]:
    m = r.info("memory")
    return {"used_memory": int(m["used_memory"]), "used_memory_human": m["used_memory_human"],
            "used_memory_peak_human": m["used_memory_peak_human"]}


def db_memory(r: redis.Redis, samples: int = 0) -> tuple[int, dict[str, tuple[int, int]]]:
    """Bytes held by this database's keys (sum of MEMORY USAGE; INFO memory is server-wide),
    and {key family: (keys, bytes)} where the family is the key up to its second ':'."""
    fams: dict[str, list[int]] = {}
    batch: list[bytes] = []

    def measure() -> None:
        with r.pipeline(transaction=False) as p:
            for k in batch:
                p.memory_usage(k, samples=samples)
            for k, n in zip(batch, p.execute()):
                parts = k.decode(errors="replace").split(":")
                f = fams.setdefault(":".join(parts[:2]), [0, 0])
                f[0] += 1
                f[1] += int(n or 0)
        batch.clear()

    for key in r.scan_iter(count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            measure()
    measure()
    return sum(v[1] for v in fams.values()), {k: (v[0], v[1]) for k, v in fams.items()}


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return str(n)


def print_db_memory(r: redis.Redis, events: int) -> int:
    total, fams = db_memory(r)
    print(f"this database: {r.dbsize():,} keys, {human(total)} by MEMORY USAGE "
          f"({total / max(events, 1):,.0f} bytes per event); by key family:")
    for fam, (keys, size) in sorted(fams.items(), key=lambda x: -x[1][1])[:10]:
        print(f"  {fam:14s} {keys:>9,} keys  {human(size):>11s}  {size / max(events, 1):7,.0f} B/event")
    return total


# --- events ---------------------------------------------------------------------------------

def generate(n: int, rate: float, seed: int = 7, end_ms: int | None = None, quiet: bool = False) -> list[bytes]:
    """The last `n` simulated events before `end_ms` (default now), each as JSON bytes.

    The simulator's rate is a weekly mean modulated by hour of week, and it starts with no
    open pull requests, so the span is widened until it yields at least n events.
    """
    from data.simulator import Simulator
    from data.timeutil import now_ms, to_datetime
    end = end_ms if end_ms is not None else now_ms()
    span = int(n / rate * 1000) + 1_800_000
    t0 = time.perf_counter()
    while True:
        start = end - span
        sim = Simulator(seed=seed, rate=rate, start=to_datetime(start))
        # memoryview(...).tobytes(): an exact-size copy. Keeping orjson's own result objects
        # costs ~4 KiB each here (allocator fragmentation), 18 GB for a million events.
        out = [memoryview(orjson.dumps(ev)).tobytes()
               for ev in sim.events_between(to_datetime(start), to_datetime(end))]
        if len(out) >= n:
            break
        span = int(span * n / max(len(out), 1) * 1.15)
    out = out[-n:]
    if not quiet:
        first = orjson.loads(out[0])["timestamp"]
        last = orjson.loads(out[-1])["timestamp"]
        print(f"generated {len(out):,} events ({first} .. {last}), "
              f"{sum(map(len, out)) / len(out):.0f} bytes each on average, in {time.perf_counter() - t0:.1f}s",
              flush=True)
    return out


def load_stream(r: redis.Redis, events: list[bytes], partitions: int = 1, as_ingest: bool = False) -> None:
    """XADD the events; with K partitions straight to their partitions' streams; `as_ingest`:
    marked validated (field v) as the ingest writes them, else as a direct producer's."""
    import orjson

    from data.keys import Keys
    from data.partition import route
    extra = {"v": b"1"} if as_ingest else {}
    keys = Keys.of(r, "qms", partitions)
    with r.pipeline(transaction=False) as p:
        for c in chunks(events, 5000):
            for e in c:
                p.xadd(keys.part(route(orjson.loads(e), partitions)).stream if keys.partitioned else STREAM, {"e": e, **extra})
            p.execute()


def chunks(seq: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


# --- processes --------------------------------------------------------------------------------

def free_port() -> int:
    """A loopback port free now (for a server the bench starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child_env(redis_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    # The app's settings come from `extra` only; QMS_NATIVE (compiled modules or source, data/native.py) is
    # how this run's processes execute, so it passes on.
    env = {k: v for k, v in os.environ.items()
           if (not k.startswith("QMS_") or k == "QMS_NATIVE") and k != "REDIS_URL"}
    env["REDIS_URL"] = redis_url
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if the benchmark process dies (Linux)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def exit_on_sigterm() -> None:
    """SIGTERM raises SystemExit, so `finally` blocks stop the children."""
    def _exit(*_: object) -> None:
        raise SystemExit(143)
    signal.signal(signal.SIGTERM, _exit)


class Child:
    """A subprocess whose output goes to a temp file (shown if it dies)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check(self) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log:\n{self.tail()}")

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def cpu(self) -> float:
        return proc_cpu(self.proc.pid)

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass


def start_aggregator(redis_url: str, batch: int | None = None, batch_max: int | None = None) -> Child:
    """One `python cli.py aggregate` process (the deployment's aggregator)."""
    extra = {"QMS_AGGREGATOR_BATCH": str(batch)} if batch else {}
    if batch_max:
        extra["QMS_AGGREGATOR_BATCH_MAX"] = str(batch_max)
    return Child("aggregator", [sys.executable, str(ROOT / "cli.py"), "aggregate", "--name", "bench"],
                 _child_env(redis_url, extra))


def wait_group(r: redis.Redis, child: Child, timeout: float = 60.0) -> None:
    """Until the aggregator has created its consumer group (it is then reading)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check()
        try:
            if any(g["name"] in (GROUP, GROUP.encode()) for g in r.xinfo_groups(STREAM)):
                return
        except redis.ResponseError:
            pass
        time.sleep(0.05)
    raise TimeoutError("the aggregator did not create its consumer group")


def start_server(redis_url: str, max_body_bytes: int | None = None,
                 env: dict[str, str] | None = None) -> tuple[Child, str]:
    """The Flask app of create_app() behind werkzeug's threaded server; returns (child, base URL).
    `env`: QMS_* settings of the server."""
    fd, port_file = tempfile.mkstemp(prefix="bench-port-")
    os.close(fd)
    os.unlink(port_file)
    args = [sys.executable, str(ROOT / "bench" / "_serve.py"), "--redis-url", redis_url, "--port-file", port_file]
    if max_body_bytes:
        args += ["--max-body-bytes", str(max_body_bytes)]
    child = Child("server", args, _child_env(redis_url, env))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        child.check()
        if os.path.exists(port_file):
            text = Path(port_file).read_text().strip()
            if text:
                os.unlink(port_file)
                return child, f"http://127.0.0.1:{int(text)}"
        time.sleep(0.05)
    child.stop()
    raise TimeoutError("the server did not start")


def auth_headers(r: redis.Redis, roles: tuple[str, ...] = ("admin",)) -> dict[str, str]:
    """An API token for the benchmark (Authorization: Bearer), when the app has API tokens;
    created in the benchmark database, so create it after any FLUSHDB."""
    try:
        from data.keys import Keys
        from data.users import TokenStore
    except ImportError:
        return {}
    _, secret = TokenStore(r, Keys("qms")).create("bench", list(roles), "bench")
    return {"Authorization": f"Bearer {secret}"}


def applied(r: redis.Redis) -> int:
    return int(r.hget(META, "applied") or 0)


def wait_applied(r: redis.Redis, n: int, child: Child, timeout: float, bar: Any = None, poll: float = 0.05) -> float:
    """Poll HGET qms:meta applied until it reaches n; returns the perf_counter time it did."""
    deadline = time.monotonic() + timeout
    last = 0
    while True:
        now = time.perf_counter()
        done = applied(r)
        if done < last:
            raise RuntimeError(f"{META} applied went back: someone else flushed this database")
        if bar is not None and done != last:
            bar.update(done - last)
        last = done
        if done >= n:
            return now
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {done:,} of {n:,} events aggregated after {timeout:.0f}s")
        child.check()
        time.sleep(poll)


# --- statistics / output ---------------------------------------------------------------------

def pct(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for j, row in enumerate(cells):
        lines.append("| " + " | ".join(c.rjust(w) if j and _numeric(c) else c.ljust(w)
                                         for c, w in zip(row, widths)) + " |")
        if j == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _numeric(s: str) -> bool:
    return s.replace(",", "").replace(".", "", 1).replace("%", "").replace("x", "").strip().isdigit()


def simulated_until_now(sim: Any, start_ms: int) -> Iterable[bytes]:
    """The simulator's events from start_ms up to now, serialised, an hour of simulated time
    at a time (it keeps generating while the wall clock moves on)."""
    from data.timeutil import HOUR_MS, now_ms, to_datetime
    cursor = start_ms
    while True:
        upto = now_ms()
        if cursor >= upto:
            return
        step_end = min(upto, cursor + HOUR_MS)
        for ev in sim.events_between(to_datetime(cursor), to_datetime(step_end)):
            yield memoryview(orjson.dumps(ev)).tobytes()   # exact-size copies (see generate())
        cursor = step_end


def load_simulated(r: redis.Redis, hours: float, rate: float, seed: int = 5) -> list[dict[str, Any]]:
    """FLUSHDB, then `hours` of simulated activity ending a minute ago, through the real ingest
    and aggregator (in-process). Returns the events."""
    from datetime import datetime, timedelta, timezone

    from data.aggregator import Aggregator
    from data.ingest import Ingestor
    from data.keys import Keys
    from data.simulator import Simulator
    keys = Keys.of(r, "qms")
    r.flushdb()
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
    start = end - timedelta(hours=hours)
    events = list(Simulator(seed=seed, rate=rate, start=start).events_between(start, end))
    ingest = Ingestor(r, keys)
    for part in chunks(events, 5000):
        ingest.ingest(part, origin="simulator")
    Aggregator(r, keys).drain(600)
    return events
