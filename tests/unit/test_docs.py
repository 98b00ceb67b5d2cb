"""The documentation stands alone: README.md and docs/*.md link only inside the repository,
to files (and headings) that exist, and what they show — the worked event example, the
alert rule and conditions, the settings table — is what the code accepts."""
from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import orjson
import pytest

from alerts.rules import parse_condition, parse_rules
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
