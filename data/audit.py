"""The audit log: who did what, when, from where, and whether it was allowed.

Sign-ins, administration, authorization denials and the dashboard's own `user.*` events
(docs: EVENTS.md) go to one Redis stream. Each entry is shaped as an EVENTS.md event so
the same tools (CSV export, the event explorer) can read it. The stream is append-only
from the product's side; trimming is the only deletion, and it is approximate so that it
costs O(1) per append.
"""
from __future__ import annotations

import csv
import io
import secrets
from enum import Enum
from typing import Any, Callable, Iterable, cast

import orjson
import redis

from data.rawstore import csv_cell
from data.timeutil import fmt_ms, now_ms

# Stream of audit entries, field "e" = one entry as JSON; stream ids are the entries' times.
from data.keys import AUDIT  # noqa: E402  (the key template lives with the others)

SOURCE = "qms-dashboard"
# Substrings of detail keys that are never stored, whatever the caller passes: an audit
# log is read by more people than the credentials it mentions should be.
FORBIDDEN_KEY_PARTS = ("password", "secret", "token")
# Set by `record` itself; details cannot overwrite them, so request input passed as
# details cannot forge who acted or whether it succeeded.
RESERVED = ("user", "ip", "outcome")
CSV_COLUMNS = ("id", "type", "timestamp", "user", "ip", "outcome", "details")

_MAX_SEQ = 2**64 - 1
_SCAN_CHUNK = 1000


class Action(str, Enum):
    """The actions the product records. `record` accepts any `category.name` string."""

    DASHBOARD_ACCESSED = "user.dashboard_accessed"
    WIDGET_CONFIGURED = "user.widget_configured"
    ALERT_ACKNOWLEDGED = "user.alert_acknowledged"
    FILTER_APPLIED = "user.filter_applied"
    EXPORT_REQUESTED = "user.export_requested"
    SIGN_IN = "auth.sign_in"
    SIGN_IN_FAILED = "auth.sign_in_failed"
    SIGN_OUT = "auth.sign_out"
    USER_ADDED = "admin.user_added"
    USER_DISABLED = "admin.user_disabled"
    PASSWORD_CHANGED = "admin.password_changed"
    TOKEN_CREATED = "admin.token_created"
    TOKEN_REVOKED = "admin.token_revoked"
    AUTHZ_DENIED = "authz.denied"
    # dashboards as data (api/dashboards.py): details `dashboard`, `version` (the one the change made), `summary`
    DASHBOARD_CREATED = "dashboard.created"
    DASHBOARD_SAVED = "dashboard.saved"                  # a personal copy or a personal dashboard
    DASHBOARD_SHARED_SAVED = "dashboard.shared_saved"
    DASHBOARD_DELETED = "dashboard.deleted"
    DASHBOARD_RESTORED = "dashboard.restored"            # a version, or a provisioned file's definition back
    DASHBOARD_IMPORTED = "dashboard.imported"


def scrub(value: Any) -> Any:
    """`value` without any dict key that looks like a credential, at any depth."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()
                if not any(part in str(k).lower() for part in FORBIDDEN_KEY_PARTS)}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


def iso_ms(ms: int) -> str:
    """Epoch ms -> '2025-08-17T06:23:14.000Z': audit timestamps always carry milliseconds."""
    text = fmt_ms(ms)
    return text if "." in text else text[:-1] + ".000Z"


class AuditLog:
    """Append and read audit entries in `{prefix}:audit`.

    `clock` returns epoch ms; tests pass a fake one instead of sleeping.
    """

    def __init__(self, r: redis.Redis, prefix: str = "qms", maxlen: int = 1_000_000,
                 clock: Callable[[], int] = now_ms) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be at least 1")
        self.r = r
        self.key = AUDIT.format(p=prefix)
        self.maxlen = maxlen
        self.clock = clock

    def record(self, action: str, user: str | None, *, ip: str | None = None,
               details: dict[str, Any] | None = None, outcome: str = "ok") -> dict[str, Any]:
        """Append one entry and return it. Redis errors propagate: the caller decides
        whether an action may proceed unaudited."""
        action = action.value if isinstance(action, Action) else action
        if not isinstance(action, str) or "." not in action or not 3 <= len(action) <= 128:
            raise ValueError(f"not an action (category.name): {action!r}")
        t = self.clock()
        data: dict[str, Any] = {"user": user, "ip": ip, "outcome": outcome}
        for k, v in scrub(details or {}).items():
            if k not in RESERVED:
                data[k] = v
        entry = {"id": f"aud-{t}-{secrets.token_hex(4)}", "type": action, "timestamp": iso_ms(t),
                 "source": SOURCE, "data": data, "metadata": {"priority": "normal"}}
        # default=str: an odd detail value (a datetime, an Enum) must not make an audited
        # action fail.
        body = orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS)
        try:
            # The stream id carries the entry's own time so `query` can seek by time.
            self.r.xadd(self.key, {"e": body}, id=f"{t}-*", maxlen=self.maxlen, approximate=True)
        except redis.ResponseError:
            # The stream already holds a later id (another host's clock runs ahead):
            # Redis then picks the next id; time filters see the entry a few ms late.
            self.r.xadd(self.key, {"e": body}, maxlen=self.maxlen, approximate=True)
        return entry

    def query(self, start_ms: int | None = None, end_ms: int | None = None, user: str | None = None,
              action_prefix: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """Entries with time in [start_ms, end_ms), newest first, at most `limit`.

        `user` matches exactly; `action_prefix` matches the start of the type ("admin.").
        Without filters the cost follows `limit`; a selective filter reads back through
        the window in chunks until it has `limit` matches or reaches `start_ms`.
        """
        if limit <= 0:
            return []
        if start_ms is not None and end_ms is not None and end_ms <= start_ms:
            return []
        # As XREVRANGE bounds, a bare ms means ms-<max seq> at the top and ms-0 at the bottom.
        top = "+" if end_ms is None else (f"{end_ms - 1}" if end_ms > 0 else None)
        if top is None:
            return []
        bottom = "-" if start_ms is None else f"{max(start_ms, 0)}"
        filtered = user is not None or action_prefix is not None
        out: list[dict[str, Any]] = []
        while len(out) < limit:
            count = min(_SCAN_CHUNK, max(limit - len(out), 100 if filtered else 1))
            rows = cast("list[tuple[bytes | str, dict[Any, Any]]]",
                        self.r.xrevrange(self.key, top, bottom, count=count))
            for _sid, fields in rows:
                # Either key type: the client may or may not decode responses.
                entry = orjson.loads(fields[b"e"] if b"e" in fields else fields["e"])
                if user is not None and (entry.get("data") or {}).get("user") != user:
                    continue
                if action_prefix is not None and not str(entry.get("type", "")).startswith(action_prefix):
                    continue
                out.append(entry)
                if len(out) >= limit:
                    break
            if len(rows) < count:
                break
            before = _previous_id(rows[-1][0])
            if before is None:
                break
            top = before
        return out

    @staticmethod
    def to_csv(entries: Iterable[dict[str, Any]]) -> str:
        """Same as the module's `to_csv` (callers holding a log need no second import)."""
        return to_csv(entries)

    def __len__(self) -> int:
        return int(self.r.xlen(self.key))


def _previous_id(stream_id: bytes | str) -> str | None:
    """The greatest stream id below `stream_id` (paging without Redis 6.2's '(' syntax)."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms_text, seq_text = text.split("-")
    ms, seq = int(ms_text), int(seq_text)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    if ms > 0:
        return f"{ms - 1}-{_MAX_SEQ}"
    return None


def to_csv(entries: Iterable[dict[str, Any]]) -> str:
    """Audit entries as CSV; every cell goes through `csv_cell`, so `=cmd` cannot run."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for entry in entries:
        data = entry.get("data") or {}
        details = {k: v for k, v in data.items() if k not in RESERVED}
        w.writerow([csv_cell(entry.get("id")), csv_cell(entry.get("type")), csv_cell(entry.get("timestamp")),
                    csv_cell(data.get("user")), csv_cell(data.get("ip")), csv_cell(data.get("outcome")),
                    csv_cell(details) if details else ""])
    return buf.getvalue()


__all__ = ["AUDIT", "CSV_COLUMNS", "Action", "AuditLog", "iso_ms", "scrub", "to_csv"]
