"""Request validation shared by every REST view and the Dash callback guard: JSON bodies with
a depth cap, pydantic models for query strings and bodies, and JSON error answers.

An ill-typed, unknown or oversized value is a 400 with a message naming the field, never a
traceback: views call `query(Model)` / `body(Model)`; the callback guard validates each
callback input against the schema declared with `secure_callback` (auth/guard.py).

JSON is parsed by orjson (C, no Python recursion; it refuses more than 1,024 levels itself)
and then refused past `MAX_JSON_DEPTH` levels, in one place (`loads`), also installed as
Flask's JSON provider so `request.get_json()` (Dash's dispatcher too) never sees a deeper
document: anything that later recurses over a body (pydantic, the sanitiser, orjson.dumps,
which stops at 255 levels) stays far from its limits.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import orjson
from flask import Flask, Response, request
from flask.json.provider import DefaultJSONProvider
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from werkzeug.exceptions import HTTPException

from data.timeutil import TIMEFRAMES, fmt_ms, now_ms, parse_iso

MAX_JSON_DEPTH = 64          # a Dash callback body nests ~6 levels around its values; events fewer


class InvalidInput(Exception):
    """A request value that does not fit its declared schema (answered 400)."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


def depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a parsed JSON value nests containers more than `limit` levels (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in node if isinstance(child, (dict, list)))
    return False


def loads(raw: bytes | str) -> Any:
    """Parse JSON, refusing (ValueError) malformed text and documents nested too deeply."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise ValueError(f"JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)") from None
        raise ValueError(f"not valid JSON: {exc}") from None
    if depth_exceeds(value):
        raise ValueError(f"JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    return value


class CappedJSONProvider(DefaultJSONProvider):
    """Flask's JSON with `loads` above: every `request.get_json()` gets the depth cap."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


def describe(exc: ValidationError, prefix: str = "") -> tuple[str, list[dict[str, Any]]]:
    """A one-line message naming each bad field, and the errors as JSON-safe dicts."""
    errors = []
    for e in exc.errors(include_url=False, include_context=False, include_input=False):
        where = ".".join(str(p) for p in e["loc"])
        where = f"{prefix}.{where}" if prefix and where else (prefix or where)
        errors.append({"field": where or "body", "message": e["msg"]})
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]), errors


M = TypeVar("M", bound=BaseModel)


def query(model: type[M]) -> M:
    """The query string as `model` (first value of each parameter; unknown names ignored)."""
    try:
        return model.model_validate(request.args.to_dict(flat=True))
    except ValidationError as exc:
        raise InvalidInput(*describe(exc)) from None


def json_body() -> Any:
    """The parsed JSON body (None when empty), or InvalidInput for malformed or too deep JSON."""
    raw = request.get_data(cache=True)
    try:
        return loads(raw) if raw.strip() else None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def body(model: type[M], empty: Any = None) -> M:
    """The JSON body as `model`; an empty body counts as `empty` (None: refused)."""
    value = json_body()
    value = empty if value is None else value
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        message, errors = describe(exc)
        if not isinstance(value, dict):
            message = "the body must be a JSON object"
        raise InvalidInput(message, errors) from None


def error_response(status: int, code: str, message: str, **extra: Any) -> Response:
    """The API's error envelope."""
    payload = {"response": {"status": "error", "timestamp": fmt_ms(now_ms()),
                            "error": {"code": code, "message": message, **extra}}}
    return Response(orjson.dumps(payload), status=status, mimetype="application/json")


_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}    # as docs/API.md lists them


def _answers_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/_dash-update-component", "/health")


def init_validation(server: Flask) -> None:
    """The depth-capped JSON provider, and JSON answers for invalid input and for HTTP errors
    of the API (404, 405, 413 ...), which Werkzeug would otherwise answer as HTML."""
    server.json = CappedJSONProvider(server)

    @server.errorhandler(InvalidInput)
    def _invalid(exc: InvalidInput) -> Response:
        return error_response(400, "bad_request", exc.message, errors=exc.errors)

    @server.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        if not _answers_json() or exc.code is None:
            return exc
        code = _CODES.get(exc.code) or (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code, code, exc.description or exc.name or "error")


# --- field types shared by REST views and callback schemas --------------------------------------

def Text(max_length: int = 200) -> Any:       # noqa: N802 (a type factory reads as a type)
    """A string of at most `max_length` characters."""
    return Annotated[str, StringConstraints(max_length=max_length)]


Name = Text(200)                                             # a user, KPI, repository, team... name
LongText = Text(4000)
Timeframe = Literal[tuple(TIMEFRAMES)]                       # type: ignore[valid-type]
Format = Literal["json", "csv"]
Clicks = Annotated[int, Field(ge=0)]


def _iso(value: str) -> int:
    return parse_iso(value)


IsoTime = Annotated[Text(64), AfterValidator(_iso)]          # -> epoch milliseconds


class Query(BaseModel):
    """Base of query-string models: unknown parameters are ignored, values are bounded."""
    model_config = ConfigDict(extra="ignore", str_max_length=2000)


class Body(BaseModel):
    """Base of JSON body models: unknown fields are refused."""
    model_config = ConfigDict(extra="forbid", str_max_length=10_000)


class ViewQuery(Query):
    """A window and an optional repository or team filter (KPIs, widgets)."""
    timeframe: Timeframe = "24h"
    repository: Name | None = None
    team: Name | None = None
