"""GitHub: webhook verification and the mapping of GitHub's payloads to QMS events.

`map_delivery(event_name, payload, mapping)` is pure: the webhook receiver and the history
import (integrations/importer.py) call it with the same payloads and get the same events,
with ids made from GitHub's own objects (`gh:<repo>#<pr>:<what>`), never from the
delivery, so the ingest de-duplication counts a fact once however it arrived. One function
per payload type; the table of what maps to what is docs/INTEGRATIONS.md.

Returns None for a kind of delivery we do not map (stored and counted as unknown), [] for a
known kind with nothing to say for this action, else the events.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any, Callable, Mapping as TMapping

from data.timeutil import fmt_ms, parse_iso
from integrations.mapping import Mapping

SOURCE = "github"
SECRET_SETTING = "github_webhook_secret"
SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
MAX_ID = 128
MAX_EXECUTION_S = 604_800
SHA = re.compile(r"[0-9a-fA-F]{4,64}")


class PayloadError(ValueError):
    """A payload without a field its kind needs; the message names the field."""


# --- the receiver's protocol --------------------------------------------------------------

def verify(headers: TMapping[str, str], body: bytes, secret: str) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`, constant-time."""
    sent = headers.get(SIGNATURE_HEADER) or ""
    if not secret or not sent.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), sent.strip().encode("utf-8", "surrogatepass"))


def sign(body: bytes, secret: str) -> str:
    """The signature header GitHub sends for `body` (tests, replays with their signatures)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery_id(headers: TMapping[str, str], body: bytes, payload: Any) -> str:
    sent = (headers.get(DELIVERY_HEADER) or "").strip()
    return sent[:100] if sent else "sha256:" + hashlib.sha256(body).hexdigest()


def event_name(headers: TMapping[str, str], payload: Any) -> str:
    return (headers.get(EVENT_HEADER) or "").strip()[:100]


# --- helpers --------------------------------------------------------------------------------

def _get(obj: Any, path: str, kind: type | tuple[type, ...] = str, required: bool = True) -> Any:
    cur = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None or (kind is str and cur == ""):
        if required:
            raise PayloadError(f"{path}: required")
        return None
    if not isinstance(cur, kind) or (kind is int and isinstance(cur, bool)):
        raise PayloadError(f"{path}: must be {getattr(kind, '__name__', 'of another type')}")
    return cur


def _ts(obj: Any, path: str, required: bool = True) -> int | None:
    raw = _get(obj, path, str, required)
    if raw is None:
        return None
    try:
        return parse_iso(raw)
    except ValueError:
        raise PayloadError(f"{path}: not an ISO 8601 time") from None


def event_id(repo: str, number: int, tail: str) -> str:
    """`gh:<repo>#<pr>:<tail>`, at most 128 characters (a long tail is hashed)."""
    full = f"gh:{repo}#{number}:{tail}"
    if len(full) <= MAX_ID:
        return full
    prefix = f"gh:{repo}#{number}:"
    digest = hashlib.sha1(tail.encode()).hexdigest()[:16]
    if len(prefix) + len(digest) <= MAX_ID:
        return prefix + digest
    return "gh:" + hashlib.sha1(full.encode()).hexdigest()


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _event(eid: str, ev_type: str, ts: int, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": eid, "type": "workflow." + ev_type, "timestamp": fmt_ms(ts), "source": SOURCE,
            "data": data, "metadata": {"priority": "normal"}}


def _repo(payload: dict[str, Any]) -> str:
    return _get(payload, "repository.full_name")


def _pr(payload: dict[str, Any]) -> tuple[str, int, dict[str, Any]]:
    pr = _get(payload, "pull_request", dict)
    return _repo(payload), _get(pr, "number", int), pr


# --- pull_request -----------------------------------------------------------------------

REVERT_TITLE = re.compile(r'^Revert "')
REVERT_REF = re.compile(r"(?:([\w.-]+/[\w.-]+))?#(\d+)")


def _pull_request(payload: dict[str, Any], mapping: Mapping) -> list[dict[str, Any]]:
    action = payload.get("action")
    repo, number, pr = _pr(payload)
    wf = f"{repo}#{number}"
    if action in ("opened", "reopened"):
        # One id for both: a reopened PR we never saw opened is created; a known one is a duplicate.
        author = mapping.actor(_get(pr, "user.login"), _get(pr, "user.type", required=False))
        data = {"workflow_id": wf, "pr_number": number, "repository": repo, "author": author.id,
                "title": _str(pr.get("title"))[:4096]}
        team = mapping.team_of(repo)
        if team:
            data["team"] = team
        return [_event(event_id(repo, number, "opened"), "pr_created", _ts(pr, "created_at"), data)]
    if action == "ready_for_review":
        return [_step(repo, number, "code_review", pr)]
    if action == "review_requested":
        out = [_step(repo, number, "code_review", pr)]
        login = _get(payload, "requested_reviewer.login", required=False)
        if login:
            who = mapping.actor(login, _get(payload, "requested_reviewer.type", required=False))
            if who.kind != "human":
                ts = _ts(pr, "updated_at")
                out.append(_event(event_id(repo, number, f"assigned:{who.id}:{fmt_ms(ts)}"), "agent_assigned", ts,
                                  {"workflow_id": wf, "agent_id": who.id}))
        return out
    if action == "labeled":
        step = mapping.step_of_label(_get(payload, "label.name", required=False) or "")
        return [_step(repo, number, step, pr)] if step else []
    if action == "closed":
        return _closed(payload, mapping, repo, number, pr)
    return []


def _step(repo: str, number: int, step: str, pr: dict[str, Any]) -> dict[str, Any]:
    # The payload carries no time of the action itself: the PR's updated_at is it.
    ts = _ts(pr, "updated_at")
    return _event(event_id(repo, number, f"step:{step}:{fmt_ms(ts)}"), "step_entered", ts,
                  {"workflow_id": f"{repo}#{number}", "step": step})


def closed_outcome(payload: dict[str, Any]) -> str:
    """merged; else abandoned when the PR is a draft, or its author closed it with no review
    comment on it; else rejected (someone else closed it, or it was discussed)."""
    pr = _dict(payload.get("pull_request"))
    if pr.get("merged") or pr.get("merged_at"):
        return "merged"
    author = _dict(pr.get("user")).get("login")
    closer = _dict(payload.get("sender")).get("login")
    if pr.get("draft") or (closer == author and not pr.get("review_comments")):
        return "abandoned"
    return "rejected"


def _closed(payload: dict[str, Any], mapping: Mapping, repo: str, number: int,
            pr: dict[str, Any]) -> list[dict[str, Any]]:
    outcome = closed_outcome(payload)
    ts = _ts(pr, "merged_at" if outcome == "merged" and pr.get("merged_at") else "closed_at")
    out = [_event(event_id(repo, number, f"closed:{fmt_ms(ts)}"), "completed", ts,
                  {"workflow_id": f"{repo}#{number}", "outcome": outcome})]
    if outcome == "merged" and REVERT_TITLE.match(_str(pr.get("title"))):
        ref = REVERT_REF.search(_str(pr.get("body")))
        if ref:
            target_repo, target = ref.group(1) or repo, int(ref.group(2))
            who = mapping.actor(_get(pr, "user.login"), _get(pr, "user.type", required=False))
            eid = event_id(target_repo, target, f"revert:{repo}#{number}")
            out.append(_event(eid, "defect_found", ts, {
                "workflow_id": f"{target_repo}#{target}", "defect_id": eid, "severity": "major",
                "category": "revert", "stage": "production", "found_by": who.id, "found_by_kind": who.kind}))
    return out


# --- reviews, review comments and their threads -------------------------------------------

def _pull_request_review(payload: dict[str, Any], mapping: Mapping) -> list[dict[str, Any]]:
    if payload.get("action") != "submitted":
        return []          # edited: no new fact; dismissed: the contract has no retraction
    repo, number, _pr_obj = _pr(payload)
    review = _get(payload, "review", dict)
    rid = _get(review, "id", int)
    state = str(review.get("state") or "").lower()
    who = mapping.actor(_get(review, "user.login"), _get(review, "user.type", required=False))
    ts = _ts(review, "submitted_at")
    wf = f"{repo}#{number}"
    base = {"workflow_id": wf, "reviewer": who.id, "reviewer_kind": who.kind}
    verdict = {"approved": "approved", "changes_requested": "changes_requested"}.get(state)
    if verdict is None:
        # "commented": the reviewer started; the verdict comes with a later review, if any.
        return [_event(event_id(repo, number, f"review:{rid}:started"), "review_started", ts, dict(base))]
    completed = {**base, "verdict": verdict}
    if who.cost_per_review_usd is not None:
        completed["cost_usd"] = who.cost_per_review_usd
    # GitHub records only when a review was submitted: its start is put 1 ms before, so the
    # review is never left open and the two events keep their order.
    return [_event(event_id(repo, number, f"review:{rid}:started"), "review_started", ts - 1, dict(base)),
            _event(event_id(repo, number, f"review:{rid}:completed"), "review_completed", ts, completed)]


SEVERITY_WORDS = (("critical", re.compile(r"\bcritical\b|\bsecurity\b|🔴|🚨", re.I)),
                  ("major", re.compile(r"\bmajor\b|\bbug\b|potential issue|⚠️", re.I)))
RESOLUTION_WORDS = (("wont_fix", re.compile(r"\bwon'?t fix\b|\bwontfix\b|\bwill not fix\b", re.I)),
                    ("false_positive", re.compile(r"\bfalse positive\b|\bnot an issue\b|\bnot a bug\b", re.I)))


def severity_of(body: str) -> str:
    """critical / major when the comment says so in words, else minor."""
    return next((sev for sev, rx in SEVERITY_WORDS if rx.search(body)), "minor")


def _said_resolution(body: str) -> str | None:
    return next((res for res, rx in RESOLUTION_WORDS if rx.search(body)), None)


def defect_id(repo: str, number: int, comment_id: int) -> str:
    return event_id(repo, number, f"comment:{comment_id}")


def _pull_request_review_comment(payload: dict[str, Any], mapping: Mapping) -> list[dict[str, Any]]:
    if payload.get("action") != "created":
        return []
    repo, number, pr = _pr(payload)
    comment = _get(payload, "comment", dict)
    cid = _get(comment, "id", int)
    body = _str(comment.get("body"))
    login = _get(comment, "user.login")
    ts = _ts(comment, "created_at")
    parent = comment.get("in_reply_to_id")
    if isinstance(parent, int) and not isinstance(parent, bool):
        # A reply: it resolves the finding it answers when it says so ("false positive", "won't fix").
        said = _said_resolution(body)
        if said is None:
            return []
        did = defect_id(repo, number, parent)
        return [_event(event_id(repo, number, f"comment:{parent}:resolved"), "defect_resolved", ts, {"defect_id": did, "resolution": said, "workflow_id": f"{repo}#{number}"})]
    if login == _get(pr, "user.login", required=False):
        return []          # the author's own notes on their diff are not findings
    who = mapping.actor(login, _get(comment, "user.type", required=False))
    did = defect_id(repo, number, cid)
    return [_event(did, "defect_found", ts, {
        "workflow_id": f"{repo}#{number}", "defect_id": did, "severity": severity_of(body),
        "category": "suggestion" if "```suggestion" in body else "review_comment", "stage": "review",
        "found_by": who.id, "found_by_kind": who.kind})]


def thread_resolution(thread: dict[str, Any], head_sha: str | None) -> str:
    """A resolved thread's fate: what a reply in it said (won't fix, false positive); else
    fixed when the pull request's head moved past the commit the finding was made on (a
    change, or an applied suggestion), else false_positive (resolved with no change)."""
    comments = [c for c in _list(thread.get("comments")) if isinstance(c, dict)]
    for c in comments[1:]:
        said = _said_resolution(_str(c.get("body")))
        if said:
            return said
    root = comments[0] if comments else {}
    seen_on = root.get("original_commit_id") or root.get("commit_id")
    return "fixed" if head_sha and seen_on and head_sha != seen_on else "false_positive"


def _pull_request_review_thread(payload: dict[str, Any], mapping: Mapping) -> list[dict[str, Any]]:
    if payload.get("action") != "resolved":
        return []          # unresolved: the contract has no reopening; the first resolution stands
    repo, number, pr = _pr(payload)
    thread = _get(payload, "thread", dict)
    comments = sorted((c for c in _list(thread.get("comments")) if isinstance(c, dict)),
                      key=lambda c: (c.get("in_reply_to_id") is not None, str(c.get("created_at")), c.get("id") or 0))
    if not comments:
        raise PayloadError("thread.comments: required")
    root = comments[0]
    rid = _get(root, "id", int)
    if _get(root, "user.login", required=False) == _get(pr, "user.login", required=False):
        return []          # a thread the author opened holds no finding
    resolution = thread_resolution({"comments": comments}, _get(pr, "head.sha", required=False))
    # No resolution time in the payload: the PR's updated_at, never before the finding.
    ts = max(_ts(pr, "updated_at"), _ts(root, "created_at"))
    did = defect_id(repo, number, rid)
    return [_event(event_id(repo, number, f"comment:{rid}:resolved"), "defect_resolved", ts, {"defect_id": did, "resolution": resolution, "workflow_id": f"{repo}#{number}"})]


# --- checks, statuses and workflow runs -----------------------------------------------------

PASSED = {"success": True, "failure": False, "timed_out": False, "action_required": False,
          "startup_failure": False, "error": False}     # neutral, cancelled, skipped, stale: no verdict


def _gate_events(repo: str, numbers: list[int], tail: str, mapping: Mapping, name: str, kind: str,
                 conclusion: str | None, ts: int, started: int | None, head_sha: str | None) -> list[dict[str, Any]]:
    gm = mapping.gate_of(name, kind)
    passed = PASSED.get(str(conclusion or "").lower())
    if gm is None or passed is None:
        return []
    out = []
    for number in numbers:
        data: dict[str, Any] = {"workflow_id": f"{repo}#{number}", "gate_name": gm.gate, "passed": passed,
                                "step": gm.step}
        if started is not None and ts >= started:
            data["execution_time"] = min((ts - started) / 1000, MAX_EXECUTION_S)
        if isinstance(head_sha, str) and SHA.fullmatch(head_sha):
            data["head_sha"] = head_sha
        out.append(_event(event_id(repo, number, tail), "quality_gate_executed", ts, data))
    return out


def _numbers(items: Any) -> list[int]:
    out = []
    for p in _list(items):
        n = p.get("number") if isinstance(p, dict) else None
        if isinstance(n, int) and not isinstance(n, bool) and n > 0 and n not in out:
            out.append(n)
    return out


def _check_run(payload: dict[str, Any], mapping: Mapping) -> list[dict[str, Any]]:
    run = _get(payload, "check_run", dict)
    if payload.get("action") != "completed" or run.get("status") != "completed":
        return []
    # A check run not on a pull request (a push to a branch, a fork's PR) belongs to no workflow.
    numbers = _numbers(run.get("pull_requests"))
    if not numbers:
        return []
    return _gate_events(_repo(payload), numbers, f"check:{_get(run, 'id', int)}", mapping, _get(run, "name"),
                        "check_run", run.get("conclusion"), _ts(run, "completed_at"),
                        _ts(run, "started_at", required=False), run.get("head_sha"))


def _workflow_run(payload: dict[str, Any], mapping: Mapping) -> list[dict[str, Any]]:
    run = _get(payload, "workflow_run", dict)
    if payload.get("action") != "completed" or run.get("status") != "completed":
        return []
    numbers = _numbers(run.get("pull_requests"))
    name = run.get("name") or _get(payload, "workflow.name", required=False) or ""
    if not numbers or not name:
        return []
    attempt = run.get("run_attempt") if isinstance(run.get("run_attempt"), int) else 1
    return _gate_events(_repo(payload), numbers, f"run:{_get(run, 'id', int)}:{attempt}", mapping, name,
                        "workflow_run", run.get("conclusion"), _ts(run, "updated_at"),
                        _ts(run, "run_started_at", required=False), run.get("head_sha"))


def _status(payload: dict[str, Any], mapping: Mapping) -> list[dict[str, Any]]:
    # A commit status names no pull request: the receiver adds `pull_requests` from the heads
    # of the PRs it has seen (the importer from the PR it reads); without it, nothing to map.
    numbers = _numbers(payload.get("pull_requests"))
    state = str(payload.get("state") or "")
    if not numbers or state == "pending":
        return []
    return _gate_events(_repo(payload), numbers, f"status:{_get(payload, 'id', int)}", mapping,
                        _get(payload, "context"), "status", state, _ts(payload, "updated_at"), None,
                        payload.get("sha"))


def _nothing(payload: dict[str, Any], mapping: Mapping) -> list[dict[str, Any]]:
    """Known, deliberately not mapped: ping; check_suite and workflow_job (their check runs
    are the gates, so a CI run is counted once)."""
    return []


HANDLERS: dict[str, Callable[[dict[str, Any], Mapping], list[dict[str, Any]]]] = {
    "pull_request": _pull_request,
    "pull_request_review": _pull_request_review,
    "pull_request_review_comment": _pull_request_review_comment,
    "pull_request_review_thread": _pull_request_review_thread,
    "check_run": _check_run,
    "workflow_run": _workflow_run,
    "status": _status,
    "check_suite": _nothing,
    "workflow_job": _nothing,
    "ping": _nothing,
}


def map_delivery(event_name: str, payload: dict[str, Any], mapping: Mapping) -> list[dict[str, Any]] | None:
    """The QMS events of one GitHub delivery; None for a kind we do not map. Raises
    PayloadError naming the field when a mapped kind lacks what it needs."""
    handler = HANDLERS.get(event_name)
    if handler is None:
        return None
    if not isinstance(payload, dict):
        raise PayloadError("body: must be a JSON object")
    return handler(payload, mapping)


def head_shas(event_name: str, payload: Any) -> list[tuple[str, str]]:
    """(head sha, workflow id) pairs a delivery tells (pull requests, and the check runs on
    them): the receiver keeps them so a later commit status can be put on its pull request."""
    if not isinstance(payload, dict):
        return []
    try:
        if event_name == "pull_request":
            repo, number, pr = _pr(payload)
            return [(_get(pr, "head.sha"), f"{repo}#{number}")]
        if event_name == "check_run":
            run = _get(payload, "check_run", dict)
            sha, repo = _get(run, "head_sha"), _repo(payload)
            return [(sha, f"{repo}#{n}") for n in _numbers(run.get("pull_requests"))]
    except PayloadError:
        pass
    return []
