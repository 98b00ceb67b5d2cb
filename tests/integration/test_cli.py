"""The command line on a real Redis: replay a JSON Lines file, simulate a backfill."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from data.keys import Keys
from data.timeutil import fmt_ms, now_ms

ROOT = Path(__file__).resolve().parents[2]
K = Keys("qms")


def run_cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli001_replay_counts_and_keeps_rejects(r: Any, redis_url: str, tmp_path: Path) -> None:
    ts = fmt_ms(now_ms() - 60_000)
    good = [{"id": f"e{i}", "type": "user.survey_submitted", "timestamp": ts, "source": "file",
             "data": {"user": "ann", "score": 4}} for i in range(7)]
    lines = [orjson.dumps(e) for e in good] + [orjson.dumps(good[0]), b"{oops", orjson.dumps({"id": "x"}), b""]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    proc = run_cli(redis_url, "replay", str(path), "--wait", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "accepted 7, duplicates 1, rejected 2" in proc.stdout
    assert "line 9: not JSON" in proc.stdout and "timestamp: required" in proc.stdout
    assert r.xlen(K.deadletter) == 2
    assert int(r.hget(K.meta, "applied")) == 7


def test_cli002_simulate_backfill_then_stop(r: Any, redis_url: str) -> None:
    proc = run_cli(redis_url, "simulate", "--backfill", "2h", "--rate", "2", "--seed", "5", "--no-live", "--quiet")
    assert proc.returncode == 0, proc.stderr
    sent = int(proc.stdout.split("sent ")[1].split()[0])
    assert 0 < sent < 7200 * 2 * 3, "the rate is a weekly average: nights and weekends are quieter"
    assert r.xlen(K.stream) == sent


def test_cli003_user_admin_from_the_shell_is_audited_and_never_echoes_passwords(r: Any, redis_url: str) -> None:
    env = {**os.environ, "REDIS_URL": redis_url}
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "users", "add", "carol", "--role", "qa_lead",
                           "--password-stdin"], cwd=ROOT, env=env, input="s3cret-enough-pw\n", capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "s3cret-enough-pw" not in proc.stdout + proc.stderr
    bad = run_cli(redis_url, "users", "add", "dave", "--role", "wizard", "--password-stdin")
    assert bad.returncode == 2 and "wizard" in bad.stderr
    entries = [orjson.loads(f[b"e"]) for _, f in r.xrange("qms:audit")]
    assert [(e["type"], e["data"]["target"]) for e in entries] == [("admin.user_added", "carol")]


def test_cli004_simulate_posts_to_a_real_server_with_a_bearer_token(app: Any, r: Any, redis_url: str) -> None:
    """Before: `simulate --url` sent no credentials and every POST /api/events got 401."""
    import threading

    from werkzeug.serving import make_server
    svc = app.server.extensions["qms"]
    svc.users.add("ci", ["admin"], "correct horse battery")
    _, token = svc.tokens.create("simulator", ["producer"], "ci")
    srv = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_port}"
    args = ("simulate", "--url", url, "--backfill", "1h", "--rate", "2", "--seed", "3", "--no-live", "--quiet")
    try:
        by_flag = run_cli(redis_url, *args, "--token", token)
        assert by_flag.returncode == 0, by_flag.stderr[-2000:]
        sent = int(by_flag.stdout.split("sent ")[1].split()[0])
        assert sent > 0 and r.xlen(K.stream) == sent
        env = {**os.environ, "REDIS_URL": redis_url, "QMS_TOKEN": token}
        by_env = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args[:-3], "4", "--no-live", "--quiet"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert by_env.returncode == 0, by_env.stderr[-2000:]
        assert r.xlen(K.stream) > sent, "QMS_TOKEN is used when --token is not given"
        anonymous = run_cli(redis_url, *args)
        assert anonymous.returncode != 0
        assert "401" in anonymous.stderr and "--token" in anonymous.stderr and "Traceback" not in anonymous.stderr
        assert token not in anonymous.stderr + by_flag.stdout + by_flag.stderr, "the secret is never echoed"
    finally:
        srv.shutdown()
