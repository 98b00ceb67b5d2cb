"""Personal settings (theme, widget configuration), one JSON document per user in the
`{p}:prefs` hash; updates merge into it under WATCH so two tabs never lose each other's."""
from __future__ import annotations

from typing import Any, Callable

import orjson
import redis

from data.keys import Keys

WIDGET_KEYS = {"hidden": bool}


class PrefsError(ValueError):
    """A widget configuration that is not allowed."""


def check_widget_config(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict) or not config:
        raise PrefsError("the configuration must be a JSON object, e.g. {\"hidden\": true}")
    unknown = sorted(set(config) - set(WIDGET_KEYS))
    if unknown:
        raise PrefsError(f"unknown settings {unknown}: allowed are {sorted(WIDGET_KEYS)}")
    for key, kind in WIDGET_KEYS.items():
        if key in config and not isinstance(config[key], kind):
            raise PrefsError(f"{key}: must be {kind.__name__}")
    return dict(config)


class Prefs:
    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.key = keys.prefs

    def get(self, user: str) -> dict[str, Any]:
        raw = self.r.hget(self.key, user)
        return orjson.loads(raw) if raw else {}

    def update(self, user: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        def apply(p: Any) -> dict[str, Any]:
            raw = p.hget(self.key, user)
            doc = orjson.loads(raw) if raw else {}
            change(doc)
            p.multi()
            p.hset(self.key, user, orjson.dumps(doc))
            return doc
        return self.r.transaction(apply, self.key, value_from_callable=True)

    def set_theme(self, user: str, theme: str) -> None:
        self.update(user, lambda doc: doc.__setitem__("theme", theme))

    def configure_widget(self, user: str, widget_id: str, config: dict[str, Any]) -> dict[str, Any]:
        config = check_widget_config(config)

        def change(doc: dict[str, Any]) -> None:
            doc.setdefault("widgets", {}).setdefault(widget_id, {}).update(config)
        return self.update(user, change)["widgets"][widget_id]

    def show_all(self, user: str) -> None:
        def change(doc: dict[str, Any]) -> None:
            for cfg in (doc.get("widgets") or {}).values():
                cfg["hidden"] = False
        self.update(user, change)

    def hidden(self, user: str) -> set[str]:
        return {w for w, cfg in (self.get(user).get("widgets") or {}).items() if cfg.get("hidden")}
