"""SonarQube as a source: the quality-gate webhook (Administration > Webhooks, or a project's).

SonarQube sends one kind of delivery, after each analysis (and again when an issue's change
turns the gate's status): the project, the branch or pull request analysed, the quality gate
with its conditions. Signed when the webhook has a secret: `X-Sonar-Webhook-HMAC-SHA256` is
the hex HMAC-SHA256 of the raw body with that secret.

A pull request's analysis is one gate run (`quality_gate_executed`) on that pull request's
workflow: the mapping file's `sonarqube` rules say which repository a project key analyses
(`acme/api` → workflow `acme/api#42`; a GitLab project → `group/app!42`; an unmapped key is
its own repository). Analyses of branches (the main branch included) belong to no pull
request and are ignored (`[]`). The mapping table is in docs/INTEGRATIONS.md.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from typing import Any, Mapping as TMapping

from integrations.github import PayloadError
from integrations.gitlab import event, event_id, iso

SECRET_SETTING = "sonarqube_webhook_secret"
SOURCE = "sonarqube"
EVENT = "quality_gate"
DEFAULT_GATE = "sonarqube-quality-gate"
_PASSED = {"OK": True, "WARN": True, "ERROR": False}     # WARN: SonarQube before 7.6


def verify(headers: TMapping[str, str], body: bytes, secret: str) -> bool:
    signature = (headers.get("X-Sonar-Webhook-HMAC-SHA256") or "").strip().lower()
    if not signature or not secret:
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.encode("ascii", "replace"), expected.encode("ascii"))


def delivery_id(headers: TMapping[str, str], body: bytes, payload: Any) -> str:
    """The analysis' background task (`taskId`: a project and a global webhook of the same
    analysis are one delivery), else the sha256 of the body (a gate re-evaluated after an
    issue change carries no task)."""
    task = payload.get("taskId") if isinstance(payload, dict) else None
    if isinstance(task, str) and task.strip():
        return "task:" + task.strip()[:120]
    return "sha256:" + hashlib.sha256(body).hexdigest()


def event_name(headers: TMapping[str, str], payload: Any) -> str:
    return EVENT


def map_delivery(event_name: str, payload: dict[str, Any], mapping: Any) -> list[dict[str, Any]] | None:
    if event_name != EVENT or not isinstance(payload, dict):
        return None
    return _quality_gate(payload, mapping)


def _pull_request(payload: dict[str, Any]) -> str | None:
    """The pull request's key: `branch.name` when `branch.type` is PULL_REQUEST (what
    SonarQube writes), or a `pullRequest.key` object."""
    branch = payload.get("branch")
    if isinstance(branch, dict) and branch.get("type") == "PULL_REQUEST":
        key = branch.get("name")
    else:
        pr = payload.get("pullRequest")
        key = pr.get("key") if isinstance(pr, dict) else None
    key = str(key).strip() if isinstance(key, (str, int)) and not isinstance(key, bool) else ""
    return key or None


def _workflow(mapping: Any, project: str, pr: str) -> str:
    """The mapping's `sonarqube` rule for the project key (its repository and forge), else the
    key itself as a GitHub-style repository."""
    find = getattr(mapping, "sonar_project", None)
    rule = find(project) if callable(find) else None
    if rule is None:
        return f"{project}#{pr}"
    return f"{rule.repository}{'!' if getattr(rule, 'forge', 'github') == 'gitlab' else '#'}{pr}"


def _gate_name(mapping: Any, quality_gate: str) -> str:
    """A gate rule matching `sonarqube:<quality gate name>` (kind `sonarqube`) names the gate;
    without gate rules, or with none matching, it is `sonarqube-quality-gate`."""
    rules = getattr(getattr(mapping, "doc", None), "gates", None)
    if rules:
        gate = mapping.gate_of(f"sonarqube:{quality_gate}", "sonarqube")
        if gate is not None:
            return gate.gate
    return DEFAULT_GATE


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and abs(number) <= 1e12 else None


def _metrics(conditions: Any) -> dict[str, float]:
    """Each condition's measured value under its metric key, its error threshold under
    `<metric>_threshold` (a condition without a value, e.g. NO_VALUE, gives its threshold only)."""
    out: dict[str, float] = {}
    for cond in conditions if isinstance(conditions, list) else ():
        metric = cond.get("metric") if isinstance(cond, dict) else None
        if not isinstance(metric, str) or not metric or len(metric) > 200:
            continue
        value, threshold = _number(cond.get("value")), _number(cond.get("errorThreshold"))
        if value is not None:
            out[metric] = value
        if threshold is not None:
            out[f"{metric}_threshold"] = threshold
    return out


def _sha(value: Any) -> str | None:
    ok = isinstance(value, str) and 4 <= len(value) <= 64 and not value.strip("0123456789abcdefABCDEF")
    return value if ok else None


def _quality_gate(payload: dict[str, Any], mapping: Any) -> list[dict[str, Any]]:
    project = payload.get("project")
    key = project.get("key") if isinstance(project, dict) else None
    if not isinstance(key, str) or not key:
        raise PayloadError("project.key: required")
    gate = payload.get("qualityGate")
    pr = _pull_request(payload)
    if pr is None or not isinstance(gate, dict):
        return []                                # a branch analysis, or no gate evaluated
    if payload.get("status", "SUCCESS") != "SUCCESS":
        return []                                # the analysis failed: no gate ran
    passed = _PASSED.get(gate.get("status"))  # type: ignore[arg-type]
    task = payload.get("taskId") if isinstance(payload.get("taskId"), str) and payload.get("taskId") else None
    # An analysis counts at its analysis date; a re-evaluation (no task) when it changed.
    ts = iso(payload.get("analysedAt")) if task else (iso(payload.get("changedAt")) or iso(payload.get("analysedAt")))
    if passed is None:
        return []                                # NONE: the gate had nothing to evaluate
    if ts is None:
        raise PayloadError(("analysedAt" if task else "changedAt") + ": required (a time)")
    name = gate.get("name") if isinstance(gate.get("name"), str) else ""
    ev_id = event_id("sq", key, task) if task else event_id("sq", key, pr, "changed", ts)
    return [event(ev_id, "workflow.quality_gate_executed", ts, SOURCE, {
        "workflow_id": _workflow(mapping, key, pr), "gate_name": _gate_name(mapping, name), "passed": passed,
        "metrics": _metrics(gate.get("conditions")), "head_sha": _sha(payload.get("revision"))})]
