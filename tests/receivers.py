"""Loopback receivers for notification tests: an HTTP server recording POSTs (Slack,
PagerDuty, webhooks) and an aiosmtpd handler keeping mail."""
from __future__ import annotations

import email
import email.policy
import http.server
import json
import threading
import time
from typing import Any, Callable


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# --- loopback receivers ----------------------------------------------------------------

class Receiver:
    """An HTTP server on loopback that records every POST and answers with scripted
    statuses (default 200 "ok", which is what Slack's webhook answers)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.statuses: dict[str, list[int]] = {}     # path -> statuses to answer first, in order
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    queue = receiver.statuses.get(self.path, [])
                    status = queue.pop(0) if queue else 200
                    receiver.posts.append({"path": self.path, "json": json.loads(raw), "at": time.monotonic(),
                                           "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def to(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p for p in self.posts if p["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MailSink:
    """aiosmtpd handler keeping every accepted message."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"
