"""WebSocket frames encoded once per message, not once per client.

A server-to-client text frame is unmasked and, without per-socket compression, the same
bytes for every client, so the hub builds it once and each socket's pump writes it as is
(RFC 6455 §5.2: FIN + opcode 0x1, then the payload length in 7, 7+16 or 7+64 bits).
"""
from __future__ import annotations

import struct


def text_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class FrameTail(bytes):
    """The unsent end of a frame that a socket's direct writer had begun: the pump writes it
    as is. The only raw bytes a socket's queue may hold — anything else queued is a message
    and is framed on its way out (raw JSON written as a frame is a protocol error)."""

    __slots__ = ()


class Outgoing:
    """One published message as every transport wants it: text (SSE) and a frame (WS)."""

    __slots__ = ("text", "_frame")

    def __init__(self, payload: bytes | str) -> None:
        self.text = payload.decode() if isinstance(payload, bytes) else payload
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:          # built by the first socket that needs it, then shared
            self._frame = text_frame(self.text.encode())
        return self._frame
