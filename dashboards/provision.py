"""Provisioned dashboards: the definition files in `config/dashboards/*.yaml` (or
`QMS_DASHBOARDS_DIR`), like Grafana's file provisioning.

Each file is validated (dashboards.schema.validate, errors naming the file, widget and
field). A refused file does not take its dashboard away: the previous good version of that
file stays in use — the one this process loaded before, else the last good one any process
recorded in Redis (`{p}:dash:provisioned`, so a bad edit before a restart does not lose the
dashboard either) — and `errors()` says why, for the page to show. Files are re-read when
one changes (modification time and size, looked at most once a second).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import orjson
import redis
import yaml

from auth.rbac import _StrictLoader          # the YAML loader that refuses duplicate keys
from dashboards.schema import Dashboard, DefinitionError, dump, validate
from data.keys import Keys

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / "config" / "dashboards"
PATTERNS = ("*.yaml", "*.yml")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProvisionedFile:
    """One file's dashboard in use: `current` False when it is a previous good version kept
    because the file as it is now was refused."""
    dashboard: Dashboard
    file: str
    mtime_ms: int
    current: bool = True


def _display(path: Path) -> str:
    """A file as messages name it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def load_file(path: Path) -> Dashboard:
    """Parse and validate one definition file; DefinitionError names the file."""
    origin = _display(path)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    except OSError as exc:
        raise DefinitionError(origin, [{"widget": None, "field": None,
                                        "message": f"cannot read: {exc.strerror or exc}"}]) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionError(origin, [{"widget": None, "field": None,
                                        "message": f"invalid YAML{at}: {problem}"}]) from None
    return validate(doc, origin)


class Provisioner:
    """The provisioned dashboards of one directory, kept current.

        p = Provisioner("config/dashboards", r=redis_client, keys=keys)
        p.dashboards()   # {id: Dashboard}, re-read when a file changed (checked ≤ once a second)
        p.get("qa")      # Dashboard | None
        p.file_of("qa")  # "config/dashboards/qa.yaml"
        p.errors()       # [{"file", "message"}]: files refused (their previous version kept)
    """

    def __init__(self, directory: str | Path | None = None, *, r: redis.Redis | None = None,
                 keys: Keys | None = None, check_every_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = Path(directory) if directory else DEFAULT_DIR
        self.r = r
        self.keys = keys
        self.check_every_s = check_every_s
        self.clock = clock
        self._lock = threading.Lock()
        self._checked: float | None = None
        self._stamps: dict[str, tuple[int, int]] | None = None
        self._good: dict[str, ProvisionedFile] = {}        # file name -> what it provides
        self._by_id: dict[str, ProvisionedFile] = {}
        self._errors: list[dict[str, str]] = []
        self._redis_ok = True
        self.refresh(force=True)

    # --- reading ---------------------------------------------------------------------------

    def dashboards(self) -> dict[str, Dashboard]:
        self.refresh()
        return {i: p.dashboard for i, p in self._by_id.items()}

    def get(self, ident: str) -> Dashboard | None:
        self.refresh()
        found = self._by_id.get(ident)
        return found.dashboard if found else None

    def entry(self, ident: str) -> ProvisionedFile | None:
        self.refresh()
        return self._by_id.get(ident)

    def file_of(self, ident: str) -> str | None:
        found = self.entry(ident)
        return found.file if found else None

    def errors(self) -> list[dict[str, str]]:
        """[{"file", "message"}]: every refused file; `message` holds the DefinitionError's
        lines (each naming the file, the widget and the field)."""
        self.refresh()
        return [dict(e) for e in self._errors]

    # --- loading ---------------------------------------------------------------------------

    def _files(self) -> dict[str, Path]:
        if not self.directory.is_dir():
            return {}
        return {p.name: p for pattern in PATTERNS for p in self.directory.glob(pattern) if p.is_file()}

    def refresh(self, force: bool = False) -> None:
        """Re-read the directory if a file was added, removed or changed (at most once per
        `check_every_s` unless `force`)."""
        now = self.clock()
        if not force and self._checked is not None and now - self._checked < self.check_every_s:
            return
        with self._lock:
            if not force and self._checked is not None and now - self._checked < self.check_every_s:
                return
            self._checked = now
            files = self._files()
            stamps = {}
            for name, path in files.items():
                try:
                    st = path.stat()
                except OSError:
                    continue
                stamps[name] = (st.st_mtime_ns, st.st_size)
            if stamps == self._stamps and not force:
                return
            self._stamps = stamps
            self._load({n: files[n] for n in sorted(stamps)})

    def _load(self, files: dict[str, Path]) -> None:
        good: dict[str, ProvisionedFile] = {}
        errors: list[dict[str, str]] = []
        self._redis_ok = True           # one failed write: the rest of this load does not wait on Redis
        for name, path in files.items():
            shown = _display(path)
            try:
                dashboard = load_file(path)
            except DefinitionError as exc:
                errors.append({"file": shown, "message": str(exc)})
                previous = self._good.get(name) or self._recorded(name, shown)
                if previous is not None:
                    good[name] = ProvisionedFile(previous.dashboard, shown, previous.mtime_ms, current=False)
                continue
            mtime_ms = int(path.stat().st_mtime_ns // 1_000_000)
            good[name] = ProvisionedFile(dashboard, shown, mtime_ms)
            self._record(name, dashboard, mtime_ms)
        by_id: dict[str, ProvisionedFile] = {}
        for name, entry in good.items():
            taken = by_id.get(entry.dashboard.id)
            if taken is not None:
                errors.append({"file": entry.file, "message": f"{entry.file}: id: {entry.dashboard.id!r} is already "
                                                               f"provisioned by {taken.file}"})
                continue
            by_id[entry.dashboard.id] = entry
        self._good = good
        self._by_id = by_id
        self._errors = errors
        for e in errors:
            log.warning("dashboard definition refused: %s", e["message"])

    # --- the last good version, shared through Redis ------------------------------------------

    def _record(self, name: str, dashboard: Dashboard, mtime_ms: int) -> None:
        if self.r is None or self.keys is None or not self._redis_ok:
            return
        body = orjson.dumps({"definition": dump(dashboard), "mtime_ms": mtime_ms})
        try:
            if self.r.hget(self.keys.dash_provisioned, name) != body:
                self.r.hset(self.keys.dash_provisioned, name, body)
        except redis.RedisError as exc:          # the files still serve; the record waits
            self._redis_ok = False
            log.warning("cannot record the provisioned dashboard %s: %s", name, exc)

    def _recorded(self, name: str, shown: str) -> ProvisionedFile | None:
        if self.r is None or self.keys is None or not self._redis_ok:
            return None
        try:
            raw = self.r.hget(self.keys.dash_provisioned, name)
        except redis.RedisError:
            self._redis_ok = False
            return None
        if not raw:
            return None
        try:
            doc: Any = orjson.loads(raw)
            return ProvisionedFile(validate(doc["definition"], shown), shown, int(doc.get("mtime_ms") or 0), False)
        except (ValueError, KeyError, TypeError):
            return None
