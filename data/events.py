"""The event contract of shared/spec/EVENTS.md: request-body parsing and per-event validation.

Pure functions, no Redis. Used by the HTTP ingest, by `replay`, and by the aggregator for
events that producers wrote to the stream directly.
"""
from __future__ import annotations

from typing import Any, Callable

import orjson

from data.timeutil import fmt_ms, parse_iso

CATEGORIES = ("workflow", "system", "user")
STEPS = ("dor_validation", "code_review", "dod_validation", "final_approval")
PRIORITIES = ("low", "normal", "high", "critical")
AGENT_STATUSES = ("active", "idle", "overloaded", "down", "training")
GATE_TYPES = ("workflow.quality_gate_executed", "workflow.quality_gate_passed", "workflow.quality_gate_failed")


class BodyError(ValueError):
    """The request body as a whole cannot be read (not JSON, wrong shape)."""


class TooLarge(ValueError):
    """A size limit was exceeded: answered with HTTP 413."""


Check = Callable[[Any], str | None]


def _str(v: Any) -> str | None:
    return None if isinstance(v, str) and v != "" else "must be a non-empty string"


def _int_ge0(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "must be an integer >= 0"


def _int(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) else "must be an integer"


def _num(v: Any) -> str | None:
    return None if isinstance(v, (int, float)) and not isinstance(v, bool) else "must be a number"


def _num_ge0(v: Any) -> str | None:
    return None if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 else "must be a number >= 0"


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _obj(v: Any) -> str | None:
    return None if isinstance(v, dict) else "must be an object"


def _list(v: Any) -> str | None:
    return None if isinstance(v, list) else "must be a list"


def _load(v: Any) -> str | None:
    return None if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 else "must be a number from 0 to 1"


def _score(v: Any) -> str | None:
    return None if isinstance(v, (int, float)) and not isinstance(v, bool) and 1 <= v <= 5 else "must be a number from 1 to 5"


def _enum(*allowed: str) -> Check:
    def check(v: Any) -> str | None:
        return None if v in allowed else "must be one of " + ", ".join(allowed)
    return check


def _any(v: Any) -> str | None:
    return None


_GATE_FIELDS: dict[str, tuple[bool, Check]] = {
    "workflow_id": (True, _str), "gate_name": (True, _str), "agent_id": (False, _str),
    "execution_time": (False, _num_ge0), "metrics": (False, _obj),
}

# type -> {field: (required, check)}
SCHEMAS: dict[str, dict[str, tuple[bool, Check]]] = {
    "workflow.pr_created": {"workflow_id": (True, _str), "pr_number": (True, _int), "repository": (True, _str),
                            "author": (True, _str), "team": (False, _str), "title": (False, _any),
                            "qms_tracked": (False, _bool)},
    "workflow.step_entered": {"workflow_id": (True, _str), "step": (True, _enum(*STEPS))},
    "workflow.agent_assigned": {"workflow_id": (True, _str), "agent_id": (True, _str), "queue": (False, _str)},
    "workflow.review_started": {"workflow_id": (True, _str), "reviewer": (True, _str)},
    "workflow.review_completed": {"workflow_id": (True, _str), "reviewer": (True, _str),
                                  "verdict": (True, _enum("approved", "changes_requested")),
                                  "cost_usd": (False, _num_ge0)},
    "workflow.quality_gate_executed": {**_GATE_FIELDS, "passed": (True, _bool)},
    "workflow.quality_gate_passed": {**_GATE_FIELDS, "passed": (False, _bool)},
    "workflow.quality_gate_failed": {**_GATE_FIELDS, "passed": (False, _bool)},
    "workflow.defect_found": {"workflow_id": (True, _str), "defect_id": (True, _str),
                              "severity": (True, _enum("critical", "major", "minor")), "category": (False, _str),
                              "stage": (False, _enum("review", "production"))},
    "workflow.defect_resolved": {"defect_id": (True, _str),
                                 "resolution": (True, _enum("fixed", "false_positive", "wont_fix"))},
    "workflow.compliance_checked": {"workflow_id": (True, _str), "policy": (True, _str), "passed": (True, _bool)},
    "workflow.violation_remediated": {"workflow_id": (True, _str), "policy": (True, _str)},
    "workflow.completed": {"workflow_id": (True, _str), "outcome": (True, _enum("merged", "rejected", "abandoned"))},
    "system.agent_status_changed": {"agent_id": (True, _str), "status": (True, _enum(*AGENT_STATUSES)),
                                    "load": (False, _load), "skills": (False, _list)},
    "system.queue_depth_updated": {"queue": (True, _str), "depth": (True, _int_ge0)},
    "system.performance_threshold_exceeded": {"metric": (True, _str), "value": (True, _num), "threshold": (True, _num)},
    "system.error_occurred": {"component": (True, _str), "error_type": (True, _str), "message": (False, _any),
                              "severity": (False, _enum("info", "warning", "critical"))},
    "system.configuration_changed": {"key": (True, _str), "old": (False, _any), "new": (False, _any),
                                     "changed_by": (False, _any)},
    "user.survey_submitted": {"user": (True, _str), "score": (True, _score)},
}


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
    ev_id, schema, raw_ts = obj.get("id"), _FAST_SCHEMAS.get(obj.get("type")), obj.get("timestamp")  # type: ignore[arg-type]
    data, meta, source = obj.get("data"), obj.get("metadata"), obj.get("source")
    if (schema is None or type(ev_id) is not str or not 0 < len(ev_id) <= 128 or type(raw_ts) is not str
            or not raw_ts.endswith("Z") or type(source) is not str or not source or type(data) is not dict
            or type(meta) is not dict or meta.get("priority") not in PRIORITIES):
        return None
    for name, required, check in schema:
        v = data.get(name)
        if v is None:
            if required:
                return None
        elif check(v) is not None:
            return None
    try:
        ts = parse_iso(raw_ts)
    except ValueError:
        return None
    if now_ms is not None and max_future_ms is not None and ts > now_ms + max_future_ms:
        return None
    return ts


def _validate(obj: Any, now_ms: int | None, max_future_ms: int | None) -> tuple[dict[str, Any] | None, int, list[str]]:
    if not isinstance(obj, dict):
        return None, 0, ["event: must be an object"]
    errors: list[str] = []
    ev_id = obj.get("id")
    if ev_id is None:
        errors.append("id: required")
    elif not isinstance(ev_id, str) or not (1 <= len(ev_id) <= 128):
        errors.append("id: must be a string of 1-128 characters")
    ev_type = obj.get("type")
    schema: dict[str, tuple[bool, Check]] | None = None
    if ev_type is None:
        errors.append("type: required")
    elif not isinstance(ev_type, str) or "." not in ev_type or ev_type.split(".", 1)[0] not in CATEGORIES \
            or not ev_type.split(".", 1)[1]:
        errors.append("type: must be category.name with category workflow, system or user")
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
            if now_ms is not None and max_future_ms is not None and ts_ms > now_ms + max_future_ms:
                errors.append("timestamp: more than %d s in the future" % (max_future_ms // 1000))
    source = obj.get("source")
    if source is None:
        errors.append("source: required")
    elif not isinstance(source, str) or not source:
        errors.append("source: must be a non-empty string")
    data = obj.get("data")
    if data is None:
        data = {}
        if schema and any(req for req, _ in schema.values()):
            errors.append("data: required")
            schema = None
    elif not isinstance(data, dict):
        errors.append("data: must be an object")
        schema = None
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
