"""The event contract of shared/spec/EVENTS.md: request-body parsing and per-event validation.

Pure functions, no Redis. Used by the HTTP ingest, by `replay`, and by the aggregator for
events that producers wrote to the stream directly.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable

import orjson

from data.timeutil import fmt_ms, parse_iso

CATEGORIES = ("workflow", "system", "user")
STEPS = ("dor_validation", "code_review", "dod_validation", "final_approval")
PRIORITIES = ("low", "normal", "high", "critical")
AGENT_STATUSES = ("active", "idle", "overloaded", "down", "training")
GATE_TYPES = ("workflow.quality_gate_executed", "workflow.quality_gate_passed", "workflow.quality_gate_failed")
REVIEWER_KINDS = ("human", "ai", "bot")           # reviewer_kind of review events
FINDER_KINDS = (*REVIEWER_KINDS, "gate")          # found_by_kind of defect_found
MAX_SHA = 64                                      # head_sha: a git object id (40 hex, 64 for SHA-256)


class BodyError(ValueError):
    """The request body as a whole cannot be read (not JSON, wrong shape)."""


class TooLarge(ValueError):
    """A size limit was exceeded: answered with HTTP 413."""


Check = Callable[[Any], str | None]

# Bounds of the contract (docs/EVENTS.md). They keep every rollup sum far from the 64-bit
# range Redis counts in, so no single event can make another event's write fail.
MAX_NAME = 256                 # ids and names
MAX_TEXT = 4096                # title, message
MAX_COST_USD = 1_000_000
MAX_EXECUTION_S = 604_800      # a week
MAX_DEPTH = 10_000_000
MAX_PR_NUMBER = 2_147_483_647
MAX_ABS_VALUE = 1e12           # performance_threshold_exceeded value / threshold
MIN_TIMESTAMP_MS = 946_684_800_000   # 2000-01-01T00:00:00Z
MAX_NESTING = 32               # objects/lists inside an event (metrics, tags, old/new values)
_INT64 = 1 << 63
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _is_num(v: Any) -> bool:
    t = type(v)
    return t is int or (t is float and math.isfinite(v))


def _name(v: Any) -> str | None:
    if type(v) is not str or v == "":
        return "must be a non-empty string"
    if len(v) > MAX_NAME:
        return f"must be at most {MAX_NAME} characters"
    if not v.isprintable() and _CONTROL.search(v):    # isprintable(): a fast "no control characters"
        return "must not contain control characters"
    return None


def _text(v: Any) -> str | None:
    if type(v) is not str:
        return "must be a string"
    return None if len(v) <= MAX_TEXT else f"must be at most {MAX_TEXT} characters"


def _int_range(lo: int, hi: int) -> Check:
    def check(v: Any) -> str | None:
        return None if type(v) is int and lo <= v <= hi else f"must be an integer from {lo:,} to {hi:,}"
    return check


def _num_range(lo: float, hi: float, what: str) -> Check:
    def check(v: Any) -> str | None:
        return None if _is_num(v) and lo <= v <= hi else f"must be a finite number from {what}"
    return check


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _obj(v: Any) -> str | None:
    return None if isinstance(v, dict) else "must be an object"


def _names(v: Any) -> str | None:
    if not isinstance(v, list):
        return "must be a list"
    for item in v:
        problem = _name(item)
        if problem:
            return "items " + problem
    return None


def _enum(*allowed: str) -> Check:
    def check(v: Any) -> str | None:
        return None if v in allowed else "must be one of " + ", ".join(allowed)
    return check


def _any(v: Any) -> str | None:
    return None


def _sha(v: Any) -> str | None:
    """A commit id: 4 to 64 hexadecimal digits (an abbreviated or full SHA-1 / SHA-256)."""
    if type(v) is not str or not 4 <= len(v) <= MAX_SHA or v.strip("0123456789abcdefABCDEF"):
        return f"must be a commit id of 4 to {MAX_SHA} hexadecimal digits"
    return None


_load = _num_range(0, 1, "0 to 1")
_score = _num_range(1, 5, "1 to 5")
_value = _num_range(-MAX_ABS_VALUE, MAX_ABS_VALUE, "-1e12 to 1e12")

_GATE_FIELDS: dict[str, tuple[bool, Check]] = {
    "workflow_id": (True, _name), "gate_name": (True, _name), "agent_id": (False, _name),
    "execution_time": (False, _num_range(0, MAX_EXECUTION_S, "0 to 604,800 (seconds)")), "metrics": (False, _obj),
    "head_sha": (False, _sha),
}

# type -> {field: (required, check)}
SCHEMAS: dict[str, dict[str, tuple[bool, Check]]] = {
    "workflow.pr_created": {"workflow_id": (True, _name), "pr_number": (True, _int_range(1, MAX_PR_NUMBER)),
                            "repository": (True, _name), "author": (True, _name), "team": (False, _name),
                            "title": (False, _text), "qms_tracked": (False, _bool)},
    "workflow.step_entered": {"workflow_id": (True, _name), "step": (True, _enum(*STEPS))},
    "workflow.agent_assigned": {"workflow_id": (True, _name), "agent_id": (True, _name), "queue": (False, _name)},
    "workflow.review_started": {"workflow_id": (True, _name), "reviewer": (True, _name),
                                "reviewer_kind": (False, _enum(*REVIEWER_KINDS))},
    "workflow.review_completed": {"workflow_id": (True, _name), "reviewer": (True, _name),
                                  "reviewer_kind": (False, _enum(*REVIEWER_KINDS)),
                                  "verdict": (True, _enum("approved", "changes_requested")),
                                  "cost_usd": (False, _num_range(0, MAX_COST_USD, "0 to 1,000,000"))},
    "workflow.quality_gate_executed": {**_GATE_FIELDS, "passed": (True, _bool)},
    "workflow.quality_gate_passed": {**_GATE_FIELDS, "passed": (False, _bool)},
    "workflow.quality_gate_failed": {**_GATE_FIELDS, "passed": (False, _bool)},
    "workflow.defect_found": {"workflow_id": (True, _name), "defect_id": (True, _name),
                              "severity": (True, _enum("critical", "major", "minor")), "category": (False, _name),
                              "stage": (False, _enum("review", "production")), "found_by": (False, _name),
                              "found_by_kind": (False, _enum(*FINDER_KINDS))},
    "workflow.defect_resolved": {"defect_id": (True, _name),
                                 "resolution": (True, _enum("fixed", "false_positive", "wont_fix"))},
    "workflow.compliance_checked": {"workflow_id": (True, _name), "policy": (True, _name), "passed": (True, _bool)},
    "workflow.violation_remediated": {"workflow_id": (True, _name), "policy": (True, _name)},
    "workflow.completed": {"workflow_id": (True, _name), "outcome": (True, _enum("merged", "rejected", "abandoned"))},
    "system.agent_status_changed": {"agent_id": (True, _name), "status": (True, _enum(*AGENT_STATUSES)),
                                    "load": (False, _load), "skills": (False, _names)},
    "system.queue_depth_updated": {"queue": (True, _name), "depth": (True, _int_range(0, MAX_DEPTH))},
    "system.performance_threshold_exceeded": {"metric": (True, _name), "value": (True, _value),
                                              "threshold": (True, _value)},
    "system.error_occurred": {"component": (True, _name), "error_type": (True, _name), "message": (False, _text),
                              "severity": (False, _enum("info", "warning", "critical"))},
    "system.configuration_changed": {"key": (True, _name), "old": (False, _any), "new": (False, _any),
                                     "changed_by": (False, _name)},
    "user.survey_submitted": {"user": (True, _name), "score": (True, _score)},
}


def _plain(v: Any, path: str, depth: int = 0) -> str | None:
    """Any JSON value an event may carry: finite numbers, 64-bit integers, bounded nesting.
    Returns "path: problem" or None."""
    t = type(v)
    if t is str or t is bool or v is None:
        return None
    if t is int:
        return None if -_INT64 <= v < _INT64 else f"{path}: must be a 64-bit integer"
    if t is float:
        return None if math.isfinite(v) else f"{path}: must be a finite number"
    if depth >= MAX_NESTING:
        return f"{path}: nested deeper than {MAX_NESTING} levels"
    if t is dict:
        for k, item in v.items():
            if type(k) is not str:
                return f"{path}: object keys must be strings"
            problem = _plain(item, f"{path}.{k}", depth + 1)
            if problem:
                return problem
        return None
    if t is list:
        for n, item in enumerate(v):
            problem = _plain(item, f"{path}[{n}]", depth + 1)
            if problem:
                return problem
        return None
    return f"{path}: must be a JSON value"


_ENVELOPE = frozenset({"id", "type", "timestamp", "source", "data"})


# Per type, the fields whose check leaves nothing to look at (not `metrics`, `old`, `new`).
_FULLY_CHECKED = {t: frozenset(n for n, (_, check) in schema.items() if check not in (_any, _obj))
                  for t, schema in SCHEMAS.items()}


def _unchecked(obj: dict[str, Any], data: dict[str, Any], checked: frozenset[str]) -> str | None:
    """The first problem in what no schema field checks (unknown fields, nested objects such as
    `metrics`, metadata): every number finite, integers 64-bit, nesting bounded."""
    for name, v in data.items():
        t = type(v)
        if t is str or t is bool or name in checked:
            continue
        problem = _plain(v, "data." + name, 1)
        if problem:
            return problem
    for name, v in obj.items():
        if name in _ENVELOPE:
            continue
        if type(v) is dict:          # metadata: mostly strings
            for k, item in v.items():
                if type(item) is not str:
                    problem = _plain(item, f"{name}.{k}", 1)
                    if problem:
                        return problem
        elif type(v) is not str:
            problem = _plain(v, name, 0)
            if problem:
                return problem
    return None


def validate(obj: Any, now_ms: int | None = None, max_future_ms: int | None = None) -> tuple[dict[str, Any] | None, int, list[str]]:
    """Check one bare event. Returns (normalised event, timestamp ms, errors).

    The normalised event has its timestamp in UTC ('Z') and a default priority; unknown
    extra fields are kept. On errors the event is None.
    """
    fast = _fast_valid(obj, now_ms, max_future_ms)
    if fast is not None:
        return obj, fast, []
    return _validate(obj, now_ms, max_future_ms)


_FAST_SCHEMAS = {t: tuple((name, req, check) for name, (req, check) in schema.items()) for t, schema in SCHEMAS.items()}


def _fast_valid(obj: Any, now_ms: int | None, max_future_ms: int | None) -> int | None:
    """The common case in one pass: a known type, every field right, already normalised.
    Returns the timestamp, or None to take the full path (which names every problem)."""
    if type(obj) is not dict:
        return None
    ev_id, ev_type, raw_ts = obj.get("id"), obj.get("type"), obj.get("timestamp")
    schema = _FAST_SCHEMAS.get(ev_type)  # type: ignore[arg-type]
    data, meta, source = obj.get("data"), obj.get("metadata"), obj.get("source")
    if (schema is None or type(ev_id) is not str or not 0 < len(ev_id) <= 128 or _CONTROL.search(ev_id)
            or type(raw_ts) is not str or not raw_ts.endswith("Z") or _name(source) is not None
            or type(data) is not dict or type(meta) is not dict or meta.get("priority") not in PRIORITIES):
        return None
    for name, required, check in schema:
        v = data.get(name)
        if v is None:
            if required:
                return None
        elif check(v) is not None:
            return None
    if _unchecked(obj, data, _FULLY_CHECKED[ev_type]) is not None:  # type: ignore[index]
        return None
    try:
        ts = parse_iso(raw_ts)
    except ValueError:
        return None
    if ts < MIN_TIMESTAMP_MS or (now_ms is not None and max_future_ms is not None and ts > now_ms + max_future_ms):
        return None
    return ts


def _validate(obj: Any, now_ms: int | None, max_future_ms: int | None) -> tuple[dict[str, Any] | None, int, list[str]]:
    if not isinstance(obj, dict):
        return None, 0, ["event: must be an object"]
    errors: list[str] = []
    ev_id = obj.get("id")
    if ev_id is None:
        errors.append("id: required")
    elif not isinstance(ev_id, str) or not (1 <= len(ev_id) <= 128) or _CONTROL.search(ev_id):
        errors.append("id: must be a string of 1-128 characters without control characters")
    ev_type = obj.get("type")
    schema: dict[str, tuple[bool, Check]] | None = None
    if ev_type is None:
        errors.append("type: required")
    elif not isinstance(ev_type, str) or "." not in ev_type or ev_type.split(".", 1)[0] not in CATEGORIES \
            or not ev_type.split(".", 1)[1]:
        errors.append("type: must be category.name with category workflow, system or user")
    elif _name(ev_type):
        errors.append(f"type: {_name(ev_type)}")
    else:
        schema = SCHEMAS.get(ev_type)
    ts_ms = 0
    raw_ts = obj.get("timestamp")
    if raw_ts is None:
        errors.append("timestamp: required")
    else:
        try:
            ts_ms = parse_iso(raw_ts)
        except ValueError as exc:
            errors.append(f"timestamp: {exc}")
        else:
            if ts_ms < MIN_TIMESTAMP_MS:
                errors.append("timestamp: before 2000-01-01")
            elif now_ms is not None and max_future_ms is not None and ts_ms > now_ms + max_future_ms:
                errors.append("timestamp: more than %d s in the future" % (max_future_ms // 1000))
    source = obj.get("source")
    if source is None:
        errors.append("source: required")
    elif _name(source):
        errors.append(f"source: {_name(source)}")
    data = obj.get("data")
    data_ok = True
    if data is None:
        data = {}
        if schema and any(req for req, _ in schema.values()):
            errors.append("data: required")
            schema = None
    elif not isinstance(data, dict):
        errors.append("data: must be an object")
        schema = None
        data_ok = False
    if schema:
        for name, (required, check) in schema.items():
            if name not in data or data[name] is None:
                if required:
                    errors.append(f"data.{name}: required")
                continue
            problem = check(data[name])
            if problem:
                errors.append(f"data.{name}: {problem}")
    meta = obj.get("metadata")
    if meta is not None:
        if not isinstance(meta, dict):
            errors.append("metadata: must be an object")
        elif "priority" in meta and meta["priority"] not in PRIORITIES:
            errors.append("metadata.priority: must be one of " + ", ".join(PRIORITIES))
    if data_ok and isinstance(meta, (dict, type(None))):
        problem = _unchecked(obj, data, _FULLY_CHECKED[ev_type] if schema else frozenset())
        if problem:
            errors.append(problem)
    if errors:
        return None, ts_ms, errors
    # Normalise only what needs it: most producers already send UTC 'Z' and a priority.
    event = obj
    if not raw_ts.endswith("Z"):
        event = dict(obj)
        event["timestamp"] = fmt_ms(ts_ms)
    if data is not obj.get("data") or meta is None or "priority" not in meta:
        event = dict(event)
        event["data"] = data
        if meta is None or "priority" not in meta:
            event["metadata"] = {**(meta or {}), "priority": "normal"}
    return event, ts_ms, []


def unwrap(item: Any) -> Any:
    """`{"event": {...}}` -> the bare event; anything else unchanged."""
    if isinstance(item, dict) and len(item) == 1 and isinstance(item.get("event"), dict):
        return item["event"]
    return item


def parse_body(body: bytes, max_events: int, max_event_bytes: int) -> list[Any]:
    """Split a request body in any of the four accepted forms into raw items.

    Raises BodyError when the body cannot be read at all and TooLarge past a limit. An
    item that is not valid JSON on its own (JSON Lines) is returned as a `_BadLine`.
    """
    text = body.strip()
    if not text:
        raise BodyError("empty body: send one event, {\"events\": [...]} or JSON Lines")
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        doc = _NOT_JSON
    if doc is _NOT_JSON:
        lines = [ln for ln in text.split(b"\n") if ln.strip()]
        if len(lines) < 2:
            raise BodyError("body is not JSON (nor JSON Lines)")
        if len(lines) > max_events:
            raise TooLarge(f"{len(lines)} events in one request; the limit is {max_events}")
        items: list[Any] = []
        for n, ln in enumerate(lines):
            if len(ln) > max_event_bytes:
                raise TooLarge(f"event at index {n} is larger than {max_event_bytes} bytes")
            try:
                items.append(unwrap(orjson.loads(ln)))
            except orjson.JSONDecodeError as exc:
                items.append(_BadLine(f"line is not JSON: {exc.args[0] if exc.args else exc}", ln.decode(errors="replace")))
        return items
    if isinstance(doc, dict) and "events" in doc and len(doc) == 1:
        batch = doc["events"]
        if not isinstance(batch, list):
            raise BodyError("events: must be a list")
        if len(batch) > max_events:
            raise TooLarge(f"{len(batch)} events in one request; the limit is {max_events}")
        items = [unwrap(x) for x in batch]
    elif isinstance(doc, dict):
        items = [unwrap(doc)]
    else:
        raise BodyError("body must be an event object, {\"events\": [...]}, or JSON Lines")
    if len(items) == 1:
        if len(text) > max_event_bytes:
            raise TooLarge(f"event larger than {max_event_bytes} bytes")
    else:
        for n, item in enumerate(items):
            if len(orjson.dumps(item)) > max_event_bytes:
                raise TooLarge(f"event at index {n} is larger than {max_event_bytes} bytes")
    return items


class _BadLine:
    """A JSON Lines entry (or oversized item) that is rejected before validation."""

    def __init__(self, reason: str, raw: Any = None) -> None:
        self.reason = reason
        self.raw = raw


_NOT_JSON = object()


def check_item(item: Any, now_ms: int, max_future_ms: int) -> tuple[dict[str, Any] | None, int, list[str]]:
    """validate() that also understands items parse_body already rejected."""
    if isinstance(item, _BadLine):
        return None, 0, [item.reason]
    return validate(item, now_ms, max_future_ms)


def item_id(item: Any) -> str | None:
    if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]:
        return item["id"][:128]
    return None


def item_raw(item: Any) -> Any:
    return item.raw if isinstance(item, _BadLine) else item
