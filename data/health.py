"""Health checks (seed §10.2): Redis, the aggregator's backlog and freshness, disk, memory.
Used by GET /health and by the operations dashboard's system health widget."""
from __future__ import annotations

import shutil
from typing import Any

import redis

from data.keys import Keys
from data.timeutil import fmt_ms, now_ms


def health(r: redis.Redis, keys: Keys) -> dict[str, Any]:
    checks: dict[str, dict[str, Any]] = {}
    try:
        r.ping()
        checks["redis"] = {"status": "healthy"}
        meta = r.hgetall(keys.meta)
        lag = None
        # Partitioned: every partition's stream, and the root stream the router empties.
        streams = [keys.stream] + ([pk.stream for pk in keys.parts()] if keys.partitioned else [])
        for stream in streams:
            try:
                groups = r.xinfo_groups(stream)
                lag = (lag or 0) + sum(int(g.get("lag") or 0) + int(g.get("pending") or 0) for g in groups)
            except redis.ResponseError:
                pass
        last = meta.get(b"last_batch_ms")
        age = None if last is None else (now_ms() - int(last)) / 1000
        stale = bool(lag) and (age is None or age > 60)
        checks["aggregator"] = {"status": "degraded" if stale else "healthy", "backlog": lag, "last_batch_age_s": age}
    except redis.RedisError as exc:
        checks["redis"] = {"status": "unhealthy", "error": str(exc)}
    disk = shutil.disk_usage(".")
    checks["disk"] = {"status": "healthy" if disk.free > 256 * 2**20 else "degraded", "free_bytes": disk.free}
    try:
        import resource
        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        checks["memory"] = {"status": "healthy", "max_rss_bytes": rss_kb * 1024}
    except ImportError:  # pragma: no cover - not on Linux
        pass
    healthy = all(c["status"] == "healthy" for c in checks.values())
    return {"status": "healthy" if healthy else "degraded", "timestamp": fmt_ms(now_ms()), "checks": checks}
