"""What a `/_dash-update-component` body may hold for one registered callback: the envelope
Dash's renderer sends, the registered inputs/state/outputs in their registered order, and
a declared type for each input and state value (pydantic, strict: a value is accepted as
it is or refused, never converted, so the callback receives exactly what was checked).

Declared with the callback (`secure_callback(..., inputs={"url.pathname": Pathname, ...})`)
and checked by the request guard before any permission function or callback reads the body.
A dependency is named `id.property`; a pattern-matching id by its `type` (`widget-hide.n_clicks`),
and its declared type applies to each matching component's value.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import orjson
from cachetools import LRUCache

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from api.validation import InvalidInput, describe

Scalar = str | int | float | bool
WILDCARDS = ("ALL", "MATCH", "ALLSMALLER")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | dict[str, Scalar]
    property: str


class Envelope(BaseModel):
    """The body of a callback request (Dash 4's renderer; unknown keys are left to Dash)."""
    model_config = ConfigDict(extra="allow")
    output: str
    outputs: _Entry | list[_Entry | list[_Entry]]
    inputs: list[_Entry | list[_Entry]]
    state: list[_Entry | list[_Entry]] = []
    changedPropIds: list[str] = []


def stringify_id(cid: str | dict[str, Any]) -> str:
    """Dash's string form of a component id (sorted keys, compact JSON values)."""
    if isinstance(cid, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(cid[k])}" for k in sorted(cid)) + "}"
    return cid


def dependency_name(cid: str, prop: str) -> str:
    """How a schema names a registered dependency: `id.prop`, or `<type>.prop` for a pattern."""
    if cid.startswith("{"):
        pattern = json.loads(cid)
        return f"{pattern.get('type', cid)}.{prop}"
    return f"{cid}.{prop}"


@dataclass(frozen=True)
class _Dep:
    name: str                     # as the schema names it
    pattern: dict[str, Any] | None
    cid: str
    prop: str
    many: bool                    # a list of matching components (ALL, ALLSMALLER)
    adapter: TypeAdapter[Any] | None

    @classmethod
    def of(cls, cid: str, prop: str, declared: dict[str, Any]) -> _Dep:
        pattern = json.loads(cid) if cid.startswith("{") else None
        wild = [v[0] for v in (pattern or {}).values() if isinstance(v, list) and v and v[0] in WILDCARDS]
        name = dependency_name(cid, prop)
        tp = declared.get(name)
        return cls(name, pattern, cid, prop, any(w != "MATCH" for w in wild),
                   TypeAdapter(tp) if name in declared else None)

    def matches(self, entry: _Entry) -> bool:
        if entry.property != self.prop:
            return False
        if self.pattern is None:
            return entry.id == self.cid
        if not isinstance(entry.id, dict) or set(entry.id) != set(self.pattern):
            return False
        return all(isinstance(v, list) or entry.id[k] == v for k, v in self.pattern.items())

    def entries(self, item: _Entry | list[_Entry]) -> list[_Entry]:
        """The body's entries for this dependency, or InvalidInput if they are not it."""
        items = item if isinstance(item, list) else [item]
        if isinstance(item, list) != self.many or not all(self.matches(e) for e in items):
            raise InvalidInput(f"{self.name}: not the registered input")
        return items


class CallbackSchema:
    """The registered shape of one callback and the declared type of each input/state."""

    def __init__(self, key: str, callback: dict[str, Any], declared: dict[str, Any]) -> None:
        self.key = key
        self.inputs = [_Dep.of(d["id"], d["property"], declared) for d in callback["inputs"]]
        self.state = [_Dep.of(d["id"], d["property"], declared) for d in callback.get("state") or []]
        self.outputs = [_Dep.of(cid, prop, {}) for cid, prop in _outputs_of(key)]
        self.multi = key.startswith("..")
        unknown = set(declared) - {d.name for d in (*self.inputs, *self.state)}
        if unknown:
            raise ValueError(f"callback {key}: schema for inputs it does not have: {sorted(unknown)}")

    @property
    def undeclared(self) -> list[str]:
        return [d.name for d in (*self.inputs, *self.state) if d.adapter is None]

    def check(self, raw: Any) -> None:
        """Raise InvalidInput (a 400 naming the field) unless `raw` is a well-formed request
        for this callback with values of the declared types."""
        try:
            body = Envelope.model_validate(raw)
        except ValidationError as exc:
            raise InvalidInput(*describe(exc)) from None
        outputs = body.outputs if isinstance(body.outputs, list) and self.multi else [body.outputs]
        self._same(self.outputs, outputs, "outputs")
        changed: set[str] = set()
        for deps, items, group in ((self.inputs, body.inputs, "inputs"), (self.state, body.state, "state")):
            for dep, item in self._same(deps, items, group):
                for entry in dep.entries(item):
                    if group == "inputs":
                        changed.add(f"{stringify_id(entry.id)}.{entry.property}")
                    self._value(dep, entry)
        stray = [p for p in body.changedPropIds if p not in changed]
        if stray:
            raise InvalidInput(f"changedPropIds: not inputs of this callback: {[p[:80] for p in stray[:3]]}")

    def _same(self, deps: list[_Dep], items: list[Any], group: str) -> list[tuple[_Dep, Any]]:
        if len(items) != len(deps):
            raise InvalidInput(f"{group}: this callback has {len(deps)}, the request sent {len(items)}")
        pairs = list(zip(deps, items))
        if group == "outputs":
            for dep, item in pairs:
                dep.entries(item)
        return pairs

    @staticmethod
    def _value(dep: _Dep, entry: _Entry) -> None:
        if dep.adapter is None:
            raise InvalidInput(f"{dep.name}: the callback declares no schema for this input")
        value = (entry.model_extra or {}).get("value")
        # A structured value seen valid before (a page's dashboard definition, sent with each of
        # its refreshes) is not validated again: its JSON's digest is remembered, per schema (two
        # callbacks may declare the same input with different schemas; theirs live as long as the app).
        sig = None
        if isinstance(value, (dict, list)) and value:
            try:
                sig = (id(dep.adapter), hashlib.sha1(orjson.dumps(value)).digest())
            except TypeError:
                sig = None
            if sig is not None and sig in _VALID:
                return
        try:
            dep.adapter.validate_python(value, strict=True)
        except ValidationError as exc:
            raise InvalidInput(*describe(exc, dep.name)) from None
        if sig is not None:
            _VALID[sig] = True


# (the schema's identity, digest of its JSON) of structured values validated (CallbackSchema._value).
_VALID: LRUCache[tuple[int, bytes], bool] = LRUCache(maxsize=1024)


def _outputs_of(key: str) -> list[tuple[str, str]]:
    """The (id, property) pairs of a callback-map key ('a.b' or '..a.b...c.d..')."""
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    return [tuple(part.rsplit(".", 1)) for part in parts]  # type: ignore[misc]
