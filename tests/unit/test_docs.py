"""The documentation stands alone: README.md and docs/*.md link only inside the repository,
to files (and headings) that exist, and what they show — the worked event example, the
alert rule and conditions, the settings table, the dashboard definition reference — is what
the code accepts."""
from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any, get_args

import orjson
import pytest
import yaml

from alerts.rules import parse_condition, parse_rules
from dashboards import sources
from dashboards.provision import load_file
from dashboards.schema import (NEEDS_METRIC, SOURCE_KINDS, WIDGET_TYPES, Dashboard, DataSource, DefinitionError,
                               DisplayOptions, Filters, Position, Thresholds, Transform, Visibility, Widget)
from dashboards.schema import validate as validate_definition
from data.events import parse_body, validate
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|^\s*\[[^\]\n]+\]:\s*<?(\S+?)>?\s*$", re.M)
OUTSIDE = re.compile(r"\.\./shared|shared/(spec|seed)/")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    body = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", body, re.M)}


def bad_links(path: Path, text: str | None = None) -> list[str]:
    """Every link of a Markdown file that leaves the repository, names a missing file, or a
    missing heading; `text` stands in for the file's content (to check another version)."""
    raw = path.read_text(encoding="utf-8") if text is None else text
    problems = [f"{path.name}: mentions {m.group(0)!r} (not in a clone)" for m in OUTSIDE.finditer(raw)]
    body = CODE_SPAN.sub("x", FENCE.sub("", raw))
    for m in LINK.finditer(body):
        target = m.group(1) or m.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):      # http:, https:, mailto: — not a repository path
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if file_part.startswith("/") or not dest.is_relative_to(ROOT):
            problems.append(f"{path.name}: {target} is outside the repository")
        elif not dest.exists():
            problems.append(f"{path.name}: {target} does not exist")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{path.name}: {target}: no such heading")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_doc001_readme_and_docs_link_only_to_what_a_clone_has(doc: Path) -> None:
    assert bad_links(doc) == []


def test_doc002_the_link_check_finds_each_kind_of_bad_link() -> None:
    text = ("[spec](../shared/spec/API.md) [abs](/etc/passwd) [gone](docs/NOPE.md) [h](docs/API.md#no-such)\n"
            "[ok](docs/API.md#authentication) [web](https://example.com/x) `[code](../x)`\n[ref]: ../../outside.md\n")
    found = bad_links(ROOT / "README.md", text)
    assert len(found) == 6, found                   # ../shared twice (mention and link), abs, gone, heading, ref
    assert sum("outside the repository" in p for p in found) == 3


def test_doc003_every_setting_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = [Settings.env_name(f.name) for f in fields(Settings) if f.name not in ("extra", "config_path")]
    assert [n for n in names if f"`{n}`" not in readme] == []


def test_doc004_the_worked_curl_example_answers_what_events_md_shows() -> None:
    text = (ROOT / "docs" / "EVENTS.md").read_text(encoding="utf-8")
    body = re.search(r"-d '(\{\"events\".*?)'\n```", text, re.S).group(1)
    shown = orjson.loads(re.search(r"```json\n(\{\"accepted\".*?)\n```", text, re.S).group(1))
    items = parse_body(body.encode(), 10_000, 65_536)
    checked = [validate(item) for item in items]
    errors = [{"index": i, "id": item["id"], "errors": errs} for i, (item, (_, _, errs)) in enumerate(zip(items, checked))
              if errs]
    assert {"accepted": len(items) - len(errors), "duplicates": 0, "rejected": len(errors), "errors": errors} == shown
    xadd = re.search(r"XADD qms:events .*? e \\\n  '(\{.*?\})'", text, re.S).group(1)
    assert validate(orjson.loads(xadd))[2] == []


def test_doc005_the_alert_examples_are_rules_the_parser_accepts() -> None:
    text = (ROOT / "docs" / "ALERTS.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(\w*)\n(.*?)```", text, re.S)
    rule_file = next(b for lang, b in blocks if lang == "yaml" and b.startswith("alert_rules:"))
    assert [r.name for r in parse_rules(rule_file, "docs/ALERTS.md")] == ["High Queue Depth", "Quality Score Drop"]
    examples = next(b for lang, b in blocks if not lang and b.startswith("failure_rate"))
    conditions = [line.strip() for line in examples.splitlines() if line.strip()]
    assert len(conditions) == 5
    for condition in conditions:
        parse_condition(condition)


# --- docs/DASHBOARDS.md: the reference of dashboards as data ----------------------------------

DASHBOARDS = ROOT / "docs" / "DASHBOARDS.md"
SCHEMA_MODELS = (Dashboard, Widget, Position, DataSource, Filters, Transform, DisplayOptions, Thresholds, Visibility)


def literal_values(annotation: Any) -> list[str]:
    """The string values of a field's Literal types, however nested (Optional, list[...])."""
    out: list[str] = []
    for arg in get_args(annotation):
        out += [arg] if isinstance(arg, str) else literal_values(arg)
    return out


def section(text: str, heading: str) -> str:
    """The text under `## heading` up to the next `## ` heading."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def table_rows(block: str) -> list[list[str]]:
    """The cells of every Markdown table row in `block` (header and separator rows included)."""
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.splitlines()
            if line.lstrip().startswith("|")]


def spans(cell: str) -> list[str]:
    return [m.group(0)[1:-1] for m in CODE_SPAN.finditer(cell)]


def dashboards_doc_problems(text: str) -> list[str]:
    """What DASHBOARDS.md (`text`) misses or says otherwise than the code: every field of the
    schema's models named in code, exactly the widget types of WIDGET_TYPES as rows of the
    widget table, the metric kinds and every named source as rows of the data-source tables
    with exactly the permissions dashboards.sources.permissions gives, and every display
    option as a row listing each of its allowed values."""
    problems: list[str] = []
    named = set(spans(FENCE.sub("", text)))
    problems += [f"field {m.__name__}.{f} is not named" for m in SCHEMA_MODELS for f in m.model_fields
                 if f not in named]

    types = {s for row in table_rows(section(text, "Widget types")) for s in spans(row[0])}
    problems += [f"widget type {t} has no row" for t in WIDGET_TYPES if t not in types]
    problems += [f"widget type {t} is not one of WIDGET_TYPES" for t in sorted(types - set(WIDGET_TYPES))]

    data = section(text, "Data sources")
    kinds = {s for row in table_rows(data) if len(row) == 3 for s in spans(row[0])}
    problems += [f"source kind {k} has no row" for k in NEEDS_METRIC if k not in kinds]
    documented = {(spans(row[0])[0], spans(row[1])[0]): set(spans(row[3])) for row in table_rows(data)
                  if len(row) == 4 and spans(row[0]) and spans(row[1])}
    for kind, names in SOURCE_KINDS.items():
        if kind not in named:
            problems.append(f"source kind {kind} is not named")
        for name in names:
            wanted = set(sources.permissions(DataSource(source=kind, name=name)))
            if (kind, name) not in documented:
                problems.append(f"source {kind} {name} has no row")
            elif documented[(kind, name)] != wanted:
                problems.append(f"source {kind} {name} needs {sorted(wanted)}, "
                                f"the doc says {sorted(documented[(kind, name)])}")

    options = {spans(row[0])[0]: row for row in table_rows(section(text, "A definition"))
               if len(row) == 4 and spans(row[0]) and spans(row[0])[0] in DisplayOptions.model_fields}
    for option, info in DisplayOptions.model_fields.items():
        if option not in options:
            problems.append(f"display option {option} has no row")
            continue
        values = set(spans(options[option][1]))
        problems += [f"display option {option}: value {v} not listed" for v in literal_values(info.annotation)
                     if v not in values]
    return problems


def yaml_blocks(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, re.S)


def test_doc006_dashboards_md_names_every_field_type_source_and_option_as_the_code_has_them() -> None:
    assert dashboards_doc_problems(DASHBOARDS.read_text(encoding="utf-8")) == []


def test_doc007_the_dashboards_check_finds_what_is_missing_or_wrong() -> None:
    text = DASHBOARDS.read_text(encoding="utf-8")
    broken = re.sub(r"^\| `gauge_chart` \|.*\n", "", text, flags=re.M)           # a widget type's row gone
    broken = broken.replace("`colorblind`", "`colourblind`")                      # an option value misspelt
    broken = re.sub(r"^(\| `computed` \| `roi` \|.*)`view:cost_analysis`", r"\1`view:all_metrics`", broken,
                    flags=re.M)                                                  # a wrong permission
    broken = broken.replace("`show_legend`", "`legend`")                          # a field no longer named
    found = dashboards_doc_problems(broken)
    assert "widget type gauge_chart has no row" in found
    assert "display option color_scheme: value colorblind not listed" in found
    assert "source computed roi needs ['view:cost_analysis'], the doc says ['view:all_metrics']" in found
    assert "field DisplayOptions.show_legend is not named" in found
    assert "display option show_legend has no row" in found
    assert len(found) == 5, found


def test_doc008_the_dashboards_md_example_validates_and_its_error_lines_are_what_validate_says(tmp_path: Path) -> None:
    text = DASHBOARDS.read_text(encoding="utf-8")
    example, broken = yaml_blocks(text)[:2]
    # The example as a provisioned file: the strict loader (duplicate keys refused) and the schema.
    path = tmp_path / "release-readiness.yaml"
    path.write_text(example, encoding="utf-8")
    board = load_file(path)
    assert board.id == "release-readiness"
    assert [w.type for w in board.widgets] == ["gauge_chart", "kpi_card", "kpi_card", "metric_trend", "table"]
    assert {ds.source for w in board.widgets for ds in w.data_sources} == {"kpi", "series", "state"}
    assert board.widget("open-violations").data_sources[0].transform.limit == 20
    assert board.widget("defects-trend").refresh_interval == 300
    assert board.widget("open-violations").refresh_interval == "off"
    # The broken version: refused with exactly the lines the doc shows.
    shown = re.search(r"```text\n(.*?)\n```", text, re.S).group(1)
    origin = shown.split(": ", 1)[0]
    with pytest.raises(DefinitionError) as refused:
        validate_definition(yaml.safe_load(broken), origin)
    assert str(refused.value) == shown
    assert len(refused.value.errors) == len(shown.splitlines()) == 11
