"""`/ws` (WebSocket, flask-sock) and `/api/stream` (Server-Sent Events): the live protocol
of shared/spec/API.md over two transports, both fed by the process's Hub.

Authentication and the Origin check happen before the handshake (auth.guard); every
subscription is authorised by live.protocol with the same `authorize()` as pages and
endpoints. Each socket has a pump that sends what the hub queues for it as it arrives, and
a loop that reads what the browser sends (two greenlets under gevent; neither polls).
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Any, Iterator

import orjson
import redis
from flask import Blueprint, Flask, Response, current_app, request
from flask_sock import ConnectionClosed, Sock

from api.routes import error
from auth.guard import AUTHENTICATED, require
from auth.principal import Principal, authorize, current_principal, jwt_user_valid
from live.frames import FrameTail, Outgoing
from live.hub import CLOSE, Client, Hub, Requests, make_connection

bp = Blueprint("live", __name__)
REVALIDATE_S = 30.0        # how often the hub re-checks the sockets' credentials (Hub.recheck)
IDLE_S = 300.0             # a socket that sent nothing (not even a ping) this long is closed
IDLE_CHECK_S = 30.0        # how often a silent socket looks at IDLE_S
SSE_HEARTBEAT_S = 15.0


def hub() -> Hub:
    return current_app.extensions["qms_hub"]


def _still_valid(svc: Any, principal: Principal) -> bool:
    """The backstop of the control channel's close messages (a missed one during a Redis
    outage): does the credential still pass what an HTTP request checks — the session's
    sign-in (live, at its user's epoch), the API token (not revoked), the JWT (not expired,
    at its user's epoch)?"""
    ident = principal.credential.partition(":")[2]
    if principal.kind == "token":
        token = svc.tokens.get(ident)
        return token is not None and not token.revoked
    if principal.kind == "session":
        return svc.users.still_signed_in(principal.name, ident) is not None
    if principal.expires is not None and time.time() >= principal.expires:
        return False
    return principal.epoch is None or jwt_user_valid(svc.users, principal.name, principal.epoch)


def _client(svc: Any, principal: Principal) -> Client:
    """A hub client for one socket or stream, closed with the principal's user or credential."""
    return Client(make_connection(principal, authorize, svc.settings), principal.name, principal.credential or None)


def _snapshots(h: Hub, channels: list[str]) -> list[bytes]:
    """The last message of each newly subscribed channel (pub/sub may have dropped some):
    those Redis can give now; while it is away, the hub's resync sends them when it is back."""
    snaps = []
    for ch in channels:
        try:
            snap = h.snapshot(ch)
        except redis.RedisError:
            continue
        if snap is not None:
            snaps.append(snap)
    return snaps


def _text(item: bytes | str) -> str:
    return item.decode() if isinstance(item, bytes) else item


def init_live(server: Flask, services: Any) -> None:
    # The hub re-checks every socket's and stream's credential (once per principal) every
    # REVALIDATE_S; a socket outlives a data-store outage (Hub.recheck).
    server.extensions["qms_hub"] = Hub(services.redis, services.keys, lambda p: _still_valid(services, p),
                                       lambda: REVALIDATE_S)
    # Two limits: live.protocol answers a message over ws_max_message_bytes with an error and
    # keeps the socket; a frame 16 times bigger is cut off by the transport (close 1009).
    # No protocol-level pings from simple-websocket's reader: it would write them to the
    # socket outside our send lock, between the bytes of a shared frame (the browser pings
    # at application level instead).
    server.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": None,
                                                     "max_message_size": 16 * services.settings.ws_max_message_bytes})
    sock = Sock(server)
    server.register_blueprint(bp)
    # The fan-out gives way while requests are handled (live.hub.Requests); a socket is not one.
    server.wsgi_app = Requests.counted(server.wsgi_app, ("/ws",))  # type: ignore[method-assign]

    @server.before_request
    def _no_per_socket_compression() -> None:
        # permessage-deflate costs a compressor per socket and a compression per message and
        # client (a fifth of the fan-out CPU at 1,000 clients): the messages are small.
        if request.path == "/ws":
            request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)

    @sock.route("/ws")
    def ws(socket: Any) -> None:
        svc = current_app.extensions["qms"]
        principal = current_principal()
        if principal is None:        # the guard answered 401 already; a second lock
            return
        h = hub()
        client = _client(svc, principal)
        lock = threading.Lock()      # the pump and this loop both send

        def send(text: str) -> None:
            with lock:
                socket.send(text)

        def pump() -> None:
            """Send what the hub queues, as it arrives (no polling); published messages go
            out as the frame the hub built once for every socket."""
            try:
                while True:
                    item = client.out.get()
                    if item is CLOSE:
                        break
                    if isinstance(item, (Outgoing, FrameTail)):
                        with lock:
                            if not socket.connected:
                                break
                            socket.sock.sendall(item.frame if isinstance(item, Outgoing) else item)
                    else:            # a message (str or JSON bytes): framed by simple-websocket
                        send(_text(item))
            except Exception:        # the peer went away: the loop below sees it too
                pass
            finally:
                client.close()
                _close(socket)
        client.direct = _direct_writer(socket, client, lock)
        sender = threading.Thread(target=pump, name="qms-ws-pump", daemon=True)
        h.add(client)
        sender.start()
        heard = time.monotonic()
        try:
            while not client.closed:
                raw = socket.receive(timeout=IDLE_CHECK_S)
                if raw is None:
                    # Browsers ping every 25 s; a peer silent this long is gone.
                    if time.monotonic() - heard > IDLE_S:
                        break
                    continue
                heard = time.monotonic()
                _handle(send, h, client, raw)
        except (ConnectionClosed, OSError):
            # Closed, or gone while we answered it (a broken pipe; EBADF once the pump closed
            # the socket): the end of this socket, not a server error.
            pass
        finally:
            h.remove(client)
            sender.join(2)
            _close(socket)


def _direct_writer(socket: Any, client: Client, lock: Any) -> "DirectWriter | None":
    """Under gevent: a writer of shared frames straight to the OS socket (DirectWriter); None
    for a blocking socket (threaded server): the pump does it all."""
    raw = getattr(socket.sock, "_sock", None)
    try:
        if raw is None or raw.gettimeout() != 0.0:
            return None
    except OSError:                  # closed already (EBADF): the peer left during the handshake
        return None
    return DirectWriter(raw, client, lock)


class DirectWriter:
    """Writes a shared frame on the OS socket at once when nothing is queued for this client
    and no greenlet is sending on it — the hub then needs no greenlet switch per client.
    Called on the server's loop (the hub's relay is a greenlet): nothing else runs on this
    socket during the non-blocking write, so the send lock need not be taken, only seen free.
    What the buffer does not take is queued (in order) for the pump."""

    __slots__ = ("raw", "client", "lock", "out")

    def __init__(self, raw: Any, client: Client, lock: Any) -> None:
        self.raw = raw
        self.client = client
        self.lock = lock
        self.out = client.out.queue           # the queue's deque: read without its mutex

    def __call__(self, frame: bytes) -> bool:
        c = self.client
        if c.closed or self.out or self.lock.locked():
            return False
        try:
            sent = self.raw.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            c.close()
            return True
        if sent < len(frame):
            c.push(FrameTail(frame[sent:]))
        return True


def _close(socket: Any) -> None:
    """Close the WebSocket and its TCP connection (gevent's server would keep it open)."""
    try:
        socket.close(reason=1000)
    except Exception:      # already closed by the peer
        pass
    # simple-websocket works on a dup of gevent's socket; only shutting down the connection
    # itself sends the FIN (else pywsgi keeps it open and the peer waits out its close timeout).
    inp = getattr(socket, "environ", {}).get("wsgi.input")
    inp = inp if hasattr(inp, "raw") else getattr(inp, "rfile", None)
    for sock in (getattr(getattr(inp, "raw", None), "_sock", None), getattr(socket, "sock", None)):
        try:
            sock.shutdown(2)
        except Exception:      # gone already, or not a socket (threaded server: closed by Werkzeug)
            pass


def _handle(send: Any, h: Hub, client: Client, raw: Any) -> None:
    reply = client.conn.receive(raw)
    for m in reply.messages:
        send(orjson.dumps(m).decode())
    h.subscribed(client, reply.new_channels, reply.removed_channels)
    for snap in _snapshots(h, reply.new_channels):
        send(snap.decode())
    if reply.should_close:
        client.close()


@bp.get("/api/stream")
@require(AUTHENTICATED)
def stream() -> Response:
    """The same messages as /ws for clients that cannot open a WebSocket."""
    svc = current_app.extensions["qms"]
    principal = current_principal()
    assert principal is not None        # @require(AUTHENTICATED) answered 401 already
    h = hub()
    client = _client(svc, principal)
    channels = [c.strip() for c in request.args.get("channels", "").split(",") if c.strip()]
    first = client.conn.receive(orjson.dumps({"type": "subscribe", "channels": channels}))
    if not first.new_channels:
        # Nothing this principal may see: a 403 now beats an empty stream held open forever.
        reasons = "; ".join(f"{m.get('channel', '')}: {m['message']}" for m in first.messages if m["type"] == "error")
        return error(403, "forbidden", f"no channel you may see ({reasons or 'none asked'})")
    h.add(client)
    h.subscribed(client, first.new_channels, [])
    opening = [orjson.dumps(m) for m in first.messages]
    opening += _snapshots(h, first.new_channels)

    def events() -> Iterator[str]:
        try:
            for item in opening:
                yield f"data: {_text(item)}\n\n"
            while not client.closed:
                try:
                    item = client.out.get(timeout=SSE_HEARTBEAT_S)
                except queue.Empty:
                    yield ": keep-alive\n\n"     # (the hub closes it when its credential ends)
                    continue
                if item is CLOSE:
                    break
                yield f"data: {item.text if isinstance(item, Outgoing) else _text(item)}\n\n"
        finally:
            h.remove(client)

    resp = Response(events(), mimetype="text/event-stream")
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["X-Accel-Buffering"] = "no"      # proxies must not buffer the stream
    return resp
