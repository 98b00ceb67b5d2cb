"""Alert delivery: the configured channels, sent through apprise, once per deployment.

Channels come from the `alert_channels:` section of the config file:

    alert_channels:
      slack:     {url: "slack://TokenA/TokenB/TokenC/#alerts"}   # or {webhook_url: "https://hooks.slack.com/services/..."}
      email:     {url: "mailtos://user:pass@smtp.example.com?to=ops@example.com"}
                 # or {smtp_host, smtp_port, from, to, username, password, tls: starttls | ssl | none}
      pagerduty: {url: "pagerduty://integration_key@api_key"}
      sms:       {url: "twilio://..."}
      webhook:   {url: "json://hooks.example.com/qms"}          # or {webhook_url: "https://hooks.example.com/qms"}

`url` may be any apprise URL, or a list of them. `dashboard` is built in and needs no
entry: the caller shows it (`on_dashboard`).

Who sends: a transition and its notifications are one durable unit. The alert service
writes one outbox entry per (alert, state, time, channel) into `{p}:alert-outbox` in the
same MULTI/EXEC as the transition (`enqueue`); whoever leads then sends what the outbox
holds (`deliver_pending`) and marks each entry done when it is delivered or given up. A
sender holds a short lease on the entry (`{p}:alert-sent:<hash>` = its node, renewed before
each attempt), so two processes never send it at once, and a process dying at any instant
leaves the entry (and at most an expiring lease) behind for the next leader: a notification
is delayed, never lost. Done entries keep the key as "done" for 7 days, so the same
notification is not queued again. Only a sender that dies between a successful send and
its mark (or stalls past its lease) can make one notification go out twice.

How: one single-thread queue per channel, so a slow or failing channel (retrying with
back-off) delays neither the caller nor other channels, and one channel's messages keep
their order (a firing notice before its resolve). Every failure goes to the
`{p}:alert-failures` stream and the `{p}:alert-channels` status hash that the alerts
page shows; every delivery to `{p}:alert-deliveries`.

Secrets (tokens, passwords, keys inside the URLs) are masked in recorded errors, in
errors raised here, and in apprise's own log lines while a Notifier is open.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import quote, unquote, urlsplit

import apprise
import redis

from alerts.evaluate import Transition, message
from alerts.rules import CHANNELS
from data.batch import RELEASE

log = logging.getLogger(__name__)

DASHBOARD = "dashboard"
APPRISE_CHANNELS = tuple(c for c in CHANNELS if c != DASHBOARD)

# Redis keys (p = key prefix)
SENT = "{p}:alert-sent:{hash}"            # string: the sender's node (PX lease) while sending, then "done" (EX 7d)
OUTBOX = "{p}:alert-outbox"               # hash: <hash> -> JSON {transition, channel, queued_at}: owed, not yet done
FAILURES = "{p}:alert-failures"           # stream: at, channel, alert, to, attempt, error (masked), final yes/no
DELIVERIES = "{p}:alert-deliveries"       # stream: at, channel, alert, to, attempt
CHANNEL_STATUS = "{p}:alert-channels"     # hash: channel -> JSON {last_ok, last_error, last_error_at, failures_in_row}

CLAIM_TTL_S = 7 * 24 * 3600
STREAM_MAXLEN = 10_000
MASK = "****"
_APPRISE_LOGGER = "apprise"     # every apprise plugin logs here

_URL_SEPARATORS = re.compile(r"[/:@?&=#,;+\s]+")
_TLS_MODES = {"starttls": "starttls", "ssl": "ssl", "none": None, "insecure": None}
_EMAIL_KEYS = ("smtp_host", "smtp_port", "from", "to", "username", "password", "tls")

# Atomic read-modify-write of one channel's status, so two processes recording at once
# cannot lose a failure count.
_STATUS_LUA = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local s = raw and cjson.decode(raw) or {}
if ARGV[2] == 'ok' then
  s.last_ok = tonumber(ARGV[3])
  s.failures_in_row = 0
else
  s.last_error = ARGV[4]
  s.last_error_at = tonumber(ARGV[3])
  s.failures_in_row = (tonumber(s.failures_in_row) or 0) + 1
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(s))
"""


# The outbox, atomically. Queue an entry unless that notification is already being sent or
# done (EVALSHA runs inside the alert service's MULTI/EXEC like any command).
_ENQUEUE_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
"""
# Take or renew the lease of an owed entry: 1 when this node may send it now.
_LEASE_LUA = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local holder = redis.call('GET', KEYS[2])
if holder == ARGV[2] then redis.call('PEXPIRE', KEYS[2], ARGV[3]) return 1 end
if holder then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""
# Delivered or given up: out of the outbox, remembered as done.
_DONE_LUA = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], 'done', 'EX', ARGV[2])
"""


class ChannelConfigError(ValueError):
    """alert_channels cannot be used; the message names the channel and never shows a secret."""


# --- configuration ---------------------------------------------------------------------

def smtp_url(cfg: Mapping[str, Any]) -> str:
    """The apprise URL of the convenience email keys, so operators can write plain SMTP
    settings instead of learning apprise's mailto syntax. `tls`: starttls (default) | ssl |
    none; the password is URL-quoted, never interpreted."""
    host = cfg.get("smtp_host")
    to = cfg.get("to")
    if not isinstance(host, str) or not host:
        raise ChannelConfigError("alert_channels.email: 'smtp_host' must be a host name")
    recipients = [to] if isinstance(to, str) else to
    if not isinstance(recipients, list) or not recipients or not all(isinstance(x, str) and x for x in recipients):
        raise ChannelConfigError("alert_channels.email: 'to' must be an address or a list of addresses")
    tls = cfg.get("tls", "starttls")
    if isinstance(tls, bool):
        tls = "starttls" if tls else "none"
    tls = str(tls).lower()
    if tls not in _TLS_MODES:
        raise ChannelConfigError(f"alert_channels.email: 'tls' must be one of {', '.join(_TLS_MODES)}")
    mode = _TLS_MODES[tls]
    auth = ""
    if cfg.get("username"):
        auth = quote(str(cfg["username"]), safe="")
        if cfg.get("password"):
            auth += ":" + quote(str(cfg["password"]), safe="")
        auth += "@"
    port = cfg.get("smtp_port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
        raise ChannelConfigError("alert_channels.email: 'smtp_port' must be a TCP port number")
    query = [("to", ",".join(recipients))]
    if cfg.get("from"):
        query.append(("from", str(cfg["from"])))
    if mode:
        query.append(("mode", mode))
    qs = "&".join(f"{k}={quote(v, safe='@,')}" for k, v in query)
    return f"{'mailtos' if mode else 'mailto'}://{auth}{host}{f':{port}' if port else ''}?{qs}"


def webhook_json_url(webhook_url: str) -> str:
    """A plain http(s) webhook as apprise's JSON poster (json:// / jsons://); the webhook's
    own query parameters become apprise's `-name=value` pass-through parameters."""
    parts = urlsplit(webhook_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ChannelConfigError("alert_channels.webhook: 'webhook_url' must be an http(s) URL")
    scheme = "jsons" if parts.scheme == "https" else "json"
    query = "&".join("-" + pair for pair in parts.query.split("&") if pair)
    return f"{scheme}://{parts.netloc}{parts.path}" + (f"?{query}" if query else "")


def channel_urls(name: str, cfg: Any) -> list[str]:
    """The apprise URLs of one channel's configuration (pure; checks shape, not reachability)."""
    where = f"alert_channels.{name}"
    if isinstance(cfg, str):
        cfg = {"url": cfg}
    if not isinstance(cfg, Mapping):
        raise ChannelConfigError(f"{where}: must be a mapping such as {{url: '<apprise URL>'}}")
    allowed = {"url"}
    if name in ("slack", "webhook"):
        allowed.add("webhook_url")
    if name == "email":
        allowed.update(_EMAIL_KEYS)
    unknown = sorted(str(k) for k in cfg if k not in allowed)
    if unknown:
        raise ChannelConfigError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})")
    if "url" in cfg:
        if len(cfg) > 1:
            raise ChannelConfigError(f"{where}: 'url' cannot be combined with other keys")
        urls = [cfg["url"]] if isinstance(cfg["url"], str) else cfg["url"]
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u.strip() for u in urls):
            raise ChannelConfigError(f"{where}: 'url' must be an apprise URL or a list of them")
        return [u.strip() for u in urls]
    if name == "email" and cfg:
        return [smtp_url(cfg)]
    if "webhook_url" in cfg and isinstance(cfg["webhook_url"], str):
        return [cfg["webhook_url"] if name == "slack" else webhook_json_url(cfg["webhook_url"])]
    needs = {"email": "'url' or 'smtp_host' and 'to'", "slack": "'url' or 'webhook_url'",
             "webhook": "'url' or 'webhook_url'"}.get(name, "'url'")
    raise ChannelConfigError(f"{where}: needs {needs}")


def _url_secrets(service: Any) -> set[str]:
    """The parts of a service's URL that apprise itself hides in its privacy form: those are
    exactly the tokens, keys and passwords of that service, whatever its URL syntax."""
    plain = {t for t in _URL_SEPARATORS.split(service.url()) if t}
    private = {t for t in _URL_SEPARATORS.split(service.url(privacy=True)) if t}
    return {unquote(t) for t in plain - private}


@dataclass(frozen=True, eq=False)
class Channel:
    """One configured channel: the apprise object that sends, and the secrets to mask."""

    name: str
    sender: apprise.Apprise
    secrets: frozenset[str]


def load_channels(config: Mapping[str, Any] | None) -> dict[str, Channel]:
    """Every channel of the alert_channels section, checked now so a mistake is reported at
    start-up naming the channel, not at the first alert."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ChannelConfigError("alert_channels: must be a mapping of channel name to settings")
    channels: dict[str, Channel] = {}
    for name, cfg in config.items():
        if name == DASHBOARD:
            if cfg:
                raise ChannelConfigError("alert_channels.dashboard: built in, takes no settings")
            continue
        if name not in APPRISE_CHANNELS:
            raise ChannelConfigError(f"alert_channels: unknown channel '{name}' (one of: {', '.join(CHANNELS)})")
        channels[name] = _build_channel(name, channel_urls(name, cfg))
    return channels


def _build_channel(name: str, urls: Sequence[str]) -> Channel:
    obj = apprise.Apprise()
    for url in urls:
        if not obj.add(url):
            scheme = url.split("://", 1)[0] if "://" in url else "?"
            raise ChannelConfigError(f"alert_channels.{name}: apprise cannot use the URL '{scheme}://{MASK}' "
                                     "(unknown scheme, or missing or malformed parts)")
    return Channel(name, obj, frozenset(s for service in obj for s in _url_secrets(service)))


def masker(secrets: Iterable[str]) -> Callable[[str], str]:
    """A function replacing every secret (also in its URL-quoted form) by ****."""
    forms = {form for s in secrets if s for form in (s, quote(s, safe=""))}
    if not forms:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))
    return lambda text: pattern.sub(MASK, text)


class _MaskApprise(logging.Filter):
    """Masks secrets in apprise's log records (some name a URL part such as PagerDuty's
    API key) before they reach any handler, including apprise's own result capture."""

    def __init__(self, mask: Callable[[str], str]) -> None:
        super().__init__()
        self._mask = mask

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._mask(record.getMessage())
        record.args = None
        return True


# --- delivery --------------------------------------------------------------------------

def delivery_id(transition: Mapping[str, Any], channel: str) -> str:
    """One id per (alert instance, new state, time, channel): the unit sent once."""
    raw = f"{transition['id']}|{transition['to']}|{transition['at']}|{channel}"
    return hashlib.sha1(raw.encode()).hexdigest()


def _notify_type(transition: Mapping[str, Any]) -> apprise.NotifyType:
    """apprise's message type, which colours Slack and sets PagerDuty's severity."""
    if transition.get("to") == "resolved":
        return apprise.NotifyType.SUCCESS
    return {"critical": apprise.NotifyType.FAILURE,
            "warning": apprise.NotifyType.WARNING}.get(str(transition.get("severity")), apprise.NotifyType.INFO)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Notifier:
    """Sends alert transitions to their channels; see the module docstring for the guarantees."""

    def __init__(self, r: redis.Redis, keys_prefix: str, channels_config: Mapping[str, Any] | None, *,
                 base_url: str, on_dashboard: Callable[[Transition], None] | None = None,
                 max_attempts: int = 5, backoff_s: Sequence[float] = (1, 2, 4, 8, 16),
                 clock: Callable[[], float] = time.time, send_timeout_s: float = 10,
                 node: str | None = None, lease_s: float | None = None) -> None:
        if max_attempts < 1 or not backoff_s:
            raise ValueError("max_attempts must be >= 1 and backoff_s non-empty")
        self._r = r
        self._p = keys_prefix
        self.node = node or uuid.uuid4().hex
        # A lease covers one attempt and the back-off before the next, when it is renewed;
        # a dead sender's entry is taken over after at most this long.
        self._lease_ms = int(1000 * (lease_s if lease_s is not None else send_timeout_s + max(backoff_s) + 5))
        self._enqueue_script = r.register_script(_ENQUEUE_LUA)
        self._lease_script = r.register_script(_LEASE_LUA)
        self._done_script = r.register_script(_DONE_LUA)
        self._release_script = r.register_script(RELEASE)  # stopping undelivered: free it for the next leader
        self._local: set[str] = set()           # outbox entries queued in this process
        self._channels = load_channels(channels_config)
        self._base_url = base_url
        self._on_dashboard = on_dashboard
        self._max_attempts = max_attempts
        self._backoff_s = tuple(backoff_s)
        self._clock = clock
        self._send_timeout_s = send_timeout_s
        self._mask = masker(s for ch in self._channels.values() for s in ch.secrets)
        self._status_script = r.register_script(_STATUS_LUA)
        self._queues = {name: ThreadPoolExecutor(1, thread_name_prefix=f"qms-notify-{name}")
                        for name in (DASHBOARD, *self._channels)}
        self._in_flight: set[Future[None]] = set()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._log_filter = _MaskApprise(self._mask)
        logging.getLogger(_APPRISE_LOGGER).addFilter(self._log_filter)

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels that can deliver: dashboard and the configured ones."""
        return (DASHBOARD, *self._channels)

    def enqueue(self, pipe: Any, transition: Transition, channels: Iterable[str]) -> None:
        """Add the transition's notifications to the outbox through `pipe` — the caller's
        MULTI/EXEC that records the transition, so both are written or neither."""
        now = self._now_ms()
        for channel in dict.fromkeys(channels):
            ident = delivery_id(transition, channel)
            entry = json.dumps({"transition": transition, "channel": channel, "queued_at": now})
            self._enqueue_script(keys=[self._key(OUTBOX), self._sent(ident)], args=[ident, entry], client=pipe)

    def deliver_pending(self) -> list[str]:
        """Queue every owed notification that this process is not already sending (its own
        new ones, and those a dead leader left). Returns the delivery ids queued now; each
        is sent only if its lease is free when its turn comes."""
        if self._closing.is_set():
            return []
        queued = []
        for ident, raw in self._r.hgetall(self._key(OUTBOX)).items():
            ident = _text(ident)
            with self._lock:
                if ident in self._local:
                    continue
            try:
                entry = json.loads(raw)
                channel, transition = str(entry["channel"]), dict(entry["transition"])
            except (ValueError, KeyError, TypeError):
                log.error("alert outbox: dropping an unreadable entry %s", ident)
                self._r.hdel(self._key(OUTBOX), ident)
                continue
            self._submit(channel, transition, ident)
            queued.append(ident)
        return queued

    def notify(self, transition: Transition, channels: Iterable[str]) -> list[str]:
        """Outbox and send in one call (for callers without a transaction of their own):
        returns the channels this process took. A channel that is not configured is
        recorded as a failure (the alerts page shows it) rather than dropped in silence."""
        if self._closing.is_set():
            raise RuntimeError("Notifier is closed")
        wanted = list(dict.fromkeys(channels))
        with self._r.pipeline(transaction=True) as pipe:
            self.enqueue(pipe, transition, wanted)
            pipe.execute()
        taken = []
        for channel in wanted:
            ident = delivery_id(transition, channel)
            with self._lock:
                mine = ident in self._local
            if not mine and self._lease(ident):
                taken.append(channel)
                self._submit(channel, dict(transition), ident)
        return taken

    def pending(self) -> int:
        """Notifications owed (in the outbox, not yet delivered or given up)."""
        return int(self._r.hlen(self._key(OUTBOX)))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for every queued send (retries included); True if none is left."""
        with self._lock:
            pending = list(self._in_flight)
        return not wait(pending, timeout).not_done if pending else True

    def close(self) -> None:
        """Stop taking notifications, cut back-off waits short (a send that then fails stays
        owed in the outbox, for the next leader), finish what is queued, and stop masking
        apprise's log lines."""
        self._closing.set()
        for queue in self._queues.values():
            queue.shutdown(wait=True)
        logging.getLogger(_APPRISE_LOGGER).removeFilter(self._log_filter)

    def channel_status(self) -> dict[str, dict[str, Any]]:
        """channel -> {configured, last_ok, last_error, last_error_at, failures_in_row}, for
        every deliverable channel and any other channel with a recorded outcome."""
        raw = {_text(k): json.loads(v) for k, v in self._r.hgetall(self._key(CHANNEL_STATUS)).items()}
        out = {}
        for name in dict.fromkeys((*self.channels, *sorted(raw))):
            s = raw.get(name, {})
            out[name] = {"configured": name in self._queues, "last_ok": s.get("last_ok"),
                         "last_error": s.get("last_error"), "last_error_at": s.get("last_error_at"),
                         "failures_in_row": int(s.get("failures_in_row") or 0)}
        return out

    def recent_failures(self, n: int = 50) -> list[dict[str, Any]]:
        """The newest n failed attempts, newest first."""
        out = []
        for entry_id, fields in self._r.xrevrange(self._key(FAILURES), count=n):
            f = {_text(k): _text(v) for k, v in fields.items()}
            out.append({"id": _text(entry_id), "at": int(f["at"]), "channel": f["channel"], "alert": f["alert"],
                        "to": f["to"], "attempt": int(f["attempt"]), "error": f["error"],
                        "final": f["final"] == "yes"})
        return out

    # --- the worker side ---------------------------------------------------------------

    def _key(self, template: str) -> str:
        return template.format(p=self._p)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _sent(self, ident: str) -> str:
        return SENT.format(p=self._p, hash=ident)

    def _lease(self, ident: str) -> bool:
        """Take or renew the right to send an owed entry (False: done, or another sender's)."""
        return bool(self._lease_script(keys=[self._key(OUTBOX), self._sent(ident)],
                                       args=[ident, self.node, self._lease_ms]))

    def _submit(self, channel: str, transition: Transition, ident: str) -> None:
        if channel not in self._queues:          # nothing to send with: a final failure, now
            if self._lease(ident):
                self._record_failure(channel, transition, 1, "channel not configured in alert_channels", True)
                self._finish(ident)
            return
        with self._lock:
            self._local.add(ident)
        future = self._queues[channel].submit(self._deliver, channel, dict(transition), ident)
        with self._lock:
            self._in_flight.add(future)
        future.add_done_callback(functools.partial(self._done, ident))

    def _done(self, ident: str, future: Future[None]) -> None:
        with self._lock:
            self._in_flight.discard(future)
            self._local.discard(ident)
        if future.exception() is not None:      # recording itself failed (Redis down): say so
            log.error("alert delivery bookkeeping failed: %s", self._mask(str(future.exception())))

    def _deliver(self, channel: str, transition: Transition, ident: str) -> None:
        """Send with retries under a lease renewed before each attempt; back-off waits end
        early when the Notifier closes, and an entry still undelivered then is left in the
        outbox (lease freed) for the next leader."""
        for attempt in range(1, self._max_attempts + 1):
            if not self._lease(ident):
                return                           # done meanwhile, or another sender has it
            error = self._send_once(channel, transition)
            if error is None:
                self._finish(ident)     # first: a Redis blip after it loses a record, not a resend
                self._record_ok(channel, transition, attempt)
                return
            final = attempt == self._max_attempts
            self._record_failure(channel, transition, attempt, error, final)
            if final:
                self._finish(ident)
                return
            if self._closing.is_set():
                self._release_script(keys=[self._sent(ident)], args=[self.node])
                return
            self._closing.wait(self._backoff_s[min(attempt, len(self._backoff_s)) - 1])
            if self._closing.is_set():
                self._release_script(keys=[self._sent(ident)], args=[self.node])
                return

    def _finish(self, ident: str) -> None:
        self._done_script(keys=[self._key(OUTBOX), self._sent(ident)], args=[ident, CLAIM_TTL_S])

    def _send_once(self, channel: str, transition: Transition) -> str | None:
        """None when delivered, else what went wrong (masked)."""
        try:
            if channel == DASHBOARD:
                if self._on_dashboard is not None:
                    self._on_dashboard(transition)
                return None
            return self._send_apprise(self._channels[channel], transition)
        except Exception as exc:  # noqa: BLE001 - any error of a channel is a failed attempt, not a crash
            return self._mask(f"{type(exc).__name__}: {exc}")

    def _send_apprise(self, channel: Channel, transition: Transition) -> str | None:
        title, body = message(transition, self._base_url)
        with channel.sender.notify(body=body, title=title, notify_type=_notify_type(transition),
                                    body_format=apprise.NotifyFormat.TEXT,
                                    timeout=self._send_timeout_s) as result:
            if result:
                return None
            if result.status == apprise.AppriseResultStatus.TIMEOUT:
                return f"no answer within {self._send_timeout_s:g}s"
            details = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
            return self._mask("; ".join(details) or f"delivery failed ({result.status.name.lower()})")

    def _record_ok(self, channel: str, transition: Transition, attempt: int) -> None:
        now = self._now_ms()
        self._r.xadd(self._key(DELIVERIES), {"at": now, "channel": channel, "alert": transition["id"],
                                             "to": transition["to"], "attempt": attempt},
                     maxlen=STREAM_MAXLEN, approximate=True)
        self._status_script(keys=[self._key(CHANNEL_STATUS)], args=[channel, "ok", now, ""])

    def _record_failure(self, channel: str, transition: Transition, attempt: int, error: str, final: bool) -> None:
        now = self._now_ms()
        log.warning("alert %r to %s: attempt %d failed%s: %s", transition["id"], channel, attempt,
                    " (giving up)" if final else "", error)
        self._r.xadd(self._key(FAILURES), {"at": now, "channel": channel, "alert": transition["id"],
                                           "to": transition["to"], "attempt": attempt, "error": error,
                                           "final": "yes" if final else "no"},
                     maxlen=STREAM_MAXLEN, approximate=True)
        self._status_script(keys=[self._key(CHANNEL_STATUS)], args=[channel, "error", now, error])
