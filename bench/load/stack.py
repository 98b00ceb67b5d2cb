"""The deployment shape the load test runs against, started as separate processes the way
production runs them (README, "Deployment"): `gunicorn -k gevent -w N app:server` with
QMS_RUN_AGGREGATOR=0, one `cli.py aggregate` (which also publishes the live channels), and a
producer POSTing simulated events to /api/events at a steady rate (`cli.py simulate --url`
with a producer token). History comes first, through the real ingest and aggregator
(bench/_common.load_simulated); the accounts are made with the product's UserStore.
"""
from __future__ import annotations

import http.client
import os
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _common import ROOT, Child, _child_env, free_port, start_aggregator, wait_group  # noqa: E402

PASSWORD = "bench-pages-password-1"      # bench/pages.py's: capture.py signs in with its helper
# The roles of config/rbac.yaml that open dashboards, in the order accounts are dealt out
# (the sixth, producer, posts the live events).
ROLES = ("executive", "qa_lead", "developer", "operations", "admin")
DASHBOARDS = {"executive": ["executive"], "qa_lead": ["qa"], "developer": ["developer"],
              "operations": ["operational"], "admin": ["executive", "operational", "qa", "developer"]}


def make_users(r: Any, n: int, prefix: str = "qms") -> list[dict[str, Any]]:
    """n accounts dealt round-robin over ROLES, made with data.users.UserStore (Argon2id, as in
    production). Developers take the simulated authors' names first, so "My reviews" has
    rows; later ones get names of their own (an empty but real page)."""
    from data.keys import Keys
    from data.users import UserStore
    store = UserStore(r, Keys.of(r, prefix))
    out = user_list(n)
    for u in out:
        store.add(u["name"], [u["role"]], PASSWORD)
    return out


def user_list(n: int) -> list[dict[str, Any]]:
    """The accounts make_users makes (the same names for the same n)."""
    from data.simulator import DEVELOPERS
    out: list[dict[str, Any]] = []
    devs = iter(DEVELOPERS)
    for i in range(n):
        role = ROLES[i % len(ROLES)]
        name = (next(devs, None) if role == "developer" else None) or f"load-{role.replace('_', '-')}-{i:04d}"
        out.append({"name": name, "role": role, "password": PASSWORD, "dashboards": DASHBOARDS[role]})
    return out


def producer_token(r: Any, prefix: str = "qms") -> str:
    from data.keys import Keys
    from data.users import TokenStore
    _, secret = TokenStore(r, Keys.of(r, prefix)).create("load-producer", ["producer"], "bench")
    return str(secret)


@dataclass
class Stack:
    base: str
    web: Child
    aggregator: Child
    producer: Child | None
    data_dir: str
    children: list[Child] = field(default_factory=list)
    producer_env: dict[str, str] = field(default_factory=dict)
    producer_exits: list[tuple[float, str]] = field(default_factory=list)

    def check(self) -> None:
        """The web server and the aggregator must live; a producer that gave up (cli.py
        simulate exits when a POST /api/events times out, as it does on an overloaded
        server) is restarted with the next seed, and counted."""
        self.web.check()
        self.aggregator.check()
        if self.producer is not None and not self.producer.alive():
            self.producer_exits.append((time.time(), self.producer.tail(3)))
            args = list(self.producer.proc.args)  # type: ignore[arg-type]
            args[args.index("--seed") + 1] = str(int(args[args.index("--seed") + 1]) + 1)
            env = self.producer_env
            self.producer.stop()
            self.producer = Child("producer", args, env)
            self.children.append(self.producer)

    def live_ingest(self, on: bool) -> None:
        """Pause (SIGSTOP) or resume (SIGCONT) the producer."""
        if self.producer is not None and self.producer.alive():
            os.kill(self.producer.pid, signal.SIGCONT if on else signal.SIGSTOP)

    def stop(self) -> None:
        self.live_ingest(True)
        for c in reversed(self.children):
            c.stop()


def wait_http(child: Child, base: str, path: str = "/login", timeout: float = 90.0) -> None:
    host, port = base.split("//", 1)[1].split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check()
        try:
            c = http.client.HTTPConnection(host, int(port), timeout=5)
            c.request("GET", path)
            resp = c.getresponse()
            resp.read()
            c.close()
            if resp.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{child.name} did not answer GET {path} within {timeout:.0f} s")


def start_stack(redis_url: str, r: Any, *, workers: int, worker_connections: int, ingest_rate: float,
                seed: int = 11, web_env: dict[str, str] | None = None) -> Stack:
    data_dir = tempfile.mkdtemp(prefix="qms-load-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _child_env(redis_url, {"QMS_SECRET_KEY": secrets.token_urlsafe(32), "QMS_RUN_AGGREGATOR": "0",
                                 "QMS_DATA_DIR": data_dir, "QMS_PUBLIC_URL": base, **(web_env or {})})
    children: list[Child] = []
    try:
        agg = start_aggregator(redis_url)
        children.append(agg)
        wait_group(r, agg)
        web = Child("gunicorn", [sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", str(workers),
                                 "--worker-connections", str(worker_connections), "-b", f"127.0.0.1:{port}",
                                 "--log-level", "warning", "--graceful-timeout", "5", "app:server"], env)
        children.append(web)
        wait_http(web, base)
        producer = None
        producer_env: dict[str, str] = {}
        if ingest_rate > 0:
            token = producer_token(r)
            producer_env = {**env, "QMS_TOKEN": token}
            producer = Child("producer", [sys.executable, str(ROOT / "cli.py"), "simulate", "--url", base,
                                          "--rate", str(ingest_rate), "--seed", str(seed), "--backfill", "1m",
                                          "--quiet"], producer_env)
            children.append(producer)
        return Stack(base, web, agg, producer, data_dir, children, producer_env)
    except BaseException:
        for c in reversed(children):
            c.stop()
        raise


def pids_of(child: Child) -> list[int]:
    """The child and its descendants (gunicorn's workers)."""
    import psutil
    try:
        p = psutil.Process(child.pid)
        return [p.pid] + [c.pid for c in p.children(recursive=True)]
    except psutil.Error:
        return []


def env_for_children(redis_url: str) -> dict[str, str]:
    return _child_env(redis_url, {k: v for k, v in os.environ.items() if k.startswith("LOAD_")})
