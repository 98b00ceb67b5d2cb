"""Schemathesis against the OpenAPI document that `/api/openapi.json` serves: generated valid
and invalid requests (its examples, coverage and fuzzing phases) to every documented
operation, as an admin (Bearer JWT) and anonymously — no server error, and every answer is
one the document states: its status code, its media type and its schema (the error envelope
of a 400, 401, 403 ...).

Bounded and deterministic (derandomized, a few fuzzed examples per operation, no example
database) so it stays a small part of the suite's run time.
"""
from __future__ import annotations

import json
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from api.openapi import OPENAPI


@schemathesis.serializer("application/x-ndjson")
def _json_lines(_ctx: Any, value: Any) -> bytes:
    """POST /api/events also takes JSON Lines: one generated value per line."""
    items = value if isinstance(value, list) else [value]
    return b"\n".join(json.dumps(v).encode() for v in items)


# The live stream never ends on its own: a generated request would wait for it forever.
schema = schemathesis.openapi.from_dict(OPENAPI).exclude(path="/api/stream")
SETTINGS = settings(max_examples=10, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck), print_blob=False)


def _check(case: Any, app: Any, headers: dict[str, str]) -> None:
    where = f"{case.method} {case.formatted_path} query={case.query!r} body={str(case.body)[:200]!r}"
    response = case.call(app=app.server, headers=headers)
    assert response.status_code < 500, f"{where}: {response.status_code} {response.content[:300]!r}"
    if case.method == "OPTIONS" and response.status_code == 200 and not response.content:
        return                      # Flask's automatic answer: the Allow header, no body
    case.validate_response(response, checks=[status_code_conformance, content_type_conformance,
                                             response_schema_conformance])


def test_sch000_the_tested_document_is_the_served_one(anon: Any) -> None:
    assert anon.get("/api/openapi.json").json == OPENAPI


@schema.parametrize()
@SETTINGS
def test_scm001_no_server_error_as_an_admin(case: Any, app: Any, auth: Any) -> None:
    _check(case, app, auth.bearer("admin"))


@schema.parametrize()
@SETTINGS
def test_scm002_no_server_error_anonymous(case: Any, app: Any) -> None:
    _check(case, app, {})
