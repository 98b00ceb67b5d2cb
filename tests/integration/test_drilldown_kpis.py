"""Every KPI's drill-down against its card, on simulated activity delivered late, shuffled
and with duplicates: the rows alone, fed to the reference calculator, give the card's value,
and the response's counts reproduce it over the whole window whatever page is read."""
from __future__ import annotations

import math
import random
from datetime import timedelta
from typing import Any, Iterator
from urllib.parse import quote

import pytest
import redis

from data import kpis, reference
from data.aggregator import Aggregator
from data.ingest import Ingestor
from data.keys import Keys
from data.simulator import GATES, QUEUES, REPOS
from data.timeutil import DAY_MS, HOUR_MS, fmt_ms, now_ms, parse_iso, to_datetime
from tests.helpers import admin_test_client, busy_events

T = timedelta(hours=24)
KPIS = ([("executive", k) for k in kpis.EXECUTIVE]
        + [("operational", k) for k in kpis.OPERATIONAL] + [("operational", f"queue_depth.{q}") for q in QUEUES]
        + [("qa", k) for k in kpis.QA]
        + [("qa", f"gate.{g}.{m}") for g in GATES for m in ("pass_rate", "executions", "p95_time")]
        + [("developer", k) for k in kpis.DEVELOPER])


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


@pytest.fixture(scope="module")
def loaded(redis_url: str, tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    keys = Keys("qms")
    end_ms = now_ms() // HOUR_MS * HOUR_MS - HOUR_MS
    if end_ms % DAY_MS < 6 * HOUR_MS:        # completed_today needs a few hours since midnight
        end_ms = end_ms // DAY_MS * DAY_MS - 6 * HOUR_MS
    # Half an hour past `end` too: state KPIs must see entities that changed after the instant.
    events = busy_events(50, end_ms, 11, 0.15, after_ms=30 * 60_000)
    rng = random.Random(5)
    shuffled = events + rng.sample(events, len(events) // 20)        # 5 % delivered twice
    rng.shuffle(shuffled)
    ing, agg = Ingestor(r, keys), Aggregator(r, keys, batch=500)
    size = len(shuffled) // 6 + 1
    for i in range(0, len(shuffled), size):                          # late and out of order
        ing.ingest(shuffled[i:i + size])
        agg.drain()
    client = admin_test_client(redis_url, str(tmp_path_factory.mktemp("data")))
    authors: dict[str, int] = {}
    for e in events:
        if e["type"] == "workflow.pr_created" and end_ms - 24 * HOUR_MS <= _ms(e) < end_ms:
            authors[e["data"]["author"]] = authors.get(e["data"]["author"], 0) + 1
    reviewers: dict[str, int] = {}
    for e in events:
        if e["type"] == "workflow.review_completed" and not e["data"]["reviewer"].startswith("qms-"):
            reviewers[e["data"]["reviewer"]] = reviewers.get(e["data"]["reviewer"], 0) + 1
    today: dict[str, int] = {}          # completed_today runs from midnight: maybe nobody yet
    for e in events:
        if e["type"] == "workflow.review_completed" and end_ms // DAY_MS * DAY_MS <= _ms(e) < end_ms:
            today[e["data"]["reviewer"]] = today.get(e["data"]["reviewer"], 0) + 1
    users = sorted(authors, key=lambda u: -authors[u])[:2] + sorted(reviewers, key=lambda u: -reviewers[u])[:2]
    users += sorted(set(today) - set(users), key=lambda u: -today[u])[:1]
    # pending_reviews is a state at `end`: the top reviewers may have none open at that hour.
    pending = _open_reviews(events, end_ms)
    users += sorted(set(pending) - set(users), key=lambda u: -pending[u])[:1]
    yield {"r": r, "client": client, "end": end_ms, "users": users, "today": bool(today), "pending": bool(pending)}
    r.flushdb()


def _open_reviews(events: list[dict[str, Any]], end_ms: int) -> dict[str, int]:
    """Per reviewer, the reviews started and not completed at `end_ms`."""
    started: dict[tuple[str, Any], int] = {}
    done: dict[tuple[str, Any], list[int]] = {}
    for e in events:
        if _ms(e) > end_ms or e["type"] not in ("workflow.review_started", "workflow.review_completed"):
            continue
        key = (e["data"]["reviewer"], e["data"]["workflow_id"])
        if e["type"] == "workflow.review_started":
            started[key] = max(started.get(key, 0), _ms(e))
        else:
            done.setdefault(key, []).append(_ms(e))
    out: dict[str, int] = {}
    for (user, wf), at in started.items():
        if not any(t > at for t in done.get((user, wf), [])):
            out[user] = out.get(user, 0) + 1
    return out


def _ms(ev: dict[str, Any]) -> int:
    return parse_iso(ev["timestamp"])


def _card(client: Any, dash: str, kpi: str, end: int, query: str) -> Any:
    res = client.get(f"/api/dashboard/{dash}?timeframe=24h&end={fmt_ms(end)}{query}")
    assert res.status_code == 200, res.json
    [w] = [w for w in res.json["response"]["data"]["widgets"] if w["id"] == kpi]
    return w


def drill(client: Any, kpi: str, query: str, limit: int = 700) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The whole drill-down, read page by page through the cursor; counts must not depend on the page."""
    rows: list[dict[str, Any]] = []
    cursor = ""
    first: dict[str, Any] | None = None
    while True:
        url = f"/api/metrics/{quote(kpi, safe='')}/events?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        res = client.get(url)
        assert res.status_code == 200, (url, res.json)
        data = res.json["response"]["data"]
        if first is None:
            first = data
        assert data["counts"] == first["counts"] and data["total"] == first["total"], "counts cover the window"
        rows += data["events"]
        cursor = data["next_cursor"]
        if not cursor:
            break
    assert first is not None
    assert len(rows) == first["total"]
    assert len(set(r["id"] for r in rows)) == len(rows), "no row twice"
    assert [_key(r) for r in rows] == sorted((_key(r) for r in rows), reverse=True), "newest first"
    return first, rows


def _key(row: dict[str, Any]) -> tuple[int, str]:
    return parse_iso(row["timestamp"]), row["id"]


def evidence(client: Any, data: dict[str, Any], rows: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """Every event the rows stand on: the rows' own events, their context, the basis, and for
    a composite its parts' drill-downs."""
    out: list[dict[str, Any]] = list(data.get("basis") or [])
    for row in rows:
        out.append({k: v for k, v in row.items() if k not in ("role", "value", "context", "window")})
        out += row.get("context") or []
    for part in data.get("parts") or []:
        pdata, prows = drill(client, part["metric"], query)
        assert _same(pdata["value"], part["value"])
        out += evidence(client, pdata, prows, query)
    return out


def _check(client: Any, dash: str, kpi: str, end: int, user: str | None, scope: str = "") -> Any:
    extra = (f"&user={user}" if user else "") + scope
    query = f"&timeframe=24h&end={fmt_ms(end)}" + extra
    card = _card(client, dash, kpi, end, extra)
    want = card["data"]["current_value"]
    data, rows = drill(client, kpi, query)
    # A gate's p95 card reads binned durations: the rows' exact value within the stated error.
    assert reference.agrees(kpi, want, data["value"]) or (want is None and data["value"] in (0, None)), \
        f"{kpi}: counts {data['counts']} give {data['value']!r}, the card says {want!r}"
    events = evidence(client, data, rows, query)
    dedup = {e["id"]: e for e in events}
    if rows or data.get("parts"):
        got = reference.compute_dashboard(list(dedup.values()), dash, to_datetime(end), T, user=user)[kpi]["current_value"]
        assert reference.agrees(kpi, want, got), f"{kpi}: the reference on the {len(rows)} rows gives {got!r}, the card {want!r}"
    else:
        assert want in (None, 0), f"{kpi}: no rows behind {want!r}"
    return want


@pytest.mark.parametrize("dash,kpi", KPIS, ids=[k for _, k in KPIS])
def test_drk001_every_kpi_is_recomputed_from_its_drill_down_rows(loaded: dict[str, Any], dash: str, kpi: str) -> None:
    client, end = loaded["client"], loaded["end"]
    if dash != "developer":
        _check(client, dash, kpi, end, None)
        return
    values = [_check(client, dash, kpi, end, u) for u in loaded["users"]]
    if kpi == "completed_today" and not loaded["today"]:
        return                             # the window since midnight holds no review yet
    if kpi == "pending_reviews" and not loaded["pending"]:
        return                             # nobody has a review open at that instant
    assert any(v not in (None, 0, []) for v in values), f"{kpi}: no user with data, nothing was compared"


SCOPED = [("executive", "gate_pass_rate"), ("executive", "sla_adherence"), ("executive", "average_review_cycle_time"),
          ("operational", "in_progress_reviews"), ("qa", "defects_found"), ("qa", "audit_readiness_score")]


@pytest.mark.parametrize("dash,kpi", SCOPED, ids=[k for _, k in SCOPED])
def test_drk002_a_filtered_drill_down_recomputes_the_filtered_card(loaded: dict[str, Any], dash: str, kpi: str) -> None:
    client, end = loaded["client"], loaded["end"]
    scope = f"&repository={REPOS[0]}"
    assert _card(client, dash, kpi, end, scope)["filtered"] is True
    _check(client, dash, kpi, end, None, scope=scope)
    everything, _ = drill(client, kpi, f"&timeframe=24h&end={fmt_ms(end)}")
    mine, _ = drill(client, kpi, f"&timeframe=24h&end={fmt_ms(end)}{scope}")
    assert mine["filtered"] is True and 0 < mine["total"] < everything["total"], "the filter keeps some rows, not all"
