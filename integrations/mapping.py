"""The integrations mapping file (`config/integrations.yaml`, setting `integrations_path`):
which repositories belong to which team, which checks are which gates, which logins are
which agents, which labels mean which step. Validated by pydantic; a refused file raises
`MappingError`, whose lines name the file and the field ("config/integrations.yaml:
gates[1].step: must be one of …").

The loaded `Mapping` answers the source modules' questions and is pure (no Redis), so a
webhook and a history import map the same payload to the same events.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from typing_extensions import Annotated

from data.events import STEPS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = ROOT / "config" / "integrations.yaml"
# Deliveries that sum up other runs (a workflow run of its jobs, a suite of its check runs, a
# GitLab pipeline of its jobs): gates only where an entry lists them in `kinds`, so one CI
# run is never counted twice.
AGGREGATE_KINDS = frozenset({"workflow_run", "check_suite", "pipeline"})
DEFAULT_STEP = "dod_validation"

Step = Literal[tuple(STEPS)]                                                  # type: ignore[valid-type]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Glob = Annotated[str, StringConstraints(min_length=1, max_length=500)]
ActorKind = Literal["human", "ai", "bot"]


class MappingError(ValueError):
    """A mapping file that cannot be used; `errors` are (field, message), str() one line each
    naming the file and the field."""

    def __init__(self, origin: str, errors: list[tuple[str, str]]) -> None:
        self.origin = origin
        self.errors = errors
        super().__init__("\n".join(f"{origin}: {f}: {m}" if f else f"{origin}: {m}" for f, m in errors))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class TeamRule(_Strict):
    repo: Glob                     # owner/name or a GitLab group/project path; * and ? globs
    team: Name


class GateRule(_Strict):
    check: Glob                    # check run name, commit status context, workflow or job name; glob
    gate: Name | None = None       # gate_name (default: the check's own name)
    step: Step = DEFAULT_STEP      # the step the gate guards
    kinds: list[Name] | None = None  # deliveries it applies to (default: every kind but AGGREGATE_KINDS)


class AgentRule(_Strict):
    login: Name                    # the forge login, e.g. coderabbitai[bot]
    id: Name | None = None         # agent_id in QMS events (default: the login)
    kind: Literal["ai", "bot"] = "ai"
    cost_per_review_usd: float | None = Field(None, ge=0, le=1_000_000)


class SonarRule(_Strict):           # (H3) which repository a SonarQube project analyses
    project: Glob                  # SonarQube project key; * and ? globs
    repository: Name               # owner/name on GitHub, group/project on GitLab
    forge: Literal["github", "gitlab"] = "github"   # its pull requests: <repo>#<key> or <repo>!<key>


class MappingDoc(_Strict):
    teams: list[TeamRule] = []
    gates: list[GateRule] = []
    agents: list[AgentRule] = []
    labels: dict[Name, Step] = {}   # PR/MR label -> the step it means
    sonarqube: list[SonarRule] = []


@dataclass(frozen=True)
class GateMap:
    gate: str                      # gate_name of the events
    step: str                      # the step it guards


@dataclass(frozen=True)
class Actor:
    id: str                        # reviewer / found_by / agent_id in the events
    kind: str                      # human | ai | bot
    cost_per_review_usd: float | None = None


class Mapping:
    """A validated mapping. `Mapping.default()` has no rules: every check (but aggregates) is a
    gate named after itself guarding dod_validation; only GitHub bots are agents."""

    def __init__(self, doc: MappingDoc | None = None, origin: str = "default") -> None:
        self.doc = doc or MappingDoc()
        self.origin = origin
        self._agents = {a.login.lower(): a for a in self.doc.agents}
        self._labels = {k.lower(): v for k, v in self.doc.labels.items()}

    @classmethod
    def default(cls) -> "Mapping":
        return cls()

    def team_of(self, repo: str) -> str | None:
        """The team of a repository: the first rule whose glob matches (case-insensitive)."""
        low = repo.lower()
        return next((t.team for t in self.doc.teams if fnmatchcase(low, t.repo.lower())), None)

    def gate_of(self, check_name: str, kind: str = "check_run") -> GateMap | None:
        """The gate a check of this kind of delivery is, or None (not a gate)."""
        if not check_name:
            return None
        if not self.doc.gates:
            return None if kind in AGGREGATE_KINDS else GateMap(check_name, DEFAULT_STEP)
        for g in self.doc.gates:
            kinds = g.kinds if g.kinds is not None else None
            if (kind in kinds) if kinds is not None else kind not in AGGREGATE_KINDS:
                if fnmatchcase(check_name, g.check):
                    return GateMap(g.gate or check_name, g.step)
        return None

    def actor(self, login: str, account_type: str | None = None) -> Actor:
        """Who a login is: a configured agent (its id and kind), else a bot when the forge says
        so (`type: Bot`, a login ending in `[bot]`), else a human named by the login."""
        agent = self._agents.get(login.lower())
        if agent is not None:
            return Actor(agent.id or agent.login, agent.kind, agent.cost_per_review_usd)
        if (account_type or "").lower() == "bot" or login.lower().endswith("[bot]"):
            return Actor(login, "bot")
        return Actor(login, "human")

    def step_of_label(self, label: str) -> str | None:
        return self._labels.get(label.lower())

    def sonar_project(self, key: str) -> SonarRule | None:
        """The first `sonarqube` rule whose project glob matches the key (case-sensitive, as keys are)."""
        return next((r for r in self.doc.sonarqube if fnmatchcase(key, r.project)), None)

    @property
    def summary(self) -> dict[str, int]:
        return {"teams": len(self.doc.teams), "gates": len(self.doc.gates), "agents": len(self.doc.agents),
                "labels": len(self.doc.labels)}


def parse(doc: Any, origin: str) -> Mapping:
    """A parsed YAML document as a Mapping, or MappingError naming `origin` and each field."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise MappingError(origin, [("", f"the top level must be a mapping, not {type(doc).__name__}")])
    try:
        return Mapping(MappingDoc.model_validate(doc), origin)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False):
            field = ""
            for part in err.get("loc") or ():
                field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
            msg = err.get("msg", "invalid")
            if err.get("type") == "extra_forbidden":
                msg = "unknown field"
            elif err.get("type") == "literal_error":
                msg = "must be one of " + str((err.get("ctx") or {}).get("expected", ""))
            errors.append((field, msg))
        raise MappingError(origin, errors) from None


def load(path: str | os.PathLike[str] | None = None) -> Mapping:
    """The mapping file at `path` (default config/integrations.yaml; a missing default file is
    the empty mapping, a missing named file an error)."""
    p = Path(path) if path else DEFAULT_PATH
    if not p.is_file():
        if path:
            raise MappingError(str(p), [("", "no such file")])
        return Mapping.default()
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise MappingError(str(p), [("", f"invalid YAML: {exc}")]) from None
    return parse(doc, str(p))


class MappingFile:
    """The mapping of a running app: re-read when the file changes (at most once a second);
    a refused change keeps the last good mapping and says why in `error`."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else DEFAULT_PATH
        self.explicit = bool(path)
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0
        self.error: str | None = None
        self._mapping = Mapping.default()
        self._reload()

    def _reload(self) -> None:
        try:
            st = self.path.stat()
            stamp: tuple[float, int] | None = (st.st_mtime, st.st_size)
        except OSError:
            stamp = None
        if stamp == self._stamp and self._stamp is not None:
            return
        self._stamp = stamp
        try:
            self._mapping = load(str(self.path) if self.explicit or stamp else None)
            self.error = None
        except MappingError as exc:
            self.error = str(exc)

    def get(self) -> Mapping:
        import time
        now = time.monotonic()
        if now - self._checked >= 1.0:
            self._checked = now
            self._reload()
        return self._mapping
