"""History import: a forge's REST API read back into the deliveries its webhooks would have sent.

    cli.py import github --repo OWNER/NAME --since 30d [--api-url URL] [--restart] [--wait]
    cli.py import gitlab --project GROUP/NAME --since 30d [--api-url URL] [--restart] [--wait]

Each pull / merge request updated since the bound is read with what happened to it (GitHub:
reviews, review comments, issue events, each commit's check runs and statuses; GitLab:
discussions, system notes, label events, diff versions, pipelines and their jobs) and turned
into the `(event_name, payload)` pairs the webhooks would have delivered
(`github_deliveries`, `gitlab_deliveries`); the SAME `map_delivery` of the source module maps
them, so an imported fact has the id its webhook gives and the ingest de-duplication counts
it once whichever arrives first (docs/INTEGRATIONS.md, "Importing history").

- `Http`: GET with the token (`Authorization: Bearer` / `PRIVATE-TOKEN`, never printed, sent
  to the API's own host only: a redirect or next link elsewhere is refused),
  pages by `Link: <…>; rel="next"` (GitLab also `X-Next-Page`), rate-limit aware
  (`X-RateLimit-Remaining: 0` → wait until `X-RateLimit-Reset`; 403/429 with `Retry-After` →
  wait and retry; every wait capped), 5xx and connection errors retried with back-off, then an
  `ApiError` saying which request failed. Clock and sleep are injectable.
- `run_import`: the checkpoint `{p}:import:<source>:<repo>` (hash: `since`, and per request
  done `pr:<number>` = its `updated_at`), so a re-run skips what an interrupted one finished
  and a request updated since is read again (its known events count as duplicates);
  events ingested in batches of at most 2,000 with `origin="import:<source>"`; a request is
  marked done only after all its events were ingested.
"""
from __future__ import annotations

import copy
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol
from urllib.parse import quote, urljoin, urlsplit

import requests

from data.timeutil import fmt_ms, now_ms, parse_duration, parse_iso

CHECKPOINT = "{p}:import:{source}:{repo}"      # hash: since, started_at, finished_at, pr:<n> -> updated_at
BATCH_MAX = 2000                               # events per ingest call
GITHUB_API = "https://api.github.com"
GITLAB_API = "https://gitlab.com/api/v4"
TOKEN_ENV = {"github": ("GITHUB_TOKEN", "QMS_GITHUB_TOKEN"), "gitlab": ("GITLAB_TOKEN", "QMS_GITLAB_TOKEN")}

Delivery = tuple[str, dict[str, Any]]
Mapper = Callable[[str, dict[str, Any], Any], "list[dict[str, Any]] | None"]


class ApiError(Exception):
    """A request the forge refused or kept failing: the message names the request, never the token."""


def token_from_env(source: str, environ: Any = None) -> str | None:
    env = os.environ if environ is None else environ
    for name in TOKEN_ENV[source]:
        if env.get(name, "").strip():
            return env[name].strip()
    return None


def parse_since(text: str, now: int | None = None) -> int:
    """`30d`, `12h`, `2w` (back from now) or an ISO date / date-time -> epoch ms."""
    now = now_ms() if now is None else now
    text = (text or "").strip()
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        return parse_iso(text if len(text) > 10 else text + "T00:00:00Z")
    except ValueError:
        raise ValueError(f"--since: not a duration or a date: {text!r} (use e.g. 30d, 12h or 2026-11-01)") from None


# --------------------------------------------------------------------------------------- HTTP

@dataclass
class Http:
    """A forge's REST API: GET JSON, follow pages, wait out rate limits, retry server errors."""
    base: str
    auth: dict[str, str] = field(default_factory=dict)
    session: Any = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    max_wait_s: float = 900.0            # the longest single wait for a rate limit
    retries: int = 4                     # attempts after the first for a 5xx / connection error
    rate_retries: int = 10               # waits for a rate limit before giving up on a request
    backoff_s: float = 1.0
    timeout_s: float = 30.0
    requests_made: int = 0
    waited_s: float = 0.0
    _not_before: float = 0.0

    def __post_init__(self) -> None:
        self.base = self.base.rstrip("/")
        if self.session is None:
            self.session = requests.Session()
            self.session.headers["User-Agent"] = "qms-dashboard-import"

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base + "/" + path.lstrip("/")

    def _wait(self, seconds: float) -> None:
        seconds = max(0.0, min(float(seconds), self.max_wait_s))
        self.waited_s += seconds
        self.sleep(seconds)

    def _ours(self, url: str) -> bool:
        """On the API's own scheme and host: the token goes nowhere else (a next link or a
        redirect elsewhere is refused, not followed)."""
        a, b = urlsplit(url), urlsplit(self.base)
        return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())

    def get(self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> requests.Response:
        url = self.url(path)
        shown = url.split("?")[0]
        failures = rate_waits = redirects = 0
        while True:
            if not self._ours(url):
                raise ApiError(f"GET {shown}: not on {self.base}, not followed")
            if self._not_before > self.clock():
                self._wait(self._not_before - self.clock())
            try:
                self.requests_made += 1
                resp = self.session.get(url, params=params, headers={**self.auth, **(headers or {})},
                                        timeout=self.timeout_s, allow_redirects=False)
            except requests.RequestException as exc:
                failures += 1
                if failures > self.retries:
                    raise ApiError(f"GET {shown}: {type(exc).__name__} after {failures} attempts") from None
                self._wait(self.backoff_s * 2 ** (failures - 1))
                continue
            self._note_limits(resp)
            if resp.status_code in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                redirects += 1                       # a renamed repository answers 301 (same host)
                if redirects > 5:
                    raise ApiError(f"GET {shown}: more than 5 redirects")
                url, params = urljoin(url, resp.headers["Location"]), None
                shown = url.split("?")[0]
                continue
            if resp.status_code in (403, 429) and self._rate_limited(resp):
                rate_waits += 1
                if rate_waits > self.rate_retries:
                    raise ApiError(f"GET {shown}: still rate limited after {rate_waits - 1} waits")
                self._wait(self._limit_wait(resp))
                continue
            if resp.status_code >= 500:
                failures += 1
                if failures > self.retries:
                    raise ApiError(f"GET {shown} answered {resp.status_code} {resp.reason} after {failures} attempts")
                self._wait(self.backoff_s * 2 ** (failures - 1))
                continue
            if resp.status_code >= 400:
                raise ApiError(f"GET {shown} answered {resp.status_code}: {_message(resp)}{_hint(resp.status_code)}")
            return resp

    def json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return _body(self.get(path, params), self.url(path))

    def pages(self, path: str, params: dict[str, Any] | None = None, key: str | None = None) -> Iterator[list[Any]]:
        """Each page's items (`key`: the list inside an object, e.g. check-runs' `check_runs`),
        following `Link: rel="next"`, else GitLab's `X-Next-Page`."""
        url: str | None = self.url(path)
        while url:
            resp = self.get(url, params)
            body = _body(resp, url)
            items = body.get(key, []) if key and isinstance(body, dict) else body
            if not isinstance(items, list):
                raise ApiError(f"GET {url.split('?')[0]}: expected a list{f' in {key!r}' if key else ''}")
            yield items
            nxt = resp.links.get("next", {}).get("url")
            if nxt:
                url, params = nxt, None              # the next link carries the query
            elif resp.headers.get("X-Next-Page", "").strip().isdigit():
                url, params = self.url(path), {**(params or {}), "page": resp.headers["X-Next-Page"].strip()}
            else:
                url = None

    # rate limits: GitHub's X-RateLimit-*, GitLab's RateLimit-*; Retry-After for secondary limits
    def _remaining(self, resp: requests.Response) -> str | None:
        return resp.headers.get("X-RateLimit-Remaining", resp.headers.get("RateLimit-Remaining"))

    def _reset(self, resp: requests.Response) -> float | None:
        raw = resp.headers.get("X-RateLimit-Reset", resp.headers.get("RateLimit-Reset"))
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None

    def _note_limits(self, resp: requests.Response) -> None:
        if (self._remaining(resp) or "").strip() == "0" and resp.status_code < 400:
            reset = self._reset(resp)
            if reset is not None:
                self._not_before = max(self._not_before, reset + 1)

    def _rate_limited(self, resp: requests.Response) -> bool:
        # GitHub's secondary limits may come as a bare 403 saying so
        return (resp.status_code == 429 or "Retry-After" in resp.headers
                or (self._remaining(resp) or "").strip() == "0" or "rate limit" in _message(resp).lower())

    def _limit_wait(self, resp: requests.Response) -> float:
        retry_after = resp.headers.get("Retry-After", "").strip()
        if retry_after.replace(".", "", 1).isdigit():
            return float(retry_after)
        reset = self._reset(resp)
        if reset is not None:
            return reset - self.clock() + 1
        return 60.0                                   # GitHub: "wait at least one minute"


def _body(resp: requests.Response, url: str) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise ApiError(f"GET {url.split('?')[0]}: the answer is not JSON") from None


def _message(resp: requests.Response) -> str:
    try:
        body = resp.json()
        msg = body.get("message") or body.get("error") if isinstance(body, dict) else None
    except ValueError:
        msg = None
    return str(msg or resp.reason or "error")[:300]


def _hint(status: int) -> str:
    if status == 401:
        return " (is the token right? set GITHUB_TOKEN / GITLAB_TOKEN)"
    if status == 404:
        return " (is the name right, and may the token read it?)"
    return ""


# ------------------------------------------------------------------------------------ sources

class Source(Protocol):
    name: str          # github | gitlab
    repo: str          # OWNER/NAME or GROUP/NAME: the checkpoint's key

    def items(self, since_ms: int) -> list[dict[str, Any]]: ...
    def item_key(self, item: dict[str, Any]) -> str: ...
    def item_version(self, item: dict[str, Any]) -> str: ...
    def deliveries(self, item: dict[str, Any]) -> list[Delivery]: ...


def _ts(value: Any) -> int | None:
    try:
        return parse_iso(value) if value else None
    except ValueError:
        return None


class _ForgeSource:
    """What both forges share: the list of requests updated since the bound, newest first
    (stopping at the first older one), every page of a list, the checkpoint's key and version."""
    name = ""
    number_field = "number"
    flag, shape = "--repo", "OWNER/NAME"

    def __init__(self, http: Http, repo: str) -> None:
        parts = repo.split("/")
        if len(parts) < 2 or not all(parts) or (self.name == "github" and len(parts) != 2):
            raise ValueError(f"{self.flag}: expected {self.shape}, got {repo!r}")
        self.http, self.repo = http, repo
        self._home: dict[str, Any] | None = None

    def home(self) -> dict[str, Any]:
        """The repository / project object (once)."""
        if self._home is None:
            self._home = self.http.json(self.base)
        return self._home

    @property
    def base(self) -> str:
        raise NotImplementedError

    def listing(self, since_ms: int) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def items(self, since_ms: int) -> list[dict[str, Any]]:
        """Requests updated since the bound. One updated while the pages are read moves up the
        list: it may show twice (kept once) or be missed (the next run reads it)."""
        self.home()
        found: dict[str, dict[str, Any]] = {}
        for page in self.http.pages(*self.listing(since_ms)):
            for item in page:
                updated = _ts(item.get("updated_at"))
                if updated is not None and updated < since_ms:
                    return list(found.values())       # sorted by update: the rest are older
                found.setdefault(self.item_key(item), item)
        return list(found.values())

    def item_key(self, item: dict[str, Any]) -> str:
        return str(item[self.number_field])

    def item_version(self, item: dict[str, Any]) -> str:
        return str(item.get("updated_at") or "")

    def _all(self, path: str, params: dict[str, Any] | None = None, key: str | None = None) -> list[dict[str, Any]]:
        return [x for page in self.http.pages(path, {"per_page": 100, **(params or {})}, key=key) for x in page]


class GitHubSource(_ForgeSource):
    """Pull requests of one repository."""
    name = "github"

    @property
    def base(self) -> str:
        owner, name = self.repo.split("/")
        return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    def repository(self) -> dict[str, Any]:
        return self.home()

    def listing(self, since_ms: int) -> tuple[str, dict[str, Any]]:
        # no `since` on this list: sorted by update, read down to the bound
        return f"{self.base}/pulls", {"state": "all", "sort": "updated", "direction": "desc", "per_page": 100}

    def deliveries(self, item: dict[str, Any]) -> list[Delivery]:
        n = item["number"]
        repo = self.repository()
        # The list leaves out merged/merged_by/review_comments; a webhook's pull_request is the full object.
        pr = self.http.json(f"{self.base}/pulls/{n}")
        pr.setdefault("merged", pr.get("merged_at") is not None)
        reviews = self._all(f"{self.base}/pulls/{n}/reviews")
        comments = self._all(f"{self.base}/pulls/{n}/comments")
        # review requests, ready for review, labels, who closed it: the issue's events
        issue_events = self._all(f"{self.base}/issues/{n}/events")
        # the checks of every commit pushed to it, as their webhooks came (not only the head's)
        shas = [c["sha"] for c in self._all(f"{self.base}/pulls/{n}/commits") if c.get("sha")]
        head = (pr.get("head") or {}).get("sha")
        if head and head not in shas:
            shas.append(head)
        runs: list[dict[str, Any]] = []
        statuses: list[dict[str, Any]] = []
        for sha in shas:
            # filter=all: every run, re-runs too (the default is only the latest per name)
            runs += self._all(f"{self.base}/commits/{sha}/check-runs", {"filter": "all"}, key="check_runs")
            statuses += [{**st, "sha": sha} for st in self._all(f"{self.base}/commits/{sha}/statuses")]
        return github_deliveries(pr, repo, reviews, comments, runs, issue_events, statuses)


STEP_ISSUE_EVENTS = ("review_requested", "ready_for_review", "labeled")


def github_deliveries(pr: dict[str, Any], repo: dict[str, Any], reviews: list[dict[str, Any]],
                      comments: list[dict[str, Any]], runs: list[dict[str, Any]],
                      issue_events: list[dict[str, Any]] = (), statuses: list[dict[str, Any]] = ()) -> list[Delivery]:
    """The webhook deliveries one pull request's history stands for, in time order: opened,
    review requests / ready for review / labels (from the issue's events), each submitted
    review, each review comment, each completed check run and commit status (a status's `sha`:
    its commit, default the head), closed."""
    timed: list[tuple[int, int, Delivery]] = []

    def add(ts: Any, order: int, name: str, payload: dict[str, Any]) -> None:
        timed.append((_ts(ts) or 0, order, (name, payload)))

    def at(ts: Any, **changes: Any) -> dict[str, Any]:
        """The pull request as a delivery at `ts` carried it: open, updated then."""
        then = copy.deepcopy(pr)
        then.update(state="open", merged=False, merged_at=None, closed_at=None, merged_by=None, updated_at=ts,
                    **changes)
        return then

    number = pr["number"]
    add(pr.get("created_at"), 0, "pull_request",
        {"action": "opened", "number": number, "pull_request": at(pr.get("created_at")),
         "repository": repo, "sender": pr.get("user")})
    closer = None
    for ev in issue_events:
        kind = ev.get("event")
        if kind == "closed":
            closer = ev.get("actor") or closer
        if kind not in STEP_ISSUE_EVENTS:
            continue
        payload: dict[str, Any] = {"action": kind, "number": number, "pull_request": at(ev.get("created_at")),
                                   "repository": repo, "sender": ev.get("actor")}
        if kind == "review_requested":
            if ev.get("requested_reviewer"):
                payload["requested_reviewer"] = ev["requested_reviewer"]
            elif ev.get("requested_team"):
                payload["requested_team"] = ev["requested_team"]
        if kind == "labeled":
            payload["label"] = ev.get("label")
        add(ev.get("created_at"), 1, "pull_request", payload)
    # a dismissed review says only DISMISSED now; its issue event keeps the verdict it was sent with
    verdict_then = {(ev.get("dismissed_review") or {}).get("review_id"): (ev.get("dismissed_review") or {}).get("state")
                    for ev in issue_events if ev.get("event") == "review_dismissed"}
    for rv in reviews:
        state = str(rv.get("state") or "").lower()
        if state == "pending" or not rv.get("submitted_at"):
            continue                               # not submitted: no webhook was sent
        if state == "dismissed" and verdict_then.get(rv.get("id")):
            state = str(verdict_then[rv.get("id")]).lower()
        review = {**rv, "state": state}            # webhooks spell review states in lower case
        add(rv.get("submitted_at"), 2, "pull_request_review",
            {"action": "submitted", "review": review, "pull_request": pr, "repository": repo,
             "sender": rv.get("user")})
    for cm in comments:
        add(cm.get("created_at"), 2, "pull_request_review_comment",
            {"action": "created", "comment": cm, "pull_request": pr, "repository": repo, "sender": cm.get("user")})
    ref = {"url": pr.get("url"), "id": pr.get("id"), "number": number,
           "head": {k: (pr.get("head") or {}).get(k) for k in ("ref", "sha", "repo")},
           "base": {k: (pr.get("base") or {}).get(k) for k in ("ref", "sha", "repo")}}
    for run in runs:
        if run.get("status") != "completed":
            continue                               # still running: its completion is still to come
        add(run.get("completed_at"), 3, "check_run",
            {"action": "completed", "check_run": {**run, "pull_requests": [ref]},
             "repository": repo, "sender": (run.get("app") or {}).get("owner")})
    head = (pr.get("head") or {}).get("sha")
    for st in statuses:
        add(st.get("updated_at"), 3, "status",
            {"id": st.get("id"), "sha": st.get("sha") or head, "name": repo.get("full_name"), "target_url": st.get("target_url"),
             "context": st.get("context"), "description": st.get("description"), "state": st.get("state"),
             "created_at": st.get("created_at"), "updated_at": st.get("updated_at"),
             "repository": repo, "sender": st.get("creator"),
             # the receiver adds the pull requests whose head it saw; here it is this one
             "pull_requests": [ref]})
    if pr.get("state") == "closed":
        add(pr.get("closed_at"), 4, "pull_request",
            {"action": "closed", "number": number, "pull_request": pr, "repository": repo,
             "sender": pr.get("merged_by") or closer or pr.get("user")})
    timed.sort(key=lambda t: (t[0], t[1]))
    return [d for _, _, d in timed]


class GitLabSource(_ForgeSource):
    """Merge requests of one project (GROUP/NAME, subgroups too)."""
    name = "gitlab"
    number_field = "iid"
    flag, shape = "--project", "GROUP/NAME"

    @property
    def base(self) -> str:
        return f"/projects/{quote(self.repo, safe='')}"

    def project(self) -> dict[str, Any]:
        return self.home()

    def listing(self, since_ms: int) -> tuple[str, dict[str, Any]]:
        return f"{self.base}/merge_requests", {"updated_after": fmt_ms(since_ms), "order_by": "updated_at",
                                               "sort": "desc", "scope": "all", "state": "all", "per_page": 100}

    def deliveries(self, item: dict[str, Any]) -> list[Delivery]:
        iid = item["iid"]
        project = self.project()
        mr = self.http.json(f"{self.base}/merge_requests/{iid}")
        discussions = self._all(f"{self.base}/merge_requests/{iid}/discussions")
        # system notes say when each approval happened (the approvals endpoint has no times)
        notes = self._all(f"{self.base}/merge_requests/{iid}/notes", {"sort": "asc", "order_by": "created_at"})
        # each push: the head commit at any time (what a hook then carried as last_commit)
        versions = self._all(f"{self.base}/merge_requests/{iid}/versions")
        labels = self._all(f"{self.base}/merge_requests/{iid}/resource_label_events")
        pipelines = []
        for p in self._all(f"{self.base}/merge_requests/{iid}/pipelines"):
            detail = self.http.json(f"{self.base}/pipelines/{p['id']}")
            jobs = self._all(f"{self.base}/pipelines/{p['id']}/jobs", {"include_retried": "true"})
            pipelines.append((detail, jobs))
        return gitlab_deliveries(mr, project, discussions, notes, versions, pipelines, labels)


def _head_at(versions: list[dict[str, Any]], ts: Any) -> dict[str, Any] | None:
    """The merge request's head commit at `ts`: its latest version (push) created by then."""
    t = _ts(ts)
    best: tuple[int, dict[str, Any]] | None = None
    for v in versions:
        vt = _ts(v.get("created_at"))
        if vt is not None and (t is None or vt <= t) and (best is None or vt > best[0]):
            best = (vt, v)
    if best is None:
        return None
    return {"id": best[1].get("head_commit_sha"), "timestamp": best[1].get("created_at")}


_FRACTION = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.\d+(Z|[+-]\d\d:?\d\d)$")


def _to_the_second(obj: Any) -> Any:
    """GitLab's hooks carry times to the second, its REST API to the millisecond: an id made
    from a time (a close, a step) must come out the same, so the import's times are cut too."""
    if isinstance(obj, dict):
        return {k: (_FRACTION.sub(r"\1\2", v) if isinstance(v, str) and (k.endswith("_at") or k == "timestamp")
                    else _to_the_second(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_the_second(v) for v in obj]
    return obj


_GL_MR_REF = re.compile(r"^refs/merge-requests/\d+/(?:head|merge|train)$")
_REVIEW_REQUEST = re.compile(r"^requested review from (.+)$", re.I | re.S)
_MENTION = re.compile(r"@([\w.\-]+)")
_READY = re.compile(r"^marked (?:this merge request )?as \**ready\b", re.I)


def _update_changes(note: dict[str, Any]) -> dict[str, Any] | None:
    """The `changes` of the update hook a system note stands for: reviewers requested (only the
    new ones are known: they are the whole `current`), out of draft; else None."""
    body = str(note.get("body") or "").strip()
    m = _REVIEW_REQUEST.match(body)
    if m:
        added = [{"username": u} for u in _MENTION.findall(m.group(1))]
        return {"reviewers": {"previous": [], "current": added}} if added else None
    if _READY.match(body):
        return {"draft": {"previous": True, "current": False}}
    return None


def gitlab_deliveries(mr: dict[str, Any], project: dict[str, Any], discussions: list[dict[str, Any]],
                      notes: list[dict[str, Any]], versions: list[dict[str, Any]],
                      pipelines: list[tuple[dict[str, Any], list[dict[str, Any]]]],
                      label_events: list[dict[str, Any]] = ()) -> list[Delivery]:
    """The hook deliveries one merge request's history stands for, in time order, in the shapes
    integrations/gitlab.py documents for the import: open; from the system notes each approval
    and each update (reviewers requested, marked ready); each label added; each note of each
    discussion; each merge request pipeline with its jobs; merge / close."""
    timed: list[tuple[int, int, Delivery]] = []
    proj = {k: project.get(k) for k in ("id", "name", "description", "web_url", "path_with_namespace",
                                         "default_branch")}

    def add(ts: Any, order: int, name: str, payload: dict[str, Any]) -> None:
        timed.append((_ts(ts) or 0, order, (name, _to_the_second(payload))))

    def mr_hook(action: str, user: Any, ts: Any, changes: dict[str, Any] | None = None, **then: Any) -> dict[str, Any]:
        attrs = {**copy.deepcopy(mr), "action": action, "updated_at": ts, **then}
        head = _head_at(versions, ts)
        if head:
            attrs["last_commit"] = head
        return {"object_kind": "merge_request", "event_type": "merge_request", "user": user,
                "project": proj, "object_attributes": attrs, "changes": changes or {}}

    add(mr.get("created_at"), 0, "Merge Request Hook",
        mr_hook("open", mr.get("author"), mr.get("created_at"), state="opened", merged_at=None, closed_at=None,
                merged_by=None, closed_by=None))
    for note in notes:
        body = str(note.get("body") or "").strip().lower()
        if not note.get("system"):
            continue
        if body.startswith("approved this merge request"):
            add(note.get("created_at"), 1, "Merge Request Hook",
                mr_hook("approval", note.get("author"), note.get("created_at"), state="opened"))
        elif (changes := _update_changes(note)) is not None:
            add(note.get("created_at"), 1, "Merge Request Hook",
                mr_hook("update", note.get("author"), note.get("created_at"), changes, state="opened"))
    for ev in label_events:
        if ev.get("action") == "add" and isinstance(ev.get("label"), dict):
            label = {"title": ev["label"].get("name"), "id": ev["label"].get("id")}
            add(ev.get("created_at"), 1, "Merge Request Hook",
                mr_hook("update", ev.get("user"), ev.get("created_at"),
                        {"labels": {"previous": [], "current": [label]}}, state="opened"))
    for disc in discussions:
        for note in disc.get("notes") or []:
            if note.get("system"):
                continue                           # system notes are no note hook
            then = copy.deepcopy(mr)
            head = _head_at(versions, note.get("resolved_at") or note.get("created_at"))
            if head:
                then["last_commit"] = head
            add(note.get("created_at"), 2, "Note Hook",
                {"object_kind": "note", "event_type": "note", "user": note.get("author"), "project": proj,
                 "project_id": project.get("id"), "merge_request": then,
                 # a hook's note text is `note`; the REST API's `body`
                 "object_attributes": {**note, "note": note.get("body"), "noteable_type": "MergeRequest",
                                       "discussion_id": disc.get("id")}})
    for pipe, jobs in pipelines:
        is_mr_pipeline = pipe.get("source") == "merge_request_event" or bool(_GL_MR_REF.match(str(pipe.get("ref") or "")))
        payload = {"object_kind": "pipeline", "object_attributes": pipe, "project": proj, "user": pipe.get("user"),
                   "commit": {"id": pipe.get("sha")}, "builds": jobs}
        if is_mr_pipeline:                         # a hook carries the merge request for these only
            payload["merge_request"] = {"id": mr.get("id"), "iid": mr.get("iid"), "title": mr.get("title"),
                                        "source_branch": mr.get("source_branch"),
                                        "target_branch": mr.get("target_branch"), "state": mr.get("state"),
                                        "url": mr.get("web_url")}
        add(pipe.get("finished_at") or pipe.get("updated_at"), 3, "Pipeline Hook", payload)
    if mr.get("state") == "merged":
        ts = mr.get("merged_at") or mr.get("updated_at")
        add(ts, 4, "Merge Request Hook", mr_hook("merge", mr.get("merged_by") or mr.get("merge_user"), ts))
    elif mr.get("state") == "closed":
        ts = mr.get("closed_at") or mr.get("updated_at")
        add(ts, 4, "Merge Request Hook", mr_hook("close", mr.get("closed_by"), ts))
    timed.sort(key=lambda t: (t[0], t[1]))
    return [d for _, _, d in timed]


# ------------------------------------------------------------------------------------- import

@dataclass
class ImportSummary:
    source: str
    repo: str
    since_ms: int
    found: int = 0                 # requests updated since the bound
    skipped: int = 0               # already imported, unchanged since (checkpoint)
    imported: int = 0              # read and ingested now
    deliveries: int = 0            # webhook-equivalent deliveries built
    unmapped: int = 0              # deliveries the mapper does not map (None)
    events: int = 0                # events the mapper produced
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    interrupted: str | None = None

    def line(self) -> str:
        return (f"{self.source} {self.repo}: {self.found} found, {self.imported} imported, {self.skipped} "
                f"already imported; {self.deliveries} deliveries, {self.events} events: accepted "
                f"{self.accepted}, duplicates {self.duplicates}, rejected {self.rejected}")

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("source", "repo", "since_ms", "found", "skipped", "imported",
                                              "deliveries", "unmapped", "events", "accepted", "duplicates",
                                              "rejected", "errors", "interrupted")}


def checkpoint_key(prefix: str, source: str, repo: str) -> str:
    return CHECKPOINT.format(p=prefix, source=source, repo=repo)


def default_mapper(source: str) -> Mapper:
    import importlib
    return importlib.import_module(f"integrations.{source}").map_delivery


def run_import(source: Source, *, r: Any, prefix: str, ingest: Callable[[list[dict[str, Any]], str], Any],
               since_ms: int, mapping: Any = None, mapper: Mapper | None = None, restart: bool = False,
               batch_max: int = BATCH_MAX, progress: Any = None,
               after_item: Callable[[int, dict[str, Any]], None] | None = None,
               clock_ms: Callable[[], int] = now_ms) -> ImportSummary:
    """Import every request of `source` updated since `since_ms`; see the module's docstring.
    `ingest(events, origin)` returns an IngestResult; `progress` is a tqdm-like bar (total, update);
    `after_item(i, item)` runs after each request was read (tests interrupt there)."""
    mapper = mapper or default_mapper(source.name)
    if mapping is None:
        from integrations.mapping import Mapping
        mapping = Mapping.default()
    key = checkpoint_key(prefix, source.name, source.repo)
    origin = f"import:{source.name}"
    summary = ImportSummary(source.name, source.repo, since_ms)
    if restart:
        r.delete(key)
    done = {k.decode()[3:]: v.decode() for k, v in r.hgetall(key).items() if k.startswith(b"pr:")}
    r.hset(key, mapping={"since": since_ms, "started_at": fmt_ms(clock_ms())})
    r.hdel(key, "finished_at")
    items = source.items(since_ms)
    summary.found = len(items)
    if progress is not None:
        progress.total = len(items)
        progress.refresh()
    pending: list[dict[str, Any]] = []
    pending_done: dict[str, str] = {}

    def flush() -> None:
        nonlocal pending
        for start in range(0, len(pending), batch_max):
            res = ingest(pending[start:start + batch_max], origin)
            summary.accepted += res.accepted
            summary.duplicates += res.duplicates
            summary.rejected += res.rejected
            for err in res.errors[:20]:
                summary.errors.append(f"{err.get('id') or '-'}: {'; '.join(err.get('errors') or [])}")
        pending = []
        if pending_done:
            r.hset(key, mapping={f"pr:{k}": v for k, v in pending_done.items()})
            pending_done.clear()

    try:
        for i, item in enumerate(items):
            ident, version = source.item_key(item), source.item_version(item)
            if done.get(ident) == version:
                summary.skipped += 1
            else:
                events, ok = [], True
                for name, payload in source.deliveries(item):
                    summary.deliveries += 1
                    try:
                        mapped = mapper(name, payload, mapping)
                    except Exception as exc:          # a mapper bug: reported, this request left undone
                        ok = False
                        summary.errors.append(f"#{ident} {name}: {type(exc).__name__}: {exc}")
                        continue
                    if mapped is None:
                        summary.unmapped += 1
                    else:
                        events += mapped
                summary.events += len(events)
                pending += events
                if ok:
                    pending_done[ident] = version
                summary.imported += 1
                if len(pending) >= batch_max:
                    flush()
            if progress is not None:
                progress.update(1)
            if after_item is not None:
                after_item(i, item)
        flush()
        r.hset(key, "finished_at", fmt_ms(clock_ms()))
    except BaseException as exc:
        # what was read completely is kept (ingested and checkpointed), so a re-run resumes after it
        summary.interrupted = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        try:
            flush()
        except Exception:
            pass
        try:
            exc.import_summary = summary            # type: ignore[attr-defined]  (what the caller may show)
        except AttributeError:
            pass
        raise
    return summary


def make_source(kind: str, target: str, api_url: str | None, token: str | None, **http_kw: Any) -> Source:
    if api_url is not None and not api_url.startswith(("http://", "https://")):
        raise ValueError(f"--api-url: expected an http:// or https:// URL, got {api_url!r}")
    if kind == "github":
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        http = Http(api_url or GITHUB_API, {"Accept": "application/vnd.github+json",
                                            "X-GitHub-Api-Version": "2022-11-28", **auth}, **http_kw)
        return GitHubSource(http, target)
    if kind == "gitlab":
        http = Http(api_url or GITLAB_API, {"PRIVATE-TOKEN": token} if token else {}, **http_kw)
        return GitLabSource(http, target)
    raise ValueError(f"unknown source {kind!r} (github, gitlab)")


def load_mapping(settings: Any) -> Any:
    """The mapping file the receivers use (setting `integrations_path`, default
    config/integrations.yaml); a refused file raises integrations.mapping.MappingError."""
    from integrations.mapping import load
    return load(getattr(settings, "integrations_path", None) or None)
