"""The webhook receiver: one delivery from a forge or a quality tool in, QMS events out.

    rate limit → source configured? (404) → signature (401, audited) → JSON? (400)
      → delivery id seen? (200 duplicate) → the source's map_delivery → ingest (202)

Every delivery that passed its signature is stored (a capped stream per source) and counted
(a hash per source), so the integrations page shows what arrived and can replay it. A
source is a module (`SOURCES`) with `SECRET_SETTING`, `verify`, `delivery_id`, `event_name`
and `map_delivery` (docs/INTEGRATIONS.md). No answer is a 5xx but the app's 503 for an
unreachable Redis, which this code lets through.
"""
from __future__ import annotations

import hashlib
import importlib
import logging
import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Mapping as TMapping
from urllib.parse import parse_qs

import orjson
import redis

from data.keys import Keys
from data.timeutil import DAY_MS, fmt_ms, now_ms
from integrations.mapping import MappingFile

log = logging.getLogger(__name__)

SOURCE_NAMES = ("github", "gitlab", "sonarqube")
DELIVERIES_MAXLEN = 1000          # stored deliveries per source (approximate cap)
SEEN_DAYS = 7                     # a redelivery later than this is processed again (the ingest de-dup still holds)
HEAD_TTL_S = 30 * 86_400          # how long a PR head commit is remembered for commit statuses
STATUSES = ("mapped", "unknown", "ignored", "invalid", "duplicate")
COUNTERS = ("received", *STATUSES, "bad_signature", "rate_limited")
# Request headers kept with a stored delivery (never a credential: the GitLab token is not kept).
KEPT_HEADERS = re.compile(r"^(x-github-|x-hub-signature|x-gitlab-event|x-gitlab-instance|x-gitlab-webhook-uuid|"
                          r"x-gitlab-event-uuid|idempotency-key$|x-sonar-|content-type$|user-agent$)", re.I)


def source_module(name: str) -> ModuleType | None:
    """`integrations.<name>`, imported when first asked (GitLab and SonarQube are optional
    modules: a source whose module is missing is not there)."""
    if name not in SOURCE_NAMES:
        return None
    try:
        return importlib.import_module(f"integrations.{name}")
    except ImportError:
        return None


def sources() -> dict[str, ModuleType]:
    """SOURCES: every receiver this build has."""
    return {n: m for n in SOURCE_NAMES if (m := source_module(n)) is not None}


@dataclass
class Outcome:
    """What the receiver answers: an HTTP status and a JSON body (or an error code/message)."""
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    error: tuple[str, str] | None = None          # (code, message) for the error envelope
    retry_after: int | None = None


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


class Receiver:
    """Per app: the Redis client, key names, settings, ingestor and the mapping file."""

    def __init__(self, r: redis.Redis, keys: Keys, settings: Any, ingestor: Any, audit: Any,
                 mapping: MappingFile | None = None) -> None:
        self.r = r
        self.k = keys
        self.settings = settings
        self.ingestor = ingestor
        self.audit = audit
        self.mapping = mapping or MappingFile(getattr(settings, "integrations_path", None))

    # --- configuration ---------------------------------------------------------------------
    def secret(self, module: ModuleType) -> str:
        return str(getattr(self.settings, module.SECRET_SETTING, None) or "")

    def configured(self, source: str) -> bool:
        module = source_module(source)
        return module is not None and bool(self.secret(module))

    # --- one delivery ------------------------------------------------------------------------
    def receive(self, source: str, headers: TMapping[str, str], body: bytes, remote: str) -> Outcome:
        module = source_module(source)
        secret = self.secret(module) if module is not None else ""
        if module is None or not secret:
            return Outcome(404, error=("not_found", f"no {source[:50]} receiver is configured here"))
        limited = self._rate_limited(source, remote)
        if limited:
            return Outcome(429, error=("rate_limited", f"more than {self.settings.webhook_rate_per_min} deliveries "
                                                       f"a minute from {remote}; retry in {limited} s"),
                           retry_after=limited)
        if not module.verify(headers, body, secret):
            self._count(source, "bad_signature", failure="bad or missing signature")
            self.audit.record("integration.bad_signature", None, ip=remote, outcome="denied",
                              details={"source": source, "event": _event_name(module, headers, None)})
            return Outcome(401, error=("unauthorized", "bad or missing signature"))
        payload, problem = parse_payload(headers, body)
        delivery = _delivery_id(module, headers, body, payload)
        event = _event_name(module, headers, payload)
        kept = {k: v for k, v in headers.items() if KEPT_HEADERS.match(k)}
        if problem is not None:
            self._store(source, delivery, event, "invalid", 0, problem, kept, body)
            return Outcome(400, error=("bad_request", problem))
        now = now_ms()
        seen = self.k.webhook(source, "seen")
        with self.r.pipeline(transaction=True) as p:
            p.zremrangebyscore(seen, "-inf", now - SEEN_DAYS * DAY_MS)     # forget ids older than a week
            p.zadd(seen, {delivery: now}, nx=True)
            first_time = p.execute()[1]
        if not first_time:
            self._store(source, delivery, event, "duplicate", 0, "", kept, b"")
            return Outcome(200, {"status": "duplicate", "delivery": delivery})
        try:
            outcome = self._map_and_ingest(source, module, delivery, event, payload, kept, body)
        except BaseException:
            try:                     # not processed: a redelivery must be able to try again
                self.r.zrem(seen, delivery)
            except redis.RedisError:
                pass
            raise
        return outcome

    def replay(self, source: str, entry: dict[str, Any]) -> Outcome:
        """Map and ingest a stored delivery again (after a mapping change, a fix): the events'
        ids are the same, so what was ingested before counts as duplicates."""
        module = source_module(source)
        if module is None:
            return Outcome(404, error=("not_found", f"no source {source[:50]}"))
        headers = CaseInsensitive(entry.get("headers") or {})
        body = entry.get("body_bytes") or b""
        payload, problem = parse_payload(headers, body)
        if problem is not None:
            self._store(source, str(entry["id"]), str(entry.get("event") or ""), "invalid", 0, problem,
                        dict(headers.items()), body, replay=True)
            return Outcome(400, error=("bad_request", problem))
        return self._map_and_ingest(source, module, str(entry["id"]), str(entry.get("event") or ""), payload,
                                    dict(headers.items()), body, replay=True)

    def _map_and_ingest(self, source: str, module: ModuleType, delivery: str, event: str, payload: Any,
                        kept: dict[str, str], body: bytes, replay: bool = False) -> Outcome:
        mapping = self.mapping.get()
        payload = self._enrich(source, module, event, payload)
        try:
            events = module.map_delivery(event, payload, mapping)
        except redis.RedisError:
            raise
        except Exception as exc:     # a payload the mapping cannot read: the sender's 400, never our 500
            message = f"{event or 'delivery'}: {exc}"[:1000]
            if not isinstance(exc, ValueError):
                log.exception("mapping %s %s failed", source, event)
            self._store(source, delivery, event, "invalid", 0, message, kept, body, replay)
            return Outcome(400, error=("bad_request", message))
        self._remember_heads(source, module, event, payload)
        if events is None:
            self._store(source, delivery, event, "unknown", 0, "", kept, body, replay)
            return Outcome(202, {"status": "unknown", "delivery": delivery, "event": event})
        if not events:
            self._store(source, delivery, event, "ignored", 0, "", kept, body, replay)
            return Outcome(202, {"status": "ignored", "delivery": delivery, "event": event})
        result = self.ingestor.ingest(events, origin=f"webhook:{source}")
        error = "; ".join(f"{e.get('id')}: {', '.join(e.get('errors') or [])}" for e in result.errors)[:1000]
        self._store(source, delivery, event, "mapped", len(events), error, kept, body, replay)
        counts = {"accepted": result.accepted, "duplicates": result.duplicates, "rejected": result.rejected}
        return Outcome(202, {"status": "mapped", "delivery": delivery, "event": event, "events": counts,
                             **({"errors": result.errors} if result.errors else {})})

    # --- GitHub commit statuses: which pull request is this commit the head of? ---------------
    def _enrich(self, source: str, module: ModuleType, event: str, payload: Any) -> Any:
        if event != "status" or not isinstance(payload, dict) or payload.get("pull_requests"):
            return payload
        sha = payload.get("sha")
        repo = (payload.get("repository") or {}).get("full_name") if isinstance(payload.get("repository"), dict) else None
        if not isinstance(sha, str) or not sha or not isinstance(repo, str):
            return payload
        raw = self.r.get(self.k.webhook(source, "head", sha=sha[:64]))
        workflows = orjson.loads(raw) if raw else []
        numbers = [{"number": int(w.rsplit("#", 1)[1])} for w in workflows
                   if isinstance(w, str) and w.rsplit("#", 1)[0] == repo and w.rsplit("#", 1)[1].isdigit()]
        return {**payload, "pull_requests": numbers} if numbers else payload

    def _remember_heads(self, source: str, module: ModuleType, event: str, payload: Any) -> None:
        heads = getattr(module, "head_shas", None)
        for sha, workflow in (heads(event, payload) if heads else []):
            key = self.k.webhook(source, "head", sha=sha[:64])
            known = orjson.loads(self.r.get(key) or b"[]")
            if workflow not in known:
                known = (known + [workflow])[-20:]
            self.r.set(key, orjson.dumps(known), ex=HEAD_TTL_S)

    # --- storage, counters, rate limit ----------------------------------------------------------
    def _store(self, source: str, delivery: str, event: str, status: str, n_events: int, error: str,
               headers: dict[str, str], body: bytes, replay: bool = False) -> None:
        now = now_ms()
        entry = {"id": delivery, "event": event, "received_at": fmt_ms(now), "status": status,
                 "events": n_events, "error": error, "headers": orjson.dumps(headers), "body": body,
                 "replay": "1" if replay else ""}
        stats = self.k.webhook(source, "stats")
        with self.r.pipeline(transaction=True) as p:
            p.xadd(self.k.webhook(source, "deliveries"), entry, maxlen=DELIVERIES_MAXLEN, approximate=True)
            if not replay:
                p.hincrby(stats, "received", 1)
                p.hset(stats, "last_delivery_at", fmt_ms(now))
            p.hincrby(stats, status if not replay else "replayed", 1)
            if status == "invalid" or (status == "mapped" and error):
                p.hset(stats, mapping={"last_failure_at": fmt_ms(now), "last_failure": (error or status)[:500]})
            p.execute()

    def _count(self, source: str, counter: str, failure: str | None = None) -> None:
        stats = self.k.webhook(source, "stats")
        with self.r.pipeline(transaction=True) as p:
            p.hincrby(stats, counter, 1)
            if failure:
                p.hset(stats, mapping={"last_failure_at": fmt_ms(now_ms()), "last_failure": failure})
            p.execute()

    def _rate_limited(self, source: str, remote: str) -> int:
        """A fixed one-minute window per source and address in Redis (every web process shares
        it, the embedded Redis included). Returns the seconds to wait, or 0."""
        limit = int(self.settings.webhook_rate_per_min)
        if limit <= 0:
            return 0
        now = now_ms()
        window = now // 60_000
        key = self.k.webhook(source, "rate", addr=remote[:64] or "-", window=window)
        with self.r.pipeline(transaction=True) as p:
            p.incr(key)
            p.expire(key, 120)
            count = p.execute()[0]
        if count <= limit:
            return 0
        if count == limit + 1:
            self._count(source, "rate_limited")
        return max(1, 60 - (now % 60_000) // 1000)

    # --- reading back ---------------------------------------------------------------------------
    def stats(self, source: str) -> dict[str, Any]:
        raw = {_text(k): _text(v) for k, v in self.r.hgetall(self.k.webhook(source, "stats")).items()}
        out: dict[str, Any] = {c: int(raw.get(c, 0)) for c in (*COUNTERS, "replayed")}
        for k in ("last_delivery_at", "last_failure_at", "last_failure"):
            out[k] = raw.get(k) or None
        return out

    def overview(self) -> list[dict[str, Any]]:
        """Per source: configured?, the counters, last delivery and last failure."""
        out = []
        for name in SOURCE_NAMES:
            module = source_module(name)
            out.append({"source": name, "available": module is not None,
                        "configured": module is not None and bool(self.secret(module)),
                        "secret_setting": getattr(module, "SECRET_SETTING", None),
                        "url": f"/api/webhooks/{name}", **self.stats(name)})
        return out

    def deliveries(self, source: str, limit: int = 100, status: str | None = None) -> list[dict[str, Any]]:
        """Newest first, without bodies (their size instead)."""
        out = []
        for entry_id, fields in self.r.xrevrange(self.k.webhook(source, "deliveries"), count=min(limit * 4, 4000)
                                                 if status else limit):
            row = _row(entry_id, fields)
            if status and row["status"] != status:
                continue
            out.append(row)
            if len(out) >= limit:
                break
        return out

    def delivery(self, source: str, ident: str) -> dict[str, Any] | None:
        """A stored delivery with its body, by stream entry id or by delivery id (its newest
        stored copy that has a body)."""
        key = self.k.webhook(source, "deliveries")
        if re.fullmatch(r"\d{1,20}-\d{1,20}", ident):
            found = self.r.xrange(key, ident, ident)
            if found:
                return _row(*found[0], with_body=True)
        for entry_id, fields in self.r.xrevrange(key, count=DELIVERIES_MAXLEN * 2):
            if _text(fields.get(b"id", fields.get("id", b""))) == ident and fields.get(b"body", fields.get("body")):
                return _row(entry_id, fields, with_body=True)
        return None


def _event_name(module: ModuleType, headers: TMapping[str, str], payload: Any) -> str:
    try:
        return str(module.event_name(headers, payload) or "")[:100]
    except Exception:            # a payload the module cannot name: stored under no event name
        return ""


def _delivery_id(module: ModuleType, headers: TMapping[str, str], body: bytes, payload: Any) -> str:
    try:
        found = str(module.delivery_id(headers, body, payload) or "")[:200]
    except Exception:
        found = ""
    return found or "sha256:" + hashlib.sha256(body).hexdigest()


def _row(entry_id: Any, fields: dict[Any, Any], with_body: bool = False) -> dict[str, Any]:
    f = {_text(k): v for k, v in fields.items()}
    body = f.get("body") or b""
    body = body if isinstance(body, bytes) else str(body).encode()
    try:
        headers = orjson.loads(f.get("headers") or b"{}")
    except orjson.JSONDecodeError:
        headers = {}
    row = {"entry": _text(entry_id), "id": _text(f.get("id", "")), "event": _text(f.get("event", "")),
           "received_at": _text(f.get("received_at", "")), "status": _text(f.get("status", "")),
           "events": int(_text(f.get("events", 0)) or 0), "error": _text(f.get("error", "")),
           "replay": bool(_text(f.get("replay", ""))), "bytes": len(body), "headers": headers}
    if with_body:
        row["body_bytes"] = body
    return row


class CaseInsensitive(dict):  # type: ignore[type-arg]
    """Stored headers read back: `get` ignores case, as a request's headers do."""

    def get(self, key: Any, default: Any = None) -> Any:
        low = str(key).lower()
        return next((v for k, v in self.items() if str(k).lower() == low), default)


def parse_payload(headers: TMapping[str, str], body: bytes) -> tuple[Any, str | None]:
    """The JSON payload of a delivery (GitHub's form-encoded `payload=` too), or a problem."""
    ctype = (headers.get("Content-Type") or "").lower()
    text = body
    if ctype.startswith("application/x-www-form-urlencoded"):
        try:
            text = (parse_qs(body.decode("utf-8"), strict_parsing=True).get("payload") or [""])[0].encode()
        except (UnicodeDecodeError, ValueError):
            return None, "body: a form without a payload field"
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, "body: not JSON"
    if not isinstance(payload, dict):
        return None, "body: must be a JSON object"
    return payload, None
