"""A small paged JSON API on a free loopback port (werkzeug `make_server` in a thread), the base
of the fake forges: `Link: <…>; rel="next"` pages, queued faults per path (a rate-limit hiccup,
a 502), a log of every request with its headers."""
from __future__ import annotations

import threading
from typing import Any, Callable
from urllib.parse import urlencode

import orjson
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class FakeApi:
    """Subclasses fill `routes` (path → a function returning the JSON body, or a list to page)."""

    def __init__(self, page_size: int = 2, token: str | None = None, token_header: str = "Authorization",
                 token_value: str | None = None) -> None:
        self.page_size = page_size                   # the server's cap on per_page (GitHub: 100)
        self.token_header = token_header
        self.token_value = token_value if token_value is not None else (f"Bearer {token}" if token else None)
        self.routes: dict[str, Callable[[Request], Any]] = {}
        self.list_key: dict[str, str] = {}           # path → object key holding the paged list
        self.faults: dict[tuple[str, int | None], list[tuple[int, dict[str, str], Any]]] = {}
        self.broken: dict[str, int] = {}             # path prefix → status answered every time
        self.log: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.extra_headers: dict[tuple[str, int | None], dict[str, str]] = {}
        self.lock = threading.Lock()
        self._server: Any = None
        self.base_url = ""

    # --- set-up
    def fault(self, path: str, status: int, headers: dict[str, str] | None = None, body: Any = None,
              page: int | None = None) -> None:
        """Answer the next request of `path` (and `page`, when given) with this once."""
        self.faults.setdefault((path, page), []).append((status, headers or {}, body or {"message": "fault"}))

    def start(self) -> str:
        self._server = make_server("127.0.0.1", 0, self.wsgi, threaded=True, request_handler=_Quiet)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()

    # --- what was asked
    def paths(self) -> list[str]:
        return [p for p, _, _ in self.log]

    def hits(self, path: str) -> list[dict[str, str]]:
        return [q for p, q, _ in self.log if p == path]

    # --- serving
    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        req = Request(environ)
        resp = self.handle(req)
        return resp(environ, start_response)

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        return Response(orjson.dumps(body), status=status, headers=headers or {}, content_type="application/json")

    def handle(self, req: Request) -> Response:
        path = req.path
        query = dict(req.args)
        with self.lock:
            self.log.append((path, query, {k.lower(): v for k, v in req.headers.items()}))
            page = int(query.get("page", "1") or 1)
            queued = self.faults.get((path, page)) or self.faults.get((path, None))
            fault = queued.pop(0) if queued else None
        if fault is not None:
            status, headers, body = fault
            return self._json(status, body, headers)
        for prefix, status in self.broken.items():
            if path.startswith(prefix):
                return self._json(status, {"message": "broken"})
        if self.token_value and req.headers.get(self.token_header) != self.token_value:
            return self._json(401, {"message": "Bad credentials"})
        route = self.routes.get(path)
        if route is None:
            return self._json(404, {"message": "Not Found"})
        body = route(req)
        headers = dict(self.extra_headers.get((path, page)) or self.extra_headers.get((path, None)) or {})
        key = self.list_key.get(path)
        items = body.get(key) if key else body
        if not isinstance(items, list):
            return self._json(200, body, headers)
        per_page = min(int(query.get("per_page", "30") or 30), self.page_size)
        chunk = items[(page - 1) * per_page: page * per_page]
        if page * per_page < len(items):
            nxt = {**query, "page": str(page + 1)}
            headers["Link"] = f'<{req.host_url.rstrip("/")}{path}?{urlencode(nxt)}>; rel="next"'
            self.link_style_next(headers, page + 1)
        return self._json(200, {**body, key: chunk} if key else chunk, headers)

    def link_style_next(self, headers: dict[str, str], page: int) -> None:
        """Subclasses add their own next-page headers (GitLab: X-Next-Page)."""
