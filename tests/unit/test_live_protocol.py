"""live.protocol: channel permissions and one connection's protocol, without any transport."""
from __future__ import annotations

import json

import pytest

from auth.principal import Principal, authorize
from auth.rbac import DASHBOARD_PERMISSION
from live.protocol import (
    MAX_VIOLATIONS, Connection, Reply, TokenBucket, channel_permission,
)


class Clock:
    """A hand-driven clock for the token bucket."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def principal(*permissions: str) -> Principal:
    return Principal("ann", ("tester",), frozenset(permissions))


def conn(*permissions: str, **kw) -> Connection:
    kw.setdefault("clock", Clock())
    return Connection(principal(*permissions), authorize, **kw)


def send(c: Connection, message) -> Reply:
    return c.receive(json.dumps(message))


def sub(*channels: str) -> dict:
    return {"type": "subscribe", "channels": list(channels)}


def unsub(*channels: str) -> dict:
    return {"type": "unsubscribe", "channels": list(channels)}


# -- channel_permission ------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(DASHBOARD_PERMISSION))
def test_dashboard_channels_need_their_dashboard_permission(name):
    assert channel_permission(f"dashboard.{name}") == DASHBOARD_PERMISSION[name]


@pytest.mark.parametrize("channel, permission", [
    ("alerts", "view:alerts"),
    ("events.workflow", "view:operational_dashboard"),
    ("events.system", "view:operational_dashboard"),
    ("events.user", "view:operational_dashboard"),
])
def test_alert_and_event_channels(channel, permission):
    assert channel_permission(channel) == permission


@pytest.mark.parametrize("channel", [
    "dashboard.nope", "dashboard.", "dashboard", "dashboard.executive.x", "events.other", "events.",
    "events", "alerts.x", "Alerts", "", "other.executive", ".alerts", None, 3,
])
def test_unknown_channels_have_no_permission(channel):
    assert channel_permission(channel) is None


# -- ping and malformed input --------------------------------------------------------------

def test_ping_answers_pong():
    reply = send(conn(), {"type": "ping"})
    assert reply == Reply([{"type": "pong"}])


def test_ping_as_bytes_answers_pong():
    assert conn().receive(b'{"type": "ping"}').messages == [{"type": "pong"}]


@pytest.mark.parametrize("raw, fragment", [
    ("{not json", "not valid JSON"),
    ("", "not valid JSON"),
    ("[" * 4000, "not valid JSON"),                 # nested past the parser's recursion limit
    (b"\xff\xfe{}", "not valid UTF-8"),
    ("[1, 2]", "JSON object"),
    ('"ping"', "JSON object"),
    ("null", "JSON object"),
    ("{}", "'type' must be a string"),
    ('{"type": 7}', "'type' must be a string"),
    ('{"type": null}', "'type' must be a string"),
    ('{"type": "dance"}', "unknown message type 'dance'"),
    ('{"type": "subscribe"}', "'channels' must be a list of strings"),
    ('{"type": "subscribe", "channels": "alerts"}', "'channels' must be a list of strings"),
    ('{"type": "subscribe", "channels": ["alerts", 1]}', "'channels' must be a list of strings"),
    ('{"type": "unsubscribe", "channels": {"alerts": 1}}', "'channels' must be a list of strings"),
])
def test_bad_messages_get_an_error_and_the_connection_stays_usable(raw, fragment):
    c = conn("view:alerts")
    reply = c.receive(raw)
    assert len(reply.messages) == 1
    error = reply.messages[0]
    assert error["type"] == "error" and fragment in error["message"]
    assert "channel" not in error
    assert reply.new_channels == [] and not reply.should_close and c.channels == set()
    # Still usable afterwards.
    assert send(c, sub("alerts")).new_channels == ["alerts"]


@pytest.mark.parametrize("raw", [bytearray(b'{"type": "ping"}'), memoryview(b'{"type": "ping"}')])
def test_bytes_like_frames_are_accepted(raw):
    assert conn().receive(raw).messages == [{"type": "pong"}]


@pytest.mark.parametrize("raw", [None, 42, ["ping"]])
def test_non_text_frames_get_an_error(raw):
    assert conn().receive(raw).messages == [{"type": "error", "message": "message must be text"}]


def test_unknown_type_in_error_is_truncated():
    message = conn().receive(json.dumps({"type": "x" * 500})).messages[0]["message"]
    assert len(message) < 100


def test_oversize_messages_are_refused_before_parsing():
    c = conn("view:alerts", max_message_bytes=64)
    padded = json.dumps({**sub("alerts"), "pad": "x" * 100})
    reply = c.receive(padded)
    assert reply.messages == [{"type": "error", "message": "message too large (max 64 bytes)"}]
    assert c.channels == set()


def test_size_is_counted_in_utf8_bytes_not_characters():
    c = conn(max_message_bytes=32)
    text = json.dumps({"type": "ping", "p": "é" * 6}, ensure_ascii=False)   # 31 characters, 37 bytes
    assert len(text) <= 32 < len(text.encode())
    assert "too large" in c.receive(text).messages[0]["message"]
    assert "too large" in c.receive(text.encode()).messages[0]["message"]


def test_message_at_exactly_the_limit_is_accepted():
    raw = '{"type": "ping"}'
    assert conn(max_message_bytes=len(raw)).receive(raw).messages == [{"type": "pong"}]


def test_extra_fields_are_ignored():
    assert send(conn(), {"type": "ping", "id": 4}).messages == [{"type": "pong"}]


# -- subscribe ---------------------------------------------------------------------------------

def test_subscribe_accepts_authorised_channels_and_reports_them_new():
    c = conn("view:executive_dashboard", "view:alerts")
    reply = send(c, sub("dashboard.executive", "alerts"))
    assert reply.messages == [{"type": "subscribed", "channels": ["dashboard.executive", "alerts"]}]
    assert reply.new_channels == ["dashboard.executive", "alerts"]
    assert c.channels == {"dashboard.executive", "alerts"}


def test_refused_channel_gets_an_error_naming_it_and_no_data():
    c = conn("view:qa_dashboard")
    reply = send(c, sub("dashboard.executive"))
    assert reply.messages == [{"type": "error", "message": "not authorised for this channel",
                               "channel": "dashboard.executive"}]
    assert reply.new_channels == [] and c.channels == set()
    assert not c.wants("dashboard.executive")


def test_unknown_channel_gets_an_error_naming_it():
    c = conn("view:alerts")
    reply = send(c, sub("dashboard.nope"))
    assert reply.messages == [{"type": "error", "message": "unknown channel", "channel": "dashboard.nope"}]
    assert c.channels == set()


def test_mixed_subscribe_accepts_some_and_refuses_others():
    c = conn("view:operational_dashboard")
    reply = send(c, sub("events.workflow", "alerts", "dashboard.operational", "nope"))
    assert reply.messages[0] == {"type": "subscribed", "channels": ["events.workflow", "dashboard.operational"]}
    assert [(m["type"], m["channel"]) for m in reply.messages[1:]] == [("error", "alerts"), ("error", "nope")]
    assert reply.new_channels == ["events.workflow", "dashboard.operational"]
    assert c.channels == {"events.workflow", "dashboard.operational"}


def test_a_principal_without_permissions_is_refused_everything():
    c = Connection(None, authorize, clock=Clock())
    reply = send(c, sub("alerts"))
    assert reply.messages == [{"type": "error", "message": "not authorised for this channel", "channel": "alerts"}]


def test_authorize_callable_is_asked_with_principal_and_permission():
    calls = []
    who = principal()
    c = Connection(who, lambda p, perm: calls.append((p, perm)) or True, clock=Clock())
    send(c, sub("dashboard.qa", "events.user"))
    assert calls == [(who, "view:qa_dashboard"), (who, "view:operational_dashboard")]
    assert c.channels == {"dashboard.qa", "events.user"}


def test_resubscribing_is_confirmed_but_not_new():
    c = conn("view:alerts")
    send(c, sub("alerts"))
    reply = send(c, sub("alerts"))
    assert reply.messages == [{"type": "subscribed", "channels": ["alerts"]}]
    assert reply.new_channels == []


def test_duplicates_in_one_request_count_once():
    c = conn("view:alerts")
    reply = send(c, sub("alerts", "alerts"))
    assert reply.messages == [{"type": "subscribed", "channels": ["alerts"]}]
    assert reply.new_channels == ["alerts"]


def test_empty_subscribe_is_confirmed_empty():
    assert send(conn(), sub()) == Reply([{"type": "subscribed", "channels": []}])


def test_channel_limit():
    c = conn("view:operational_dashboard", "view:alerts", max_channels=2)
    reply = send(c, sub("events.workflow", "events.system", "events.user"))
    assert reply.new_channels == ["events.workflow", "events.system"]
    assert reply.messages[1] == {"type": "error", "message": "too many channels (max 2)", "channel": "events.user"}
    # At the limit, an already subscribed channel is still confirmed, a new one is not.
    reply = send(c, sub("events.system", "alerts"))
    assert reply.messages[0] == {"type": "subscribed", "channels": ["events.system"]}
    assert reply.messages[1]["channel"] == "alerts" and "too many" in reply.messages[1]["message"]
    assert c.channels == {"events.workflow", "events.system"}
    # Leaving one frees a place.
    send(c, unsub("events.workflow"))
    assert send(c, sub("alerts")).new_channels == ["alerts"]


def test_default_limits():
    c = conn()
    assert c.max_message_bytes == 4096 and c.max_channels == 32


# -- unsubscribe and wants ----------------------------------------------------------------------

def test_unsubscribe_removes_only_subscribed_channels():
    c = conn("view:alerts", "view:operational_dashboard")
    send(c, sub("alerts", "events.system"))
    reply = send(c, unsub("alerts", "events.user", "nope"))
    assert reply.messages == [{"type": "unsubscribed", "channels": ["alerts"]}]
    assert reply.removed_channels == ["alerts"] and reply.new_channels == []
    assert c.channels == {"events.system"}
    assert not c.wants("alerts") and c.wants("events.system")


def test_unsubscribe_from_nothing_is_not_an_error():
    reply = send(conn(), unsub("alerts"))
    assert reply.messages == [{"type": "unsubscribed", "channels": []}]


def test_wants_only_subscribed_channels():
    c = conn("view:alerts", "view:executive_dashboard")
    send(c, sub("alerts"))
    assert c.wants("alerts")
    assert not c.wants("dashboard.executive")       # allowed but not subscribed
    assert not c.wants("nope")


def test_wants_rechecks_authorisation():
    allowed = {"view:alerts"}
    c = Connection(principal(), lambda p, perm: perm in allowed, clock=Clock())
    send(c, sub("alerts"))
    assert c.wants("alerts")
    allowed.clear()                                    # e.g. the role was revoked
    assert not c.wants("alerts")


def test_wants_refuses_a_channel_that_lost_its_meaning():
    # Defensive: a channel in the set that maps to no permission is never delivered.
    c = Connection(principal(), lambda p, perm: True, clock=Clock())
    c.channels.add("bogus")
    assert not c.wants("bogus")


# -- rate limit ------------------------------------------------------------------------------------

def test_burst_then_rate_limited():
    clock = Clock()
    c = conn(clock=clock, rate_per_second=20, burst=40)
    ping = json.dumps({"type": "ping"})
    assert all(c.receive(ping).messages == [{"type": "pong"}] for _ in range(40))
    reply = c.receive(ping)
    assert reply.messages == [{"type": "error", "message": "rate limit exceeded"}]
    assert c.violations == 1 and not reply.should_close and not c.should_close


def test_tokens_refill_with_time():
    clock = Clock()
    c = conn(clock=clock, rate_per_second=20, burst=40)
    ping = json.dumps({"type": "ping"})
    for _ in range(40):
        c.receive(ping)
    clock.now += 0.06                                  # 1.2 tokens at 20/s
    assert c.receive(ping).messages == [{"type": "pong"}]
    assert "rate" in c.receive(ping).messages[0]["message"]
    clock.now += 100                                   # refills to the burst, not beyond
    assert sum(c.receive(ping).messages == [{"type": "pong"}] for _ in range(41)) == 40


def test_every_frame_costs_a_token_even_a_bad_one():
    c = conn(clock=Clock(), rate_per_second=1, burst=2)
    c.receive("garbage")
    c.receive("x" * 10_000)
    assert "rate" in c.receive('{"type": "ping"}').messages[0]["message"]


def test_rate_limited_subscribe_does_not_subscribe():
    c = conn("view:alerts", clock=Clock(), rate_per_second=1, burst=1)
    send(c, {"type": "ping"})
    reply = send(c, sub("alerts"))
    assert reply.new_channels == [] and c.channels == set()


def test_repeated_violations_close_the_connection():
    c = conn(clock=Clock(), rate_per_second=1, burst=1)
    send(c, {"type": "ping"})
    for _ in range(MAX_VIOLATIONS - 1):
        assert not send(c, {"type": "ping"}).should_close
    assert MAX_VIOLATIONS == 50
    last = send(c, {"type": "ping"})
    assert last.should_close and c.should_close and c.violations == 50
    assert "rate" in last.messages[0]["message"]
    # Once closing, input is ignored.
    assert send(c, {"type": "ping"}) == Reply(should_close=True)
    assert c.violations == 50


def test_clock_going_backwards_does_not_drain_tokens():
    clock = Clock()
    bucket = TokenBucket(1, 2, clock)
    clock.now -= 1000
    assert bucket.take() and bucket.take() and not bucket.take()


@pytest.mark.parametrize("rate, burst", [(0, 1), (-1, 1), (1, 0)])
def test_bucket_refuses_nonsense_limits(rate, burst):
    with pytest.raises(ValueError):
        TokenBucket(rate, burst, Clock())


def test_text_frames_match_what_a_websocket_library_decodes() -> None:
    """The hub's once-per-message frames, decoded by wsproto's own parser."""
    from wsproto.frame_protocol import FrameProtocol, Opcode

    from live.frames import Outgoing, text_frame
    for size in (0, 125, 126, 65535, 65536, 70000):
        payload = ("é" * (size // 2)).encode() + b"x" * (size % 2)      # é is two bytes: exactly `size`
        proto = FrameProtocol(client=True, extensions=[])
        proto.receive_bytes(text_frame(payload))
        frames = list(proto.received_frames())
        assert len(frames) == 1 and frames[0].opcode == Opcode.TEXT and frames[0].message_finished
        assert frames[0].payload.encode() == payload
    out = Outgoing(b'{"type":"pong"}')
    assert out.text == '{"type":"pong"}' and out.frame is out.frame


def test_a_socket_closed_during_the_handshake_gets_no_direct_writer():
    """A peer gone before the socket route set up its writer: the closed descriptor says
    EBADF when asked its timeout; the route goes on to its receive loop, which sees the close
    (the 500-user load test logged 44 tracebacks of this)."""
    import socket as pysocket
    from types import SimpleNamespace

    import gevent.socket
    from live.routes import DirectWriter, _direct_writer
    a, b = gevent.socket.socketpair()
    a.setblocking(False)
    ws = SimpleNamespace(sock=a)                     # simple-websocket's socket: gevent's; _sock its OS socket
    client = SimpleNamespace(out=SimpleNamespace(queue=None))
    assert isinstance(_direct_writer(ws, client, None), DirectWriter)
    a.close()
    b.close()
    assert _direct_writer(ws, client, None) is None
    plain = pysocket.socket()
    assert _direct_writer(SimpleNamespace(sock=SimpleNamespace(_sock=plain)), client, None) is None   # blocking
    plain.close()
