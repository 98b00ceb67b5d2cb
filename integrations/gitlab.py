"""GitLab as a source: project (or group, or system) webhooks and the history import.

The receiver (`integrations/receiver.py`) calls the module protocol:
`verify` (the `X-Gitlab-Token` header equals the token, constant time), `delivery_id`,
`event_name` (the `X-Gitlab-Event` header) and `map_delivery(event_name, payload, mapping)`,
which returns QMS events, `[]` (a hook we know with nothing to emit) or `None` (a hook we do
not map: stored and counted as unknown).

Ids are built from GitLab's own objects (`gl:<project path>!<iid>:…`), never from the
delivery, so a webhook and an import of the same fact are one event. Timestamps come from the
payload (`created_at`, `updated_at`, `finished_at`, …), never from the time of receipt.
The mapping table is in docs/INTEGRATIONS.md (GitLab section).

History import (H4): `map_delivery` also takes objects of the REST API wrapped like a hook:

    ("Merge Request Hook", {"object_kind": "merge_request",
                            "project": {"path_with_namespace": "group/name"},
                            "user": <the user who acted, e.g. the MR's author, merged_by, closed_by>,
                            "object_attributes": {**<GET /projects/:id/merge_requests/:iid>,
                                                  "action": "open" | "merge" | "close" | "approval"}})
    ("Note Hook", {"object_kind": "note", "project": {...}, "user": <note.author>,
                   "merge_request": <the MR object>,
                   "object_attributes": {**<a note of GET …/merge_requests/:iid/discussions>,
                                         "noteable_type": "MergeRequest",
                                         "discussion_id": <the discussion's id>}})
    ("Job Hook", {"object_kind": "build", "project": {...}, "ref": job.ref, "sha": job.commit.id,
                  "build_id": job.id, "build_name": job.name, "build_status": job.status,
                  "build_duration": job.duration, "build_finished_at": job.finished_at})
    ("Pipeline Hook", {"object_kind": "pipeline", "project": {...}, "merge_request": {"iid": …},
                       "object_attributes": <GET /projects/:id/pipelines/:pipeline_id>,
                       "builds": <GET …/pipelines/:pipeline_id/jobs>})

REST shapes the mapping reads besides the hook's: `author.username` and `closed_by` on a
merge request, `merged_at` / `closed_at`, `sha` for the head commit, labels as plain strings,
a note's `author`, `resolved` / `resolved_at` / `resolved_by`.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timezone
from typing import Any, Callable, Mapping as TMapping

from data.timeutil import fmt_ms, parse_iso
from integrations.github import RESOLUTION_WORDS, PayloadError, severity_of

SECRET_SETTING = "gitlab_webhook_token"
SOURCE = "gitlab"
MAX_ID = 128

FINISHED = {"success": True, "failed": False}          # job / pipeline statuses that are a gate run
_MR_REF = re.compile(r"^refs/merge-requests/(\d+)/(?:head|merge|train)$")
_REVERTS = re.compile(r"This reverts merge request !(\d+)")
# X-Gitlab-Event of each object_kind (a delivery replayed without its headers, an import).
_HOOK_OF_KIND = {"merge_request": "Merge Request Hook", "note": "Note Hook", "pipeline": "Pipeline Hook",
                 "build": "Job Hook"}


# ---- the module protocol -------------------------------------------------------------------

def verify(headers: TMapping[str, str], body: bytes, secret: str) -> bool:
    """GitLab sends the configured secret token as is in `X-Gitlab-Token` (no signature)."""
    token = headers.get("X-Gitlab-Token")
    if not token or not secret:
        return False
    return hmac.compare_digest(token.encode("utf-8", "surrogateescape"), secret.encode("utf-8", "surrogateescape"))


def delivery_id(headers: TMapping[str, str], body: bytes, payload: Any) -> str:
    """`Idempotency-Key` (GitLab 17.4+, the same on a retry), else `X-Gitlab-Event-UUID`, else
    the sha256 of the body (a redelivery is byte for byte the same)."""
    for name in ("Idempotency-Key", "X-Gitlab-Event-UUID"):
        value = (headers.get(name) or "").strip()
        if value:
            return value[:MAX_ID]
    return "sha256:" + hashlib.sha256(body).hexdigest()


def event_name(headers: TMapping[str, str], payload: Any) -> str:
    """The `X-Gitlab-Event` header ("Merge Request Hook", "Note Hook", …); without it, the hook
    of the payload's `object_kind`."""
    name = (headers.get("X-Gitlab-Event") or "").strip()
    if name:
        return name
    kind = payload.get("object_kind") if isinstance(payload, dict) else None
    return _HOOK_OF_KIND.get(kind, str(kind or ""))  # type: ignore[arg-type]


def map_delivery(event_name: str, payload: dict[str, Any], mapping: Any) -> list[dict[str, Any]] | None:
    """QMS events of one delivery; [] for a known hook with nothing to emit; None for a hook we
    do not map. A System Hook is mapped by its `object_kind` like the project hook it repeats."""
    if not isinstance(payload, dict):
        return None
    if event_name == "System Hook":
        event_name = _HOOK_OF_KIND.get(payload.get("object_kind"), "")  # type: ignore[arg-type]
    handler = _HANDLERS.get(event_name)
    if handler is None:
        return None
    return handler(payload, mapping)


# ---- shared helpers (also used by integrations/sonarqube.py) ---------------------------------

def event_id(*parts: Any) -> str:
    """`a:b:c`, at most 128 characters: a longer id keeps its head and hashes its tail."""
    raw = ":".join(str(p) for p in parts)
    if len(raw) <= MAX_ID:
        return raw
    return raw[:MAX_ID - 17] + "~" + hashlib.sha1(raw.encode()).hexdigest()[:16]


def iso(value: Any) -> str | None:
    """A forge timestamp as ISO 8601 UTC ('…Z'), or None. Takes the forms GitLab and SonarQube
    send: '2013-12-03T17:23:34Z', '2021-02-23T02:41:37.886Z', '2015-05-17 18:08:09 UTC',
    '2021-04-28 21:50:00 +0200', '2016-11-18T10:46:28+0100'."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4].replace(" ", "T") + "+00:00"
    text = re.sub(r"^(\d{4}-\d\d-\d\d) ", r"\1T", text)
    text = re.sub(r" ?([+-]\d\d):?(\d\d)$", r"\1:\2", text)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return fmt_ms(parse_iso(text))
    except ValueError:
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return fmt_ms(int(dt.timestamp() * 1000))


def event(ev_id: str, ev_type: str, ts: str, source: str, data: dict[str, Any]) -> dict[str, Any]:
    """A QMS envelope; fields whose value is None are left out."""
    return {"id": ev_id, "type": ev_type, "timestamp": ts, "source": source,
            "data": {k: v for k, v in data.items() if v is not None}, "metadata": {"priority": "normal"}}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value >= 0 else None


def _user(obj: Any) -> str | None:
    return obj.get("username") if isinstance(obj, dict) and isinstance(obj.get("username"), str) else None


def _project_path(payload: dict[str, Any]) -> str | None:
    project = payload.get("project")
    path = project.get("path_with_namespace") if isinstance(project, dict) else None
    if not path:
        path = payload.get("project_name") if isinstance(payload.get("project_name"), str) else None
        path = path.replace(" ", "") if path else None   # a Job Hook's "gitlab-org/gitlab-test"
    return path or None


def _need_path(payload: dict[str, Any]) -> str:
    path = _project_path(payload)
    if not path:
        raise PayloadError("project.path_with_namespace: required")
    return path


def _need_attrs(payload: dict[str, Any]) -> dict[str, Any]:
    attrs = payload.get("object_attributes")
    if not isinstance(attrs, dict):
        raise PayloadError("object_attributes: required")
    return attrs


def _need_ts(obj: dict[str, Any], *fields: str) -> str:
    """The first of `fields` that is a time; a PayloadError naming them when none is."""
    for name in fields:
        ts = iso(obj.get(name))
        if ts is not None:
            return ts
    raise PayloadError(f"object_attributes.{fields[0]}: required (a time)")


def _need_wf(path: str, obj: dict[str, Any], where: str) -> str:
    wf = _wf(path, obj.get("iid"))
    if wf is None:
        raise PayloadError(f"{where}.iid: must be a positive integer")
    return wf


def _wf(path: str, iid: Any) -> str | None:
    if isinstance(iid, bool) or not isinstance(iid, int) or iid < 1:
        return None
    return f"{path}!{iid}"


def _labels(items: Any) -> list[str]:
    """Label titles: hook payloads carry objects, the REST API plain strings."""
    out = []
    for item in items or ():
        title = item.get("title") if isinstance(item, dict) else item
        if isinstance(title, str):
            out.append(title)
    return out


def _compact(ts: str) -> str:
    return re.sub(r"[^0-9]", "", ts)[:17]


# ---- Merge Request Hook ----------------------------------------------------------------------

def _merge_request(payload: dict[str, Any], mapping: Any) -> list[dict[str, Any]]:
    attrs = _need_attrs(payload)
    path = _need_path(payload)
    wf = _need_wf(path, attrs, "object_attributes")
    action = attrs.get("action")
    handler = _MR_ACTIONS.get(action)  # type: ignore[arg-type]
    return handler(payload, attrs, path, wf, mapping) if handler else []


def _mr_author(payload: dict[str, Any], attrs: dict[str, Any]) -> str | None:
    """The MR author's login: `author.username` (REST); in a hook only the acting user's, when
    they are the author (`user.id == author_id`)."""
    login = _user(attrs.get("author"))
    if login:
        return login
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    if attrs.get("author_id") is not None and user.get("id") == attrs.get("author_id") and _user(user):
        return _user(user)
    return f"gitlab-user-{attrs['author_id']}" if attrs.get("author_id") is not None else None


def _mr_open(payload: dict[str, Any], attrs: dict[str, Any], path: str, wf: str, mapping: Any) -> list[dict[str, Any]]:
    ts = _need_ts(attrs, "created_at", "updated_at")
    author = _mr_author(payload, attrs)
    if author is None:
        raise PayloadError("object_attributes.author_id: required")
    actor = mapping.actor(author)
    title = attrs.get("title") if isinstance(attrs.get("title"), str) else None
    # One id for open and reopen: a reopened MR we never saw opened is created; a known one is a duplicate.
    return [event(event_id("gl", wf, "opened"), "workflow.pr_created", ts, SOURCE, {
        "workflow_id": wf, "pr_number": attrs["iid"], "repository": path, "author": actor.id,
        "team": mapping.team_of(path), "title": title[:4096] if title else None})]


def _mr_update(payload: dict[str, Any], attrs: dict[str, Any], path: str, wf: str, mapping: Any) -> list[dict[str, Any]]:
    """Step changes: out of draft or reviewers added → code_review (and `agent_assigned` for
    each added reviewer that is an agent or a bot); a label the mapping says is a step → that
    step. Anything else an update says (new commits, edits) → []."""
    changes = payload.get("changes") if isinstance(payload.get("changes"), dict) else {}
    ts = _need_ts(attrs, "updated_at")
    steps: list[str] = []
    for key in ("draft", "work_in_progress"):
        change = changes.get(key)
        if isinstance(change, dict) and change.get("previous") is True and change.get("current") is False:
            steps.append("code_review")
    reviewers = changes.get("reviewers")
    added: list[str] = []
    if isinstance(reviewers, dict):
        before = {_user(r) for r in reviewers.get("previous") or ()}
        added = [login for r in reviewers.get("current") or () if (login := _user(r)) and login not in before]
        if added:
            steps.append("code_review")
    labels = changes.get("labels")
    if isinstance(labels, dict):
        before_labels = set(_labels(labels.get("previous")))
        for label in _labels(labels.get("current")):
            step = mapping.step_of_label(label) if label not in before_labels else None
            if step:
                steps.append(step)
    out, seen = [], set()
    for step in steps:
        if step not in seen:
            seen.add(step)
            out.append(event(event_id("gl", wf, "step", step, _compact(ts)), "workflow.step_entered", ts, SOURCE,
                             {"workflow_id": wf, "step": step}))
    for login in added:                          # an agent or bot asked to review is assigned (as on GitHub)
        who = mapping.actor(login)
        if who.kind != "human":
            out.append(event(event_id("gl", wf, "assigned", who.id, _compact(ts)), "workflow.agent_assigned", ts,
                             SOURCE, {"workflow_id": wf, "agent_id": who.id}))
    return out


def _mr_approval(payload: dict[str, Any], attrs: dict[str, Any], path: str, wf: str, mapping: Any) -> list[dict[str, Any]]:
    """`approval` (one user approved) and `approved` (the approval rules are met, sent for the
    last approver) are the same fact: one approval per user and head commit, one id."""
    login = _user(payload.get("user"))
    ts = _need_ts(attrs, "updated_at")
    if not login:
        raise PayloadError("user.username: required")
    actor = mapping.actor(login)
    head = _head_sha(attrs) or _compact(ts)
    base = ("gl", wf, "review", actor.id, head[:12])
    data = {"workflow_id": wf, "reviewer": actor.id, "reviewer_kind": actor.kind}
    # GitLab records only when the approval was given: its start is put 1 ms before (as for GitHub).
    return [
        event(event_id(*base, "started"), "workflow.review_started", fmt_ms(parse_iso(ts) - 1), SOURCE, dict(data)),
        event(event_id(*base, "approved"), "workflow.review_completed", ts, SOURCE,
              {**data, "verdict": "approved", "cost_usd": actor.cost_per_review_usd}),
    ]


def _head_sha(attrs: dict[str, Any]) -> str | None:
    last = attrs.get("last_commit")
    sha = last.get("id") if isinstance(last, dict) else None
    sha = sha or attrs.get("sha")
    return sha if isinstance(sha, str) and sha else None


def _mr_merge(payload: dict[str, Any], attrs: dict[str, Any], path: str, wf: str, mapping: Any) -> list[dict[str, Any]]:
    ts = _need_ts(attrs, "merged_at", "updated_at")
    out = [event(event_id("gl", wf, "merged"), "workflow.completed", ts, SOURCE,
                 {"workflow_id": wf, "outcome": "merged"})]
    out.extend(_revert(payload, attrs, path, wf, ts, mapping))
    return out


def _revert(payload: dict[str, Any], attrs: dict[str, Any], path: str, wf: str, ts: str, mapping: Any) -> list[dict[str, Any]]:
    """A merged revert (title `Revert "…"`, GitLab's description "This reverts merge request
    !N") is a production defect of the reverted merge request."""
    title, body = attrs.get("title"), attrs.get("description")
    if not isinstance(title, str) or not title.startswith('Revert "') or not isinstance(body, str):
        return []
    m = _REVERTS.search(body)
    target = _wf(path, int(m.group(1))) if m else None
    if target is None or target == wf:
        return []
    login = _user(payload.get("user")) or _user(attrs.get("merged_by"))
    parts = ("gl", target, "revert", attrs["iid"])
    defect = event_id(*parts)
    who = mapping.actor(login) if login else None
    return [event(event_id(*parts, "found"), "workflow.defect_found", ts, SOURCE, {
        "workflow_id": target, "defect_id": defect, "severity": "major", "category": "revert",
        "stage": "production", "found_by": who.id if who else None, "found_by_kind": who.kind if who else None})]


def _mr_close(payload: dict[str, Any], attrs: dict[str, Any], path: str, wf: str, mapping: Any) -> list[dict[str, Any]]:
    """Closed unmerged: `abandoned` when it was a draft or its author closed it, `rejected` when
    someone else closed it."""
    ts = _need_ts(attrs, "closed_at", "updated_at")
    closer = attrs.get("closed_by") if isinstance(attrs.get("closed_by"), dict) else payload.get("user")
    closer_id = closer.get("id") if isinstance(closer, dict) else None
    author_id = attrs.get("author_id")
    if author_id is None and isinstance(attrs.get("author"), dict):
        author_id = attrs["author"].get("id")
    abandoned = attrs.get("draft") is True or (closer_id is not None and closer_id == author_id)
    return [event(event_id("gl", wf, "closed", _compact(ts)), "workflow.completed", ts, SOURCE,
                  {"workflow_id": wf, "outcome": "abandoned" if abandoned else "rejected"})]


_MR_ACTIONS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "open": _mr_open, "reopen": _mr_open, "update": _mr_update, "approval": _mr_approval,
    "approved": _mr_approval, "merge": _mr_merge, "close": _mr_close,
}   # unapproved / unapproval: [] (the contract has no withdrawn verdict)


# ---- Note Hook -----------------------------------------------------------------------------------

def _note(payload: dict[str, Any], mapping: Any) -> list[dict[str, Any]]:
    """A diff note on a merge request by someone other than its author is a review finding
    (`defect_found`, stage review) of its thread (`discussion_id`; replies in the thread carry
    the same ids, so a thread is one finding). Its fate (`defect_resolved`): a note in the
    thread saying "false positive" / "not a bug" / "won't fix" (it raises nothing itself); or
    the thread resolved — `fixed` when resolved by a push or when the MR's head commit is
    newer than the note, else `false_positive`. The first resolution to arrive counts."""
    attrs = _need_attrs(payload)
    if attrs.get("noteable_type") != "MergeRequest" or attrs.get("system"):
        return []                                # commit, issue, snippet comments; system notes
    mr = payload.get("merge_request")
    if not isinstance(mr, dict):
        raise PayloadError("merge_request: required")
    wf = _need_wf(_need_path(payload), mr, "merge_request")
    created = _need_ts(attrs, "created_at")
    thread = attrs.get("discussion_id") or attrs.get("id")
    if not thread:
        return []
    parts = ("gl", wf, "thread", thread)
    defect = event_id(*parts)
    text = next((t for t in (attrs.get("note"), attrs.get("body")) if isinstance(t, str)), "")   # hook / REST
    login = _user(attrs.get("author")) or _user(payload.get("user"))
    author_id = attrs.get("author_id")
    if author_id is None and isinstance(attrs.get("author"), dict):
        author_id = attrs["author"].get("id")
    mr_author_id = mr.get("author_id")
    if mr_author_id is None and isinstance(mr.get("author"), dict):
        mr_author_id = mr["author"].get("id")
    out: list[dict[str, Any]] = []
    is_diff = attrs.get("type") == "DiffNote" or bool(attrs.get("position")) or bool(attrs.get("line_code"))
    dismissal = next((res for res, rx in RESOLUTION_WORDS if rx.search(text)), None)
    if dismissal and is_diff and attrs.get("discussion_id"):   # a reply dismissing its thread raises nothing
        return [event(event_id(*parts, "resolved"), "workflow.defect_resolved", created, SOURCE,
                      {"defect_id": defect, "resolution": dismissal, "workflow_id": wf})]
    if is_diff and login and (author_id is None or author_id != mr_author_id):
        actor = mapping.actor(login)
        out.append(event(event_id(*parts, "found"), "workflow.defect_found", created, SOURCE, {
            "workflow_id": wf, "defect_id": defect, "severity": severity_of(text),
            "category": "suggestion" if "```suggestion" in text else "review_comment",
            "stage": "review", "found_by": actor.id, "found_by_kind": actor.kind}))
    resolved_at = iso(attrs.get("resolved_at")) if attrs.get("resolved_at") else None
    if is_diff and (resolved_at or attrs.get("resolved") is True):
        ts = resolved_at or iso(attrs.get("updated_at")) or created
        head = mr.get("last_commit") if isinstance(mr.get("last_commit"), dict) else {}
        head_ts = iso(head.get("timestamp"))
        changed = bool(attrs.get("resolved_by_push")) or (head_ts is not None and parse_iso(head_ts) > parse_iso(created))
        out.append(event(event_id(*parts, "resolved"), "workflow.defect_resolved", ts, SOURCE,
                         {"defect_id": defect, "resolution": "fixed" if changed else "false_positive",
                          "workflow_id": wf}))
    return out


# ---- Pipeline Hook and Job Hook ------------------------------------------------------------------

def _mr_of_ref(path: str, ref: Any) -> str | None:
    m = _MR_REF.match(ref) if isinstance(ref, str) else None
    return _wf(path, int(m.group(1))) if m else None


def _gate(wf: str, what: str, obj_id: Any, name: str, kind: str, status: Any, duration: Any,
          finished: Any, sha: Any, mapping: Any) -> dict[str, Any] | None:
    passed = FINISHED.get(status) if isinstance(status, str) else None
    gate = mapping.gate_of(name, kind) if passed is not None and name else None
    ts = iso(finished)
    if gate is None or ts is None or obj_id is None:
        return None
    return event(event_id("gl", wf, what, obj_id), "workflow.quality_gate_executed", ts, SOURCE, {
        "workflow_id": wf, "gate_name": gate.gate, "passed": passed, "step": gate.step, "execution_time": _num(duration),
        "head_sha": sha if isinstance(sha, str) and sha else None})


def _job(payload: dict[str, Any], mapping: Any) -> list[dict[str, Any]]:
    """A finished job (success / failed) of a merge request pipeline whose name the mapping says
    is a gate. Jobs of branch pipelines (no `refs/merge-requests/<iid>/…` ref) → []."""
    wf = _mr_of_ref(_need_path(payload), payload.get("ref"))
    if wf is None:
        return []
    ev = _gate(wf, "job", payload.get("build_id"), payload.get("build_name") or "", "job",
               payload.get("build_status"), payload.get("build_duration"),
               payload.get("build_finished_at") or payload.get("build_finished_at_iso"), payload.get("sha"), mapping)
    return [ev] if ev else []


def _pipeline(payload: dict[str, Any], mapping: Any) -> list[dict[str, Any]]:
    """A finished merge request pipeline: each finished job in `builds` the mapping says is a
    gate (the same event, same id, as its Job Hook), and the pipeline itself only where a gate
    rule lists the kind `pipeline` (matched against the pipeline's name, else "pipeline")."""
    attrs = _need_attrs(payload)
    path = _need_path(payload)
    mr = payload.get("merge_request")
    wf = _wf(path, mr.get("iid")) if isinstance(mr, dict) else None
    wf = wf or _mr_of_ref(path, attrs.get("ref"))
    if wf is None:
        return []
    sha = attrs.get("sha")
    out = []
    for build in payload.get("builds") or ():
        if isinstance(build, dict):
            ev = _gate(wf, "job", build.get("id"), build.get("name") or "", "job", build.get("status"),
                       build.get("duration"), build.get("finished_at"), sha, mapping)
            if ev:
                out.append(ev)
    name = attrs.get("name") if isinstance(attrs.get("name"), str) and attrs.get("name") else "pipeline"
    ev = _gate(wf, "pipeline", attrs.get("id"), name, "pipeline", attrs.get("status"), attrs.get("duration"),
               attrs.get("finished_at"), sha, mapping)
    if ev:
        out.append(ev)
    return out


_HANDLERS: dict[str, Callable[[dict[str, Any], Any], list[dict[str, Any]]]] = {
    "Merge Request Hook": _merge_request,
    "Note Hook": _note,
    "Pipeline Hook": _pipeline,
    "Job Hook": _job,
}
