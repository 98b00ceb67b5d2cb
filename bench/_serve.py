"""Serve `create_app(settings).server` with werkzeug's threaded WSGI server, for the benchmarks.

    python bench/_serve.py --redis-url redis://127.0.0.1:6379/14 --port-file /tmp/port [--port 0]

No aggregator thread (run_aggregator=False): the benchmarks run `cli.py aggregate` themselves.
The bound port is written to --port-file once the server is listening. Request logging is off.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The repository first: bench/pages.py must not shadow the app's `pages` package.
if str(ROOT) in sys.path:
    sys.path.remove(str(ROOT))
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--max-body-bytes", type=int)
    args = ap.parse_args()

    from werkzeug.serving import make_server

    from factory import create_app
    from settings import Settings

    overrides = {"redis_url": args.redis_url, "run_aggregator": False}
    if args.max_body_bytes:
        overrides["max_body_bytes"] = args.max_body_bytes
    # The QMS_* variables the benchmark passed (bench/_common._child_env keeps no others), e.g.
    # QMS_BODY_CACHE_S=0 for bench/pages.py's cold loads; it ignored them all before stop 20.
    settings = Settings.from_env({k: v for k, v in os.environ.items() if k.startswith("QMS_")}, **overrides)
    app = create_app(settings)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server(args.host, args.port, app.server, threaded=True)

    def _interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        Path(tmp).write_text(str(server.server_port))
        os.replace(tmp, args.port_file)
    print(f"serving on http://{args.host}:{server.server_port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
