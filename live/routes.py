"""`/ws` (WebSocket, flask-sock) and `/api/stream` (Server-Sent Events): the live protocol
of shared/spec/API.md over two transports, both fed by the process's Hub.

Authentication and the Origin check happen before the handshake (auth.guard); every
subscription is authorised by live.protocol with the same `authorize()` as pages and
endpoints. A socket's loop alternates between sending what the hub queued for it and
reading what the browser sent, so one thread (or greenlet, under gevent) serves it.
"""
from __future__ import annotations

import queue
import time
from typing import Any, Iterator

import orjson
from flask import Blueprint, Flask, Response, current_app, request
from flask_sock import ConnectionClosed, Sock

from api.routes import error
from auth.guard import AUTHENTICATED, require
from auth.principal import Principal, authorize, current_principal
from live.hub import CLOSE, Client, Hub, make_connection

bp = Blueprint("live", __name__)
POLL_S = 0.25              # how long a socket's loop waits for outbound data before reading input
REVALIDATE_S = 30.0        # how often a socket re-checks that its user still exists and is enabled
SSE_HEARTBEAT_S = 15.0


def hub() -> Hub:
    return current_app.extensions["qms_hub"]


def _still_valid(svc: Any, principal: Principal) -> bool:
    if principal.kind != "session":
        return True
    user = svc.users.get(principal.name)
    return user is not None and not user.disabled


def _text(item: bytes | str) -> str:
    return item.decode() if isinstance(item, bytes) else item


def init_live(server: Flask, services: Any) -> None:
    server.extensions["qms_hub"] = Hub(services.redis, services.keys)
    # Two limits: live.protocol answers a message over ws_max_message_bytes with an error and
    # keeps the socket; a frame 16 times bigger is cut off by the transport (close 1009).
    server.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": 25,
                                                     "max_message_size": 16 * services.settings.ws_max_message_bytes})
    sock = Sock(server)
    server.register_blueprint(bp)

    @sock.route("/ws")
    def ws(socket: Any) -> None:
        svc = current_app.extensions["qms"]
        principal = current_principal()
        if principal is None:        # the guard answered 401 already; a second lock
            return
        h = hub()
        client = Client(make_connection(principal, authorize, svc.settings), principal.name)
        h.add(client)
        checked = time.monotonic()
        try:
            while not client.closed:
                if not _flush(socket, client, POLL_S):
                    break
                raw = socket.receive(timeout=0)
                while raw is not None and not client.closed:
                    _handle(socket, h, client, raw)
                    raw = socket.receive(timeout=0)
                if time.monotonic() - checked > REVALIDATE_S:
                    checked = time.monotonic()
                    if not _still_valid(svc, principal):
                        break
        except ConnectionClosed:
            pass
        finally:
            h.remove(client)
            try:
                socket.close(reason=1000)
            except Exception:      # already closed by the peer
                pass


def _flush(socket: Any, client: Client, wait_s: float) -> bool:
    """Send everything queued (waiting up to wait_s for the first item); False = close."""
    try:
        item = client.out.get(timeout=wait_s)
    except queue.Empty:
        return True
    while True:
        if item is CLOSE:
            return False
        socket.send(_text(item))
        try:
            item = client.out.get_nowait()
        except queue.Empty:
            return True


def _handle(socket: Any, h: Hub, client: Client, raw: Any) -> None:
    reply = client.conn.receive(raw)
    for m in reply.messages:
        socket.send(orjson.dumps(m).decode())
    h.subscribed(client, reply.new_channels, reply.removed_channels)
    for ch in reply.new_channels:     # start from a snapshot: pub/sub may have dropped messages
        snap = h.snapshot(ch)
        if snap is not None:
            socket.send(snap.decode())
    if reply.should_close:
        client.close()


@bp.get("/api/stream")
@require(AUTHENTICATED)
def stream() -> Response:
    """The same messages as /ws for clients that cannot open a WebSocket."""
    svc = current_app.extensions["qms"]
    principal = current_principal()
    h = hub()
    client = Client(make_connection(principal, authorize, svc.settings), principal.name if principal else None)
    channels = [c.strip() for c in request.args.get("channels", "").split(",") if c.strip()]
    first = client.conn.receive(orjson.dumps({"type": "subscribe", "channels": channels}))
    if not first.new_channels:
        # Nothing this principal may see: a 403 now beats an empty stream held open forever.
        reasons = "; ".join(f"{m.get('channel', '')}: {m['message']}" for m in first.messages if m["type"] == "error")
        return error(403, "forbidden", f"no channel you may see ({reasons or 'none asked'})")
    h.add(client)
    h.subscribed(client, first.new_channels, [])
    opening = [orjson.dumps(m) for m in first.messages]
    opening += [s for s in (h.snapshot(ch) for ch in first.new_channels) if s is not None]

    def events() -> Iterator[str]:
        try:
            for item in opening:
                yield f"data: {_text(item)}\n\n"
            while not client.closed:
                try:
                    item = client.out.get(timeout=SSE_HEARTBEAT_S)
                except queue.Empty:
                    yield ": keep-alive\n\n"
                    continue
                if item is CLOSE:
                    break
                yield f"data: {_text(item)}\n\n"
        finally:
            h.remove(client)

    resp = Response(events(), mimetype="text/event-stream")
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["X-Accel-Buffering"] = "no"      # proxies must not buffer the stream
    return resp
