"""The live-update protocol of one client connection, free of any transport.

The WebSocket route and the SSE stream both feed client text into `Connection.receive`
and send back what it returns; fan-out asks `Connection.wants(channel)` before sending
a published message. Keeping the protocol pure lets every rule (authorisation per
channel, size and rate limits, malformed input) be tested without sockets or Redis.

`receive` returns a `Reply`:

- `messages`: the JSON-ready dicts to send back, in order (possibly empty);
- `new_channels`: channels this message newly subscribed, in request order: the server
  sends each one a snapshot so the client does not wait for the next publish;
- `removed_channels`: channels this message unsubscribed (lets a hub drop its own
  interest when no connection wants a channel any more);
- `should_close`: the client has exceeded the rate limit too often; close the socket
  (WebSocket code 1008, policy violation).

Client errors never raise: they become `{"type": "error", "message": ...}` and the
connection stays usable, so one bad frame from a buggy page does not cost its live view.
"""
from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from auth.rbac import DASHBOARD_PERMISSION

ALERTS_CHANNEL = "alerts"
ALERTS_PERMISSION = "view:alerts"
# Operational events (workflow runs, system and user activity) belong to the people who
# run the system, hence the operational dashboard's permission.
EVENT_CATEGORIES: frozenset[str] = frozenset({"workflow", "system", "user"})
EVENTS_PERMISSION = "view:operational_dashboard"

DEFAULT_MAX_MESSAGE_BYTES = 4096
DEFAULT_MAX_CHANNELS = 32
DEFAULT_RATE_PER_SECOND = 20.0
DEFAULT_BURST = 40
MAX_VIOLATIONS = 50


def channel_permission(channel: str) -> str | None:
    """The permission a channel needs, or None when no such channel exists."""
    if not isinstance(channel, str):
        return None
    if channel == ALERTS_CHANNEL:
        return ALERTS_PERMISSION
    prefix, dot, rest = channel.partition(".")
    if not dot:
        return None
    if prefix == "dashboard":
        return DASHBOARD_PERMISSION.get(rest)
    if prefix == "events" and rest in EVENT_CATEGORIES:
        return EVENTS_PERMISSION
    return None


@functools.lru_cache(maxsize=256)
def _subscribed_permission(channel: str) -> str | None:
    """channel_permission of a channel a client could subscribe (a handful of names: the
    cache stays small), remembered: fan-out asks it per client and message."""
    return channel_permission(channel)


@dataclass
class Reply:
    """What one client message produced; see the module docstring."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    new_channels: list[str] = field(default_factory=list)
    removed_channels: list[str] = field(default_factory=list)
    should_close: bool = False


class TokenBucket:
    """`rate` tokens a second up to `burst`; a message costs one token.

    A bucket rather than a fixed window so a page that sends a burst of subscribes on
    navigation is not punished, while a steady flood is.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        # max(): a clock that steps back (it should not, monotonic) must not drain tokens.
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def _error(message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "message": message, **extra}


class Connection:
    """The protocol state of one client: its principal, its channels, its limits."""

    def __init__(self, principal: Any, authorize: Callable[[Any, str], bool], *,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 max_channels: int = DEFAULT_MAX_CHANNELS,
                 rate_per_second: float = DEFAULT_RATE_PER_SECOND,
                 burst: int = DEFAULT_BURST,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.principal = principal
        self._authorize = authorize
        self.max_message_bytes = max_message_bytes
        self.max_channels = max_channels
        self._bucket = TokenBucket(rate_per_second, burst, clock)
        self.channels: set[str] = set()
        self.violations = 0
        self.should_close = False

    # -- public API -------------------------------------------------------------------

    def receive(self, raw: str | bytes | bytearray | memoryview) -> Reply:
        """Handle one client frame; never raises on client input."""
        if self.should_close:
            # The server is closing us; anything still in flight is ignored.
            return Reply(should_close=True)
        if not self._bucket.take():
            return self._rate_violation()
        if isinstance(raw, (bytearray, memoryview)):
            raw = bytes(raw)
        if not isinstance(raw, (str, bytes)):
            return Reply([_error("message must be text")])
        size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
        if size > self.max_message_bytes:
            return Reply([_error(f"message too large (max {self.max_message_bytes} bytes)")])
        message, problem = _parse(raw)
        if problem is not None:
            return Reply([_error(problem)])
        kind = message.get("type")
        if not isinstance(kind, str):
            return Reply([_error("'type' must be a string")])
        handler = self._HANDLERS.get(kind)
        if handler is None:
            return Reply([_error(f"unknown message type {kind[:64]!r}")])
        return handler(self, message)

    def wants(self, channel: str) -> bool:
        """Should a message published on `channel` be sent to this client?

        Authorisation is checked again, not only at subscribe time, so an `authorize`
        that consults live state (a revoked role) stops delivery without a resubscribe.
        """
        return channel in self.channels and self.may(channel)

    def may(self, channel: str) -> bool:
        """Is this principal allowed `channel` now (subscribed or not)? The same answer for
        every connection of an equal principal and `authorizer` (the hub asks it once for them)."""
        permission = _subscribed_permission(channel)
        return permission is not None and bool(self._authorize(self.principal, permission))

    @property
    def authorizer(self) -> Callable[[Any, str], bool]:
        return self._authorize

    # -- handlers ---------------------------------------------------------------------

    def _ping(self, message: dict[str, Any]) -> Reply:
        return Reply([{"type": "pong"}])

    def _subscribe(self, message: dict[str, Any]) -> Reply:
        channels, problem = _channel_list(message)
        if problem is not None:
            return Reply([_error(problem)])
        reply = Reply()
        accepted: list[str] = []
        for channel in channels:
            refusal = self._refusal(channel)
            if refusal is not None:
                # No data for a refused channel: an error only, naming it.
                reply.messages.append(_error(refusal, channel=channel))
                continue
            accepted.append(channel)
            if channel not in self.channels:
                self.channels.add(channel)
                reply.new_channels.append(channel)
        if accepted or not reply.messages:
            # Already-subscribed channels are confirmed again (subscribe is idempotent)
            # but are not "new": the client already had their snapshot.
            reply.messages.insert(0, {"type": "subscribed", "channels": accepted})
        return reply

    def _unsubscribe(self, message: dict[str, Any]) -> Reply:
        channels, problem = _channel_list(message)
        if problem is not None:
            return Reply([_error(problem)])
        # Leaving a channel one is not on is harmless, so it is not an error.
        removed = [c for c in channels if c in self.channels]
        self.channels.difference_update(removed)
        return Reply([{"type": "unsubscribed", "channels": removed}], removed_channels=removed)

    _HANDLERS: dict[str, Callable[[Connection, dict[str, Any]], Reply]] = {
        "ping": _ping, "subscribe": _subscribe, "unsubscribe": _unsubscribe,
    }

    # -- helpers ----------------------------------------------------------------------

    def _refusal(self, channel: str) -> str | None:
        """Why `channel` cannot be subscribed, or None when it can."""
        permission = channel_permission(channel)
        if permission is None:
            return "unknown channel"
        if not self._authorize(self.principal, permission):
            return "not authorised for this channel"
        if channel not in self.channels and len(self.channels) >= self.max_channels:
            return f"too many channels (max {self.max_channels})"
        return None

    def _rate_violation(self) -> Reply:
        self.violations += 1
        if self.violations >= MAX_VIOLATIONS:
            self.should_close = True
        return Reply([_error("rate limit exceeded")], should_close=self.should_close)


def _parse(raw: str | bytes) -> tuple[dict[str, Any], None] | tuple[None, str]:
    """The frame as a JSON object, or the reason it is not one."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None, "message is not valid UTF-8"
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):   # RecursionError: "[[[[..." nested past the parser's limit
        return None, "message is not valid JSON"
    if not isinstance(message, dict):
        return None, "message must be a JSON object"
    return message, None


def _channel_list(message: dict[str, Any]) -> tuple[list[str], None] | tuple[None, str]:
    """The message's channels, de-duplicated in order, or why they are unusable."""
    channels = message.get("channels")
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        return None, "'channels' must be a list of strings"
    return list(dict.fromkeys(channels)), None
