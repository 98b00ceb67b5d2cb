"""Types of the values Dash callbacks receive, for their `secure_callback(inputs=...)`
declarations: what the page's own components send, bounded. The request guard checks each
value strictly against them (auth/callback_schema.py) before a callback runs, so callbacks
can rely on the types their signatures state."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.validation import Clicks, Name, Text, Timeframe

Pathname = Text(2048) | None               # dcc.Location.pathname
Search = Text(4096) | None                 # dcc.Location.search ("?timeframe=...")
Count = Clicks | None                      # n_clicks, n_intervals
Version = Annotated[int, Field(ge=0)] | None    # a store bumped by the page
TimeframeValue = Timeframe | None
Theme = Literal["light", "dark"] | None
Choice = Text(300) | None                  # a dropdown's or a text field's value
Ignored = Any                              # read only as a trigger; bounded by the JSON depth cap


class _Open(BaseModel):
    """Components add keys over time: the ones a callback reads are typed, others pass."""
    model_config = ConfigDict(extra="allow")


Scalar = str | int | float | bool | None
LongName = Text(500)
Word = Text(50)


class _Point(_Open):
    customdata: Scalar | Annotated[list[Scalar], Field(max_length=20)] = None


class ClickData(_Open):
    """A Plotly graph's clickData: the points clicked."""
    points: Annotated[list[_Point], Field(max_length=1000)] = []


class EventsSpec(_Open):
    """The drill-down page's store: which KPI, window (its end pinned when the page opened)
    and filters (repository/team, gate, agent)."""
    kpi: Name
    timeframe: TimeframeValue = None
    scope: Annotated[list[Name], Field(min_length=2, max_length=2)] | None = None
    end: Annotated[int, Field(ge=0, le=1 << 45)] | None = None
    gate: Name | None = None
    agent: Name | None = None


class RowsRequest(_Open):
    """AG Grid's infinite row model asking for rows [startRow, endRow)."""
    startRow: Annotated[int, Field(ge=0, le=100_000_000)] = 0       # noqa: N815 (AG Grid's names)
    endRow: Annotated[int, Field(ge=0, le=100_000_000)] = 100       # noqa: N815


class AlertRow(_Open):
    """A row of the alerts grid as AG Grid sends it back (selectedRows)."""
    id: LongName
    rule: LongName | None = None
    status: Word | None = None


AlertRows = Annotated[list[AlertRow], Field(max_length=1000)] | None
Severity = Literal["critical", "warning", "info"] | None
AlertStatus = Literal["firing", "pending", "acknowledged", "resolved", "no_data"] | None


# --- the dashboard editor (callbacks/edit.py) ---------------------------------------------------
class GridItem(_Open):
    """One cell of the dashboard grid's layout as react-grid-layout reports it."""
    i: Text(100)                                                        # type: ignore[valid-type]
    x: Annotated[int, Field(ge=0, le=1000)]
    y: Annotated[int, Field(ge=0, le=1_000_000)]
    w: Annotated[int, Field(ge=1, le=1000)]
    h: Annotated[int, Field(ge=1, le=10_000)]


GridLayouts = Annotated[dict[Word, Annotated[list[GridItem], Field(max_length=200)]], Field(max_length=10)] | None
Flag = bool | None                           # a boolean store (edit mode)


class _Due(BaseModel):
    w: Annotated[list[Text(200)], Field(max_length=200)]    # type: ignore[valid-type]
    t: float


Due = _Due | None                            # the widgets whose own interval fired (callbacks/dashboard.py)
Number = int | float | None                  # a number field
Choices = Annotated[list[Text(300)], Field(max_length=50)] | None     # a multi-select or a checklist  # type: ignore[valid-type]


class Notice(_Open):
    """What an action of the dashboard list did (its `dl-*-done` store), shown once: a new
    number `n` each time; `lines`: a refused definition's errors (widget and field)."""
    n: Annotated[int, Field(ge=0)]
    text: Text(2000) | None = None
    level: Literal["success", "info", "warning", "danger"] | None = None
    lines: Annotated[list[Text(1000)], Field(max_length=50)] = []


Upload = Text(3_000_000) | None           # dcc.Upload.contents: a data: URL, base64 (a file of up to 2 MB)
