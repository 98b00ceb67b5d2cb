"""The OpenAPI 3 description of the HTTP API (served at /api/openapi.json).

Parameter and body schemas say what the views' pydantic models accept (api/validation.py);
the error answers every operation can give (400 invalid input, 401, 403, 413, 503) are added
to each operation by `document_errors`, in one place, so none is left out.
"""
from __future__ import annotations

from typing import Any


_TF = {"name": "timeframe", "in": "query", "schema": {"type": "string", "enum": ["1h", "4h", "24h", "7d", "30d"],
                                                       "default": "24h"}}
_END = {"name": "end", "in": "query", "schema": {"type": "string", "format": "date-time"},
        "description": "window end, ISO 8601 with a zone; default now"}
_NAME = {"type": "string", "maxLength": 200}
_USER = {"name": "user", "in": "query", "schema": _NAME, "description": "developer metrics: the user"}
_SCOPE = [{"name": dim, "in": "query", "schema": _NAME,
           "description": f"filter by one {dim} (not both); KPIs that cannot be filtered say \"filtered\": false"}
          for dim in ("repository", "team")]
_WIDGET = {"type": "string", "minLength": 1, "maxLength": 64}    # a widget id (404 when no dashboard one may see has it)
_ERR = {"description": "error envelope", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_ENV = {"description": "success envelope", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}}
# Endpoints with ?format=: the envelope, or the export itself.
_ENV_OR_EXPORT = {"description": "success envelope; with format=csv or jsonl the export (a download)",
                  "content": {**_ENV["content"], "text/csv": {"schema": {"type": "string"}},
                              "application/x-ndjson": {"schema": {"type": "string"}}}}


def _kpi_path(summary: str, extra: list[dict[str, Any]], ok: dict[str, Any] = _ENV) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": [
        {"name": "kpi_id", "in": "path", "required": True, "schema": {"type": "string"}}, _TF, _END, _USER, *extra],
        "responses": {"200": ok, "400": _ERR, "404": _ERR}}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "QMS Real-time Dashboard API", "version": "0.1.0",
             "description": "Events in, KPIs out. Reference: docs/API.md, docs/EVENTS.md and docs/METRICS.md in the "
                            "repository."},
    "paths": {
        "/api/events": {"post": {
            "summary": "Ingest one event, a batch {\"events\": [...]}, or JSON Lines",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}},
                                                          "application/x-ndjson": {"schema": {"type": "string"}}}},
            "responses": {"202": {"description": "at least one event accepted or duplicate",
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestResult"}}}},
                          "400": {"description": "nothing valid", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestResult"}}}},
                          "413": _ERR}}},
        "/api/dashboard/{name}": {"get": {
            "summary": "Every KPI of a dashboard with previous value and trend",
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": ["executive", "operational", "qa", "developer"]}},
                           _TF, _END, _USER, *_SCOPE, {"name": "metrics", "in": "query",
                                                         "schema": {"type": "string", "maxLength": 4000},
                                                         "description": "comma-separated KPI ids"}],
            "responses": {"200": _ENV, "400": _ERR}}},
        "/api/metrics/{kpi_id}/series": _kpi_path("A KPI as a time series",
                                                  [{"name": "points", "in": "query",
                                                    "schema": {"type": "integer", "minimum": 1}},
                                                   *_SCOPE]),
        "/api/metrics/{kpi_id}/events": _kpi_path(
            "Exactly the events behind a KPI, newest first: each row's role, counts that reproduce the value over "
            "the whole window, a cursor for the next page; csv/jsonl (export:reports) stream the whole window", [
                {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv", "jsonl"]}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000,
                                                            "default": 100}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 10000000},
                 "description": "rows to skip (the page's grid); with cursor, after it"},
                {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 400},
                 "description": "next_cursor of the previous page"},
                {"name": "gate", "in": "query", "schema": _NAME, "description": "gate KPIs: one gate's runs"},
                {"name": "agent", "in": "query", "schema": _NAME, "description": "gate and agent KPIs: one agent"},
                *_SCOPE], _ENV_OR_EXPORT),
        "/api/state/{kind}": {"get": {"summary": "Current agents, queues, active workflows, open defects or violations",
                                      "parameters": [{"name": "kind", "in": "path", "required": True, "schema": {
                                          "type": "string", "enum": ["agents", "queues", "active", "defects", "violations", "reviews"]}}],
                                      "responses": {"200": _ENV, "404": _ERR}}},
        "/api/deadletter": {"get": {"summary": "Rejected events with their reasons, newest first",
                                    "responses": {"200": _ENV}}},
        "/health": {"get": {"summary": "Health checks", "responses": {"200": {"description": "healthy"},
                                                                       "503": {"description": "degraded"}}}},
        "/api/widgets/{widget_id}/data": {"get": {
            "summary": "The rows a dashboard widget shows (JSON, or CSV with export:reports)",
            "parameters": [{"name": "widget_id", "in": "path", "required": True, "schema": _WIDGET},
                           _TF, *_SCOPE, {"name": "gate", "in": "query", "schema": _NAME},
                           {"name": "agent", "in": "query", "schema": _NAME},
                           {"name": "format", "in": "query", "schema": {"type": "string",
                                                                         "enum": ["json", "csv", "jsonl"]}}],
            "responses": {"200": _ENV_OR_EXPORT, "400": _ERR, "403": _ERR, "404": _ERR}}},
        "/api/dashboards/{dash_id}/widgets/{widget_id}/data": {"get": {
            "summary": "The rows a widget of any dashboard shows (JSON, or CSV/JSON Lines with export:reports)",
            "parameters": [{"name": "dash_id", "in": "path", "required": True, "schema": _NAME},
                           {"name": "widget_id", "in": "path", "required": True, "schema": _NAME},
                           _TF, *_SCOPE, {"name": "gate", "in": "query", "schema": _NAME},
                           {"name": "agent", "in": "query", "schema": _NAME},
                           {"name": "format", "in": "query", "schema": {"type": "string",
                                                                         "enum": ["json", "csv", "jsonl"]}}],
            "responses": {"200": _ENV_OR_EXPORT, "400": _ERR, "403": _ERR, "404": _ERR}}},
        "/api/widgets/{widget_id}/config": {"put": {
            "summary": "Personal widget settings: {\"hidden\": bool}",
            "parameters": [{"name": "widget_id", "in": "path", "required": True, "schema": _WIDGET}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"hidden": {"type": "boolean"}}, "additionalProperties": False}}}},
            "responses": {"200": _ENV, "400": _ERR, "403": _ERR, "404": _ERR}}},
        "/api/alerts": {"get": {"summary": "Alert instances (pending, firing, acknowledged, resolved, no_data)",
                                "parameters": [
                                    {"name": "severity", "in": "query", "schema": {"type": "string",
                                                                                  "enum": ["info", "warning", "critical"]}},
                                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": [
                                        "pending", "firing", "acknowledged", "resolved", "no_data"]}}],
                                "responses": {"200": _ENV, "400": _ERR}}},
        "/api/alerts/history": {"get": {"summary": "Transitions and acknowledgements, newest first",
                                        "parameters": [{"name": "rule", "in": "query", "schema": _NAME},
                                                       {"name": "limit", "in": "query", "schema": {
                                                           "type": "integer", "minimum": 1, "maximum": 2000}}],
                                        "responses": {"200": _ENV}}},
        "/api/alerts/{alert_id}/acknowledge": {"post": {
            "summary": "Acknowledge a firing alert (manage:alerts, or acknowledge:quality_alerts for quality alerts)",
            "parameters": [{"name": "alert_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                "comment": {"type": "string", "maxLength": 1000}}, "additionalProperties": False}}}},
            "responses": {"200": _ENV, "403": _ERR, "404": _ERR, "409": _ERR}}},
        "/api/auth/token": {"post": {
            "summary": "A JWT for a user name and password",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["username", "password"], "additionalProperties": False, "properties": {
                    "username": {"type": "string", "minLength": 1, "maxLength": 64},
                    "password": {"type": "string", "maxLength": 1024}}}}}},
            "responses": {"200": {"description": "{access_token, token_type, expires_in}"}, "401": _ERR, "429": _ERR}}},
        "/api/export/{name}.csv": {"get": {
            "summary": "A dashboard's KPIs as CSV (export:reports)",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}, _TF, _END,
                           _USER, *_SCOPE],
            "responses": {"200": {"description": "text/csv"}, "403": _ERR}}},
        "/api/audit": {"get": {
            "summary": "The audit log, newest first (view:audit_logs)",
            "parameters": [*({"name": n, "in": "query", "schema": _NAME} for n in ("user", "action")),
                           *({"name": n, "in": "query", "schema": {"type": "string", "format": "date-time"}}
                             for n in ("start", "end")),
                           {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                       "maximum": 10000, "default": 500}},
                           {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}}],
            "responses": {"200": _ENV_OR_EXPORT, "400": _ERR}}},
        "/api/tokens": {"get": {"summary": "API tokens (manage:users)", "responses": {"200": _ENV}},
                        "post": {"summary": "Create an API token; the secret is shown once",
                                 "requestBody": {"required": True, "content": {"application/json": {"schema": {
                                     "type": "object", "required": ["name", "roles"], "additionalProperties": False,
                                     "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100},
                                                    "roles": {"type": "array", "minItems": 1, "maxItems": 20,
                                                              "items": {"type": "string", "maxLength": 200}}}}}}},
                                 "responses": {"201": _ENV, "400": _ERR}}},
        "/api/tokens/{token_id}": {"delete": {
            "summary": "Revoke an API token",
            "parameters": [{"name": "token_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _ENV, "404": _ERR}}},
        "/api/entities/workflow/{workflow_id}": {"get": {
            "summary": "A workflow (pull request): its steps with the time in each, SLA status (met, missed, open with "
                       "time left), cost, gates, reviews, defects with their resolutions, compliance checks and every "
                       "event, sanitised for the caller (a dashboard permission that lists workflows)",
            "parameters": [{"name": "workflow_id", "in": "path", "required": True,
                            "schema": {"type": "string", "maxLength": 256}}],
            "responses": {"200": _ENV, "401": _ERR, "403": _ERR, "404": _ERR, "503": _ERR}}},
        "/api/entities/agent/{agent_id}": {"get": {
            "summary": "An agent in a window: status and load over time, time in each status, gate runs, reviews, "
                       "assignments, defects it found and how many were resolved as false positives",
            "parameters": [{"name": "agent_id", "in": "path", "required": True,
                            "schema": {"type": "string", "maxLength": 256}}, _TF, _END,
                           {"name": "limit", "in": "query", "description": "rows per list, newest first (counts "
                                                                           "always cover the whole window)",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 5000, "default": 500}}],
            "responses": {"200": _ENV, "400": _ERR, "401": _ERR, "403": _ERR, "404": _ERR, "503": _ERR}}},
        "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"}}}},
        "/api/stream": {"get": {"summary": "Server-Sent Events: the /ws messages of the channels asked for",
                                "parameters": [{"name": "channels", "in": "query", "required": True,
                                                "schema": {"type": "string"}, "description": "comma-separated"},
                                               {"name": "token", "in": "query", "schema": {"type": "string"}}],
                                "responses": {"200": {"description": "text/event-stream"}, "403": _ERR}}},
    },
    "components": {"schemas": {
        "Envelope": {"type": "object", "properties": {"response": {"type": "object", "properties": {
            "status": {"type": "string"}, "timestamp": {"type": "string"}, "data": {"type": "object"},
            "metadata": {"type": "object"}}}}},
        "Error": {"type": "object", "properties": {"response": {"type": "object", "properties": {
            "status": {"type": "string", "enum": ["error"]}, "error": {"type": "object", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}}}}}}},
        "IngestResult": {"type": "object", "properties": {
            "accepted": {"type": "integer"}, "duplicates": {"type": "integer"}, "rejected": {"type": "integer"},
            "errors": {"type": "array", "items": {"type": "object", "properties": {
                "index": {"type": "integer"}, "id": {"type": "string", "nullable": True},
                "errors": {"type": "array", "items": {"type": "string"}}}}}}},
    }},
}


# --- dashboards as data (api/dashboards.py) --------------------------------------------------
_DASH_ID = {"name": "dash_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 200}}
_SAVE_SCOPE = {"name": "scope", "in": "query", "schema": {"type": "string", "enum": ["personal", "shared"],
                                                          "default": "personal"},
               "description": "personal: your copy (update:personal_settings); shared: the definition everyone "
                              "it is shared with sees (manage:dashboards)"}
_SCOPE_OPT = {"name": "scope", "in": "query", "schema": {"type": "string", "enum": ["personal", "shared"]},
              "description": "which one: your personal copy, or the shared definition (default: what you see)"}
_DEFINITION = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "a dashboard definition (docs/API.md, \"Dashboards\"); the server validates "
                                     "it and answers 422 naming the widget and the field",
    "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "widgets": {"type": "array"}}}}}}
_INVALID = {"description": "the definition does not validate: `error.errors` lists {widget, field, message}",
            "content": _ERR["content"]}
_DASH_PATHS: dict[str, Any] = {
    "/api/dashboards": {
        "get": {"summary": "The dashboards you may see, starred first (?q= searches titles and tags)",
                "parameters": [{"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}}],
                "responses": {"200": _ENV}},
        "post": {"summary": "Create a dashboard: personal (update:personal_settings) or shared (manage:dashboards); "
                           "its id, or the next free id-2, id-3 ...",
                 "parameters": [_SAVE_SCOPE], "requestBody": _DEFINITION,
                 "responses": {"201": _ENV, "403": _ERR, "409": _ERR, "422": _INVALID}}},
    "/api/dashboards/import": {"post": {
        "summary": "Import an exported definition as your personal dashboard (a new id if taken)",
        "requestBody": _DEFINITION, "responses": {"201": _ENV, "403": _ERR, "409": _ERR, "422": _INVALID}}},
    "/api/dashboards/{dash_id}": {
        "get": {"summary": "A definition: your personal copy if you have one, else the shared one; with kind "
                           "(provisioned, shared, personal) and personal_copy",
                "parameters": [_DASH_ID], "responses": {"200": _ENV, "404": _ERR}},
        "put": {"summary": "Save your personal copy, or (?scope=shared) the shared definition",
                "parameters": [_DASH_ID, _SAVE_SCOPE], "requestBody": _DEFINITION,
                "responses": {"200": _ENV, "403": _ERR, "404": _ERR, "422": _INVALID}},
        "delete": {"summary": "Delete your dashboard or a shared one; ?scope=personal drops your personal copy, "
                              "?scope=shared puts a provisioned dashboard's file definition back",
                   "parameters": [_DASH_ID, _SCOPE_OPT],
                   "responses": {"200": _ENV, "403": _ERR, "404": _ERR, "409": _ERR}}},
    "/api/dashboards/{dash_id}/versions": {"get": {
        "summary": "Saved versions, newest first: n, at, by, summary of what changed",
        "parameters": [_DASH_ID, _SCOPE_OPT], "responses": {"200": _ENV, "404": _ERR}}},
    "/api/dashboards/{dash_id}/versions/{n}/restore": {"post": {
        "summary": "Save version n again, as a new version",
        "parameters": [_DASH_ID, {"name": "n", "in": "path", "required": True,
                                  "schema": {"type": "integer", "minimum": 0}}, _SCOPE_OPT],
        "responses": {"200": _ENV, "403": _ERR, "404": _ERR, "422": _INVALID}}},
    "/api/dashboards/{dash_id}/star": {
        "put": {"summary": "Star a dashboard (yours only)", "parameters": [_DASH_ID],
                "responses": {"200": _ENV, "404": _ERR}},
        "delete": {"summary": "Unstar a dashboard", "parameters": [_DASH_ID],
                   "responses": {"200": _ENV, "404": _ERR}}},
    "/api/dashboards/{dash_id}/export": {"get": {
        "summary": "The definition as a JSON file to import elsewhere (without owner and visibility)",
        "parameters": [_DASH_ID],
        "responses": {"200": {"description": "the definition (a download)",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      "404": _ERR}}},
}
OPENAPI["paths"].update(_DASH_PATHS)

# --- webhook receivers and the integrations page's twins (api/webhooks.py) ---------------------
_SOURCE = {"name": "source", "in": "path", "required": True,
           "schema": {"type": "string", "enum": ["github", "gitlab", "sonarqube"]}}
_DELIVERY = {"description": "what became of the delivery: status mapped (events: accepted, duplicates, rejected), "
                            "unknown (a kind of delivery not mapped; stored), ignored (nothing to map), duplicate",
             "content": {"application/json": {"schema": {"type": "object", "properties": {
                 "status": {"type": "string", "enum": ["mapped", "unknown", "ignored", "duplicate"]},
                 "delivery": {"type": "string"}, "event": {"type": "string"},
                 "events": {"type": "object"}}}}}}
_WEBHOOK_PATHS: dict[str, Any] = {
    "/api/webhooks/{source}": {"post": {
        "summary": "A webhook delivery from GitHub, GitLab or SonarQube, authenticated by the source's secret "
                   "(X-Hub-Signature-256, X-Gitlab-Token, X-Sonar-Webhook-HMAC-SHA256), no user credentials; "
                   "docs/INTEGRATIONS.md",
        "parameters": [_SOURCE],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
        "responses": {"200": _DELIVERY, "202": _DELIVERY,
                      "401": {**_ERR, "description": "bad or missing signature (audited)"},
                      "404": {**_ERR, "description": "no receiver for this source is configured (no secret set)"},
                      "429": {**_ERR, "description": "too many deliveries a minute from this address; Retry-After"}}}},
    "/api/integrations": {"get": {
        "summary": "Per source: configured?, delivery counters, last delivery, last failure; the mapping file",
        "responses": {"200": _ENV}}},
    "/api/integrations/{source}/deliveries": {"get": {
        "summary": "Stored deliveries of a source, newest first (without their bodies)",
        "parameters": [_SOURCE,
                       {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000,
                                                                   "default": 100}},
                       {"name": "status", "in": "query", "schema": {"type": "string", "enum": [
                           "mapped", "unknown", "ignored", "invalid", "duplicate"]}}],
        "responses": {"200": _ENV, "404": _ERR}}},
    "/api/integrations/{source}/deliveries/{delivery_id}/replay": {"post": {
        "summary": "Map and ingest a stored delivery again (by delivery id or stored entry id): the same event ids, "
                   "so what was ingested before counts as duplicates",
        "parameters": [_SOURCE, {"name": "delivery_id", "in": "path", "required": True,
                                 "schema": {"type": "string", "maxLength": 200}}],
        "responses": {"200": _ENV, "404": _ERR}}},
}
OPENAPI["paths"].update(_WEBHOOK_PATHS)

# --- the reviewer ledger (api/reviewers.py; docs/METRICS.md "The reviewer ledger") --------------
_LEDGER_PARAMS = [_TF, _END, *_SCOPE]
OPENAPI["paths"].update({
    "/api/reviewers": {"get": {
        "summary": "Reviewers (people, AI agents, bots) and gates measured by outcomes over a window: per reviewer "
                   "and per kind reviews, verdicts, time to first review, findings raised / accepted / dismissed, "
                   "precision, escapes, miss rate, cost per accepted finding; time to first human review; gate "
                   "calibration and flakiness. Needs view:team_metrics or view:quality_metrics; cost figures "
                   "view:cost_analysis; people sanitised per caller",
        "parameters": _LEDGER_PARAMS, "responses": {"200": _ENV, "400": _ERR, "403": _ERR, "503": _ERR}}},
    "/api/reviewers/{reviewer}": {"get": {
        "summary": "One reviewer's figures with the events behind each number (rows per figure, counts that "
                   "reproduce the figures)",
        "parameters": [{"name": "reviewer", "in": "path", "required": True,
                        "schema": {"type": "string", "maxLength": 256}}, *_LEDGER_PARAMS],
        "responses": {"200": _ENV, "400": _ERR, "403": _ERR, "404": _ERR, "503": _ERR}}},
})

PUBLIC_OPERATIONS = {("/health", "get"), ("/api/openapi.json", "get"), ("/api/auth/token", "post"),
                     ("/api/webhooks/{source}", "post")}     # signed by the source, no user credentials
_ERRORS = {
    "400": "invalid input: an ill-typed, unknown or out-of-range value, malformed JSON or JSON nested more "
           "than 64 levels; the message names the field",
    "401": "no credentials, or a Bearer token that is invalid, expired or revoked",
    "403": "the caller lacks the permission this needs (or, for a browser session, the CSRF token is wrong)",
    "413": "the request body is larger than the configured limit",
    "503": "the data store is unavailable; retry after the Retry-After seconds",
}


def document_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the error answers each operation can give, where it does not describe them itself."""
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            codes = []
            if (path, method) not in PUBLIC_OPERATIONS:
                codes += ["401", "403"]
            if op.get("parameters") or op.get("requestBody"):
                codes.append("400")
            if op.get("requestBody"):
                codes.append("413")
            if path != "/api/openapi.json":
                codes.append("503")
            responses = op.setdefault("responses", {})
            for code in codes:
                answer = {**_ERR, "description": _ERRORS[code]}
                if code == "503":
                    answer["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                         "description": "seconds to wait before retrying"}}
                responses.setdefault(code, answer)
    return doc


document_errors(OPENAPI)
