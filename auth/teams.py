"""Team scope's bookkeeping for one request: the viewer's team, the teams of the rows they are
sent (`TeamScope`, fed by a resolver such as auth.scope's, which reads Redis), how many of
those rows were other teams' (`ScopeCount`) and the sentence a page shows about it
(`scope_note`). auth.sanitize decides, with these, how each row leaves.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable


@dataclass
class ScopeCount:
    """Rows of other teams (or of no known team) in what was sanitised."""

    shown_without_names: int = 0
    left_out: int = 0

    def __add__(self, other: ScopeCount) -> ScopeCount:
        return ScopeCount(self.shown_without_names + other.shown_without_names, self.left_out + other.left_out)

    @property
    def rows(self) -> int:
        return self.shown_without_names + self.left_out


# (workflow ids, defect ids) -> (workflow id -> team, defect id -> team); None = no known team.
Resolver = Callable[[list[str], list[str]], tuple[dict[str, str | None], dict[str, str | None]]]


def _no_teams(workflows: list[str], defects: list[str]) -> tuple[dict[str, str | None], dict[str, str | None]]:
    return dict.fromkeys(workflows), dict.fromkeys(defects)


class TeamScope:
    """One viewer's team and the teams of the rows they are sent, for one request.

    `team` may be a callable, read on first need (a page that sends no row never asks).
    Teams of rows are cached, so a caller that sanitises row by row still asks once per
    workflow; `events()`/`rows()` ask once per call for all their rows. Not thread-safe:
    build one per request.
    """

    def __init__(self, viewer: str | None = None, team: str | None | Callable[[], str | None] = None,
                 resolve: Resolver = _no_teams) -> None:
        self.viewer = viewer
        self._team = team
        self._resolve = resolve
        self._wf: dict[str, str | None] = {}
        self._df: dict[str, str | None] = {}
        self.total = ScopeCount()
        self.last = ScopeCount()

    @property
    def team(self) -> str | None:
        if callable(self._team):
            self._team = self._team()
        return self._team

    def prefetch(self, workflows: Iterable[str], defects: Iterable[str] = ()) -> None:
        """Look up the teams of the rows about to be sanitised, in one call."""
        wf = sorted({w for w in workflows if w not in self._wf})
        df = sorted({d for d in defects if d not in self._df})
        if wf or df:
            got_wf, got_df = self._resolve(wf, df)
            self._wf.update({w: got_wf.get(w) for w in wf})
            self._df.update({d: got_df.get(d) for d in df})

    def owns(self, workflow: str | None, defect: str | None, people: list[Any]) -> bool | None:
        """True: the viewer's team's row (or the viewer's own); False: another team's, or of no
        known team; None: not a team's row at all (agents, queues, system events)."""
        if workflow is None and defect is None:
            return None
        if self.viewer is not None and self.viewer in people:
            return True
        if workflow is not None:
            if workflow not in self._wf:
                self.prefetch([workflow])
            row_team = self._wf[workflow]
        else:
            if defect not in self._df:
                self.prefetch((), [defect])  # type: ignore[list-item]
            row_team = self._df[defect]  # type: ignore[index]
        return row_team is not None and row_team == self.team


def scope_note(count: ScopeCount, team: str | None) -> str | None:
    """'12 rows of other teams shown without names; 3 left out' (None when nothing was scoped)."""
    if not count.rows:
        return None
    parts = []
    if count.shown_without_names:
        n = count.shown_without_names
        parts.append(f"{n:,} row{'s' if n != 1 else ''} of other teams shown without names")
    if count.left_out:
        n = count.left_out
        parts.append(f"{n:,} row{'s' if n != 1 else ''} of other teams left out")
    text = "; ".join(parts)
    if team is None:
        text += (" (your team is not known: it is the team of your latest pull request, "
                 "so every team's rows are shown as another team's)")
    return text
