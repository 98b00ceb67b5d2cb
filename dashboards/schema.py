"""A dashboard definition: the one declared schema for YAML files on disk, JSON over the API
and the edit mode alike (the seed's widget configuration, §4.2).

    id, title, owner, visibility {roles, teams, users}, default_timeframe, filters,
    widgets: [{id, type, title, position {x, y, width, height}, refresh_interval,
               data_sources: [{source, metric | name, filters, transform, timeframe}],
               display_options {...}, alert_thresholds {warning, critical, direction}}]

`validate(doc, origin)` returns a `Dashboard` or raises `DefinitionError`, whose messages
name the origin (a file, a request), the widget and the field: "config/dashboards/qa.yaml:
widget 'qa-gates': position.width: must be at most 12".
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Literal, Union

import orjson
from cachetools import LRUCache

from pydantic import (BaseModel, ConfigDict, Field, StringConstraints, ValidationError, ValidationInfo,
                      field_validator, model_validator)
from pydantic_core import PydanticCustomError
from typing_extensions import Annotated

from data.kpis import dashboard_of
from data.timeutil import TIMEFRAMES

GRID_COLUMNS = 12
MAX_WIDGETS = 60
MAX_SOURCES = 8

Timeframe = Literal[tuple(TIMEFRAMES)]                                 # type: ignore[valid-type]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Column = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")]

# The widget registry's types (components.widgets.REGISTRY and the renderer): the seed's
# §4.1 names plus the views its §2 lists (tables, ROI, the developer widgets).
WIDGET_TYPES: tuple[str, ...] = (
    # metrics
    "kpi_card", "metric_trend", "gauge_chart", "progress_bar", "comparison_chart",
    # workflow
    "pipeline_visualizer", "queue_monitor", "timeline_view", "kanban_board",
    # agents
    "agent_status_grid", "workload_heatmap", "skill_matrix", "performance_radar",
    # quality
    "quality_trends", "defect_distribution", "gate_performance", "gate_table", "compliance_status",
    "risk_assessment", "risk_matrix", "code_quality", "test_coverage",
    # system
    "system_health", "error_log_viewer", "alert_summary", "audit_log",
    # developer and team
    "team_collaboration", "achievement_tracker", "skill_development",
    # generic
    "table", "stat_group",
)

# What a data source reads. `metric` names a KPI (data.kpis ids, with the per-gate and
# per-queue ones); `name` picks one of the named breakdowns, state lists or computed views.
SOURCE_KINDS: dict[str, tuple[str, ...]] = {
    "kpi": (),                     # one KPI of the window: value, previous, trend, unit, sample size
    "series": (),                  # a KPI over time: t, end, value, partial
    "drilldown": (),               # the newest events behind a KPI
    "breakdown": ("merged_by_team", "cost_by_team", "cost_by_repository", "defects_by_severity",
                  "defects_by_category", "defects_by_stage", "events_by_type"),
    "state": ("agents", "queues", "violations", "active_workflows", "my_reviews", "my_pull_requests",
              "suggested_reviews", "health"),
    "computed": ("roi", "risks", "pipeline", "gates", "team_collaboration", "code_quality", "test_coverage",
                 "achievements", "skill_development", "annotations", "alerts"),
}
NEEDS_METRIC = ("kpi", "series", "drilldown")


class DefinitionError(ValueError):
    """A definition that does not validate. `errors`: [{"widget", "field", "message"}];
    str() is one line per error, each naming the origin, the widget and the field."""

    def __init__(self, origin: str, errors: list[dict[str, Any]]) -> None:
        self.origin = origin
        self.errors = errors
        super().__init__("\n".join(self.line(e) for e in errors))

    def line(self, e: dict[str, Any]) -> str:
        where = f"widget {e['widget']!r}: " if e.get("widget") else ""
        field = f"{e['field']}: " if e.get("field") else ""
        return f"{self.origin}: {where}{field}{e['message']}"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Position(Strict):
    """On the 12-column grid; heights in rows of the grid (about 60 px each)."""
    x: int = Field(0, ge=0, le=GRID_COLUMNS - 1)
    y: int = Field(0, ge=0, le=10_000)
    width: int = Field(6, ge=1, le=GRID_COLUMNS)
    height: int = Field(4, ge=1, le=40)

    @model_validator(mode="after")
    def _fits(self) -> "Position":
        if self.x + self.width > GRID_COLUMNS:
            raise ValueError(f"x + width must be at most {GRID_COLUMNS} (x={self.x}, width={self.width})")
        return self


class Filters(Strict):
    """At most one of repository/team; a gate; an agent."""
    repository: Name | None = None
    team: Name | None = None
    gate: Name | None = None
    agent: Name | None = None

    @model_validator(mode="after")
    def _one_scope(self) -> "Filters":
        if self.repository and self.team:
            raise ValueError("filter by repository or by team, not both")
        return self

    def active(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v}


class Transform(Strict):
    """Applied to the source's frame, in this order: sort, keep columns, limit rows."""
    sort_by: Column | None = None
    descending: bool = True
    columns: list[Column] | None = Field(None, max_length=50)
    limit: int | None = Field(None, ge=1, le=10_000)


class DataSource(Strict):
    source: Literal[tuple(SOURCE_KINDS)]                                # type: ignore[valid-type]
    # Checked against `source` field by field (validate_default: a missing one is checked too),
    # so an error names the field: "data_sources[0].metric: unknown KPI 'x'".
    metric: Name | None = Field(None, validate_default=True)
    name: Name | None = Field(None, validate_default=True)
    filters: Filters = Field(default_factory=Filters)
    transform: Transform | None = None
    timeframe: Timeframe | None = None          # overrides the dashboard's
    points: int | None = Field(None, ge=2, le=500, validate_default=True)    # series only

    @field_validator("metric")
    @classmethod
    def _metric(cls, metric: str | None, info: ValidationInfo) -> str | None:
        source = info.data.get("source")
        if source in NEEDS_METRIC:
            if not metric:
                raise ValueError(f"a {source} source needs `metric` (a KPI id)")
            if dashboard_of(metric) is None:
                raise ValueError(f"unknown KPI {metric!r}")
        elif source and metric:
            raise ValueError(f"a {source} source takes `name`, not `metric`")
        return metric

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None, info: ValidationInfo) -> str | None:
        source = info.data.get("source")
        if source in NEEDS_METRIC:
            if name:
                raise ValueError(f"a {source} source takes `metric`, not `name`")
        elif source:
            allowed = SOURCE_KINDS[source]
            if not name:
                raise ValueError(f"a {source} source needs `name`, one of {', '.join(allowed)}")
            if name not in allowed:
                raise ValueError(f"unknown {source} {name!r}: one of {', '.join(allowed)}")
        return name

    @field_validator("points")
    @classmethod
    def _points(cls, points: int | None, info: ValidationInfo) -> int | None:
        if points is not None and info.data.get("source", "series") != "series":
            raise ValueError("only a series source takes `points`")
        return points

    def key(self) -> str:
        """A stable text of what this source reads (cache keys, de-duplication)."""
        return self.model_dump_json(exclude_none=True)


class DisplayOptions(Strict):
    theme: Literal["auto", "light", "dark"] = "auto"
    color_scheme: Literal["default", "status_based", "colorblind", "monochrome"] = "default"
    animation: bool = False
    interactions: list[Literal["click", "hover", "drill_down"]] = Field(default_factory=lambda: ["hover", "drill_down"])
    show_legend: bool = True
    chart: Literal["line", "area", "bar"] | None = None           # metric trends
    unit: Name | None = None                                       # overrides the source's unit in labels
    annotations: bool = True              # configuration changes and alert firings on time-series widgets
    target: float | None = None           # progress bars: the value that is 100 %
    round_money: bool | None = None       # whole dollars (cents below $10); None: on executive dashboards


class Thresholds(Strict):
    """Colours a widget by its value: `direction` says which side is bad ('above': values
    at or over the thresholds are bad, e.g. queue depth; 'below': under them, e.g. SLA
    adherence). Without a direction the metric's own direction decides."""
    warning: float | None = None
    critical: float | None = None
    direction: Literal["above", "below"] | None = None

    @model_validator(mode="after")
    def _order(self) -> "Thresholds":
        if self.warning is not None and self.critical is not None and self.direction:
            bad_high = self.direction == "above"
            if (self.critical < self.warning) if bad_high else (self.critical > self.warning):
                raise ValueError(f"critical ({self.critical:g}) must be {'at or above' if bad_high else 'at or below'}"
                                 f" warning ({self.warning:g}) when direction is {self.direction!r}")
        return self


RefreshInterval = Union[Literal["live", "off"], Annotated[int, Field(ge=5, le=86_400)]]


class Widget(Strict):
    id: Slug
    type: Literal[WIDGET_TYPES]                                         # type: ignore[valid-type]
    title: Title
    position: Position = Field(default_factory=Position)
    refresh_interval: RefreshInterval = "live"       # seconds, "live" (pushed / every data version), "off"
    data_sources: list[DataSource] = Field(default_factory=list, max_length=MAX_SOURCES)
    display_options: DisplayOptions = Field(default_factory=DisplayOptions)
    alert_thresholds: Thresholds | None = None
    description: Annotated[str, StringConstraints(max_length=1000)] | None = None

    # One line each instead of pydantic's: the 31 types listed, or one error per union member.
    @field_validator("type", "refresh_interval", mode="wrap")
    @classmethod
    def _one_line(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        try:
            return handler(value)
        except ValidationError:
            if info.field_name == "refresh_interval":
                raise ValueError('must be "live", "off" or seconds between 5 and 86400') from None
            raise ValueError(f"unknown widget type {value!r}" if isinstance(value, str)
                             else "must be a widget type name (a string)") from None


class Visibility(Strict):
    """Who may open a shared dashboard besides its owner: anyone holding one of these
    permissions, roles, teams or user names. All empty: only the owner (a personal one)."""
    permissions: list[Name] = Field(default_factory=list, max_length=50)
    roles: list[Name] = Field(default_factory=list, max_length=50)
    teams: list[Name] = Field(default_factory=list, max_length=200)
    users: list[Name] = Field(default_factory=list, max_length=500)


class Dashboard(Strict):
    id: Slug
    title: Title
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    owner: Name = "system"
    visibility: Visibility = Field(default_factory=Visibility)
    default_timeframe: Timeframe = "24h"
    filters: Filters = Field(default_factory=Filters)
    # The filter pickers the page offers (scope = one repository or team).
    filter_controls: list[Literal["scope", "gate", "agent"]] = Field(default_factory=lambda: ["scope"], max_length=3)
    tags: list[Name] = Field(default_factory=list, max_length=20)
    widgets: list[Widget] = Field(default_factory=list, max_length=MAX_WIDGETS)

    @field_validator("widgets")
    @classmethod
    def _unique(cls, widgets: list[Widget]) -> list[Widget]:
        seen: set[str] = set()
        for w in widgets:
            if w.id in seen:
                raise PydanticCustomError("duplicate_widget_id", "two widgets have this id", {"id": w.id})
            seen.add(w.id)
        return widgets

    def widget(self, widget_id: str) -> Widget | None:
        return next((w for w in self.widgets if w.id == widget_id), None)


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not (isinstance(part, str) and (part.startswith("function-") or part in ("int", "str", "literal[...]"))):
            out += ("." if out else "") + str(part)
    return out


_SLUG_TEXT = "must be 1 to 64 lower-case letters, digits, '-' or '_', starting with a letter or digit"
# pydantic's wording -> ours ("must be at most 12", as the docs show); {…} from the error's context.
_BY_TYPE = {
    "extra_forbidden": "unknown field", "missing": "required",
    "greater_than_equal": "must be at least {ge}", "less_than_equal": "must be at most {le}",
    "int_parsing": "must be a whole number", "int_type": "must be a whole number",
    "int_from_float": "must be a whole number", "float_parsing": "must be a number", "float_type": "must be a number",
    "bool_parsing": "must be true or false", "bool_type": "must be true or false", "string_type": "must be text",
    "string_too_short": "must be at least {min_length} characters",
    "string_too_long": "must be at most {max_length} characters", "too_long": "must have at most {max_length} items",
    "list_type": "must be a list", "model_type": "must be an object", "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "string_pattern_mismatch": "must be a column name: letters, digits, '_', '.', ':' or '-'",
}


def _message(err: dict[str, Any]) -> str:
    kind, ctx = err.get("type"), err.get("ctx") or {}
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "string_pattern_mismatch" and str(ctx.get("pattern", "")).startswith("^[a-z0-9]"):
        return _SLUG_TEXT
    if kind in _BY_TYPE:
        try:
            return _BY_TYPE[kind].format(**ctx)
        except (KeyError, IndexError):
            pass
    msg = str(err.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if msg.startswith("Input should be "):          # literals: "must be 'auto', 'light' or 'dark'"
        msg = "must be " + msg[len("Input should be "):]
    return msg


_PARSED: LRUCache[bytes, "Dashboard"] = LRUCache(maxsize=256)     # sha1 of a definition's JSON -> it


def parsed(raw: Any) -> Dashboard:
    """A page's definition (its `dash-def` store, sent with every refresh) as a Dashboard,
    parsed once per distinct definition in this process: the guard's permission check and the
    refresh each parsed the same 20-widget document on every call, and most pages send one of
    a few definitions. The result is shared: read it, never change it. ValidationError as
    Dashboard.model_validate."""
    try:
        sig = hashlib.sha1(orjson.dumps(raw)).digest()
    except TypeError:                 # not JSON (not from a request): parsed each time
        return Dashboard.model_validate(raw)
    found = _PARSED.get(sig)
    if found is None:
        found = _PARSED[sig] = Dashboard.model_validate(raw)
    return found


def validate(doc: Any, origin: str = "definition") -> Dashboard:
    """The definition `doc` (a parsed YAML/JSON object) as a Dashboard, or DefinitionError
    naming `origin`, the widget (by id where it has one, else by position) and the field."""
    if not isinstance(doc, dict):
        raise DefinitionError(origin, [{"widget": None, "field": None,
                                        "message": f"a dashboard definition is an object, not {type(doc).__name__}"}])
    try:
        return Dashboard.model_validate(doc)
    except ValidationError as exc:
        widgets = doc.get("widgets") if isinstance(doc.get("widgets"), list) else []
        errors = []
        for err in exc.errors(include_url=False):
            loc = tuple(err.get("loc") or ())
            widget = None
            if len(loc) >= 2 and loc[0] == "widgets" and isinstance(loc[1], int):
                w = widgets[loc[1]] if loc[1] < len(widgets) else None
                wid = w.get("id") if isinstance(w, dict) else None
                widget = wid if isinstance(wid, str) and re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", wid) \
                    else f"#{loc[1] + 1}"
                loc = loc[2:]
            field = _field(loc) or None
            if err.get("type") == "duplicate_widget_id":      # named by the id itself
                widget, field = str((err.get("ctx") or {}).get("id")), "id"
            errors.append({"widget": widget, "field": field, "message": _message(err)})
        raise DefinitionError(origin, errors) from None


def dump(d: Dashboard) -> dict[str, Any]:
    """The JSON form (defaults included, so a definition read back is complete)."""
    return d.model_dump(mode="json")
