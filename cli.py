"""Command line: serve, aggregate, replay, simulate.

    python cli.py serve [--demo]              the dashboard (embedded Redis unless REDIS_URL)
    python cli.py aggregate                   an aggregator process (deployments)
    python cli.py publish                     the live publisher as a process (deployments)
    python cli.py replay FILE.jsonl           ingest a JSON Lines file, with a progress bar
    python cli.py simulate --backfill 7d --rate N --seed S [--no-live] [--url URL [--token T]]
    python cli.py import github --repo OWNER/NAME --since 30d [--api-url URL] [--restart] [--wait]
    python cli.py import gitlab --project GROUP/NAME --since 30d [--api-url URL] [--restart] [--wait]
    python cli.py archive [--loop] [--hot-hours H]  raw events past the hot window to the Parquet archive
    python cli.py rebuild --from 2026-11-01    rollups from that day on recomputed from the archive
"""
from __future__ import annotations

import os
import sys

# `serve` runs on gevent (QMS_SERVER=gevent, the default): every open WebSocket or event
# stream is a greenlet, not a thread, so one process holds thousands of them while HTTP
# stays responsive. Patching must come before anything imports socket or threading.
if __name__ == "__main__" and sys.argv[1:2] == ["serve"] and os.environ.get("QMS_SERVER", "gevent") == "gevent":
    from gevent import monkey
    monkey.patch_all()

import argparse
import logging
import signal
import threading
from typing import Any

import orjson

from settings import Settings, SettingsError


def _services(settings: Settings) -> Any:
    from data.redis_conn import RedisUnavailable
    from data.services import Services
    try:
        return Services.build(settings)
    except RedisUnavailable as exc:
        sys.exit(f"error: {exc}")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    from data.redis_conn import RedisUnavailable
    from data.workers import start_aggregator, start_archiver, start_demo, start_publisher
    from factory import create_app, services_of
    if args.demo:
        settings = settings.replace(demo=True)
    # SIGTERM/SIGHUP end the server like Ctrl+C, so the `finally` below (and atexit) stop the
    # workers and the embedded redis-server instead of leaving it running.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(0))
    try:
        app = create_app(settings)
    except RedisUnavailable as exc:
        sys.exit(f"error: {exc}")
    svc = services_of(app)
    if svc.embedded:
        print(f"Redis: embedded, data in {svc.embedded.data_dir}")
    if settings.demo:
        from auth.demo_users import ensure_demo_users
        print("Demo sign-ins (new passwords on every start):")
        for name, role, password in ensure_demo_users(svc):
            print(f"  {role:<11} {name:<16} {password}")
    elif svc.users.count() == 0:
        print("No users yet. Create the first administrator with:\n"
              "  .venv/bin/python cli.py users add admin --role admin")
    if settings.run_aggregator:
        svc.workers.append(start_aggregator(svc))
        svc.workers.append(start_archiver(svc))      # raw events past the hot window to the archive
    if settings.live and settings.live_publisher:
        svc.workers.append(start_publisher(svc))
    alerts = app.server.extensions.get("qms_alerts")
    if alerts is not None:
        alerts.start()
        print(f"Alerts: {len(alerts.rules)} rules from {alerts.rules_path}, every {settings.alert_interval_s:g}s "
              "(one process evaluates: leader lock)")
    if settings.demo:
        svc.workers.append(start_demo(svc))
        print(f"Demo: simulating {settings.demo_backfill} of history, then {settings.demo_rate:g} events/s live")
    print(f"QMS dashboard: http://{settings.host}:{settings.port}/", flush=True)
    try:
        _serve_http(settings, app.server)
    finally:
        if alerts is not None:
            alerts.stop()
        for w in svc.workers:
            w.stop()
        if svc.embedded:
            svc.embedded.stop()


def _serve_http(settings: Settings, server: Any) -> None:
    """gevent's WSGI server when patched (see the top of this file), else Werkzeug's threads."""
    from gevent import monkey
    if monkey.is_module_patched("socket"):
        import socket as socketlib

        from gevent.pywsgi import WSGIHandler, WSGIServer

        class NoDelayHandler(WSGIHandler):
            """pywsgi writes headers and body separately: without TCP_NODELAY a keep-alive
            response waits ~40 ms for the client's delayed ACK."""
            def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
                sock.setsockopt(socketlib.IPPROTO_TCP, socketlib.TCP_NODELAY, 1)
                super().__init__(sock, *args, **kwargs)
        print("server: gevent (one greenlet per connection)", flush=True)
        http = WSGIServer((settings.host, settings.port), server, log=None, handler_class=NoDelayHandler)
        # SIGTERM/SIGHUP stop the server from the hub (a plain handler's SystemExit could land
        # in whichever greenlet runs); open connections get stop_timeout to finish.
        import gevent
        for sig in (signal.SIGTERM, signal.SIGHUP):
            gevent.signal_handler(sig, http.stop)
        http.serve_forever()
    else:
        from werkzeug.serving import run_simple
        print("server: werkzeug threads (QMS_SERVER=threads)", flush=True)
        run_simple(settings.host, settings.port, server, threaded=True, use_reloader=False)


def cmd_aggregate(args: argparse.Namespace, settings: Settings) -> None:
    from data.aggregator import Aggregator
    svc = _services(settings)
    stop = _stop_on_signals()
    parts = None
    if args.partitions:
        try:
            parts = sorted({int(x) for x in args.partitions.split(",") if x.strip()})
        except ValueError:
            raise SystemExit(f"--partitions: not a list of numbers: {args.partitions!r}") from None
    try:
        agg = Aggregator.from_settings(svc.redis, settings, consumer=args.name, partitions=parts)
    except ValueError as exc:
        raise SystemExit(f"--partitions: {exc}") from None
    print(f"aggregator {agg.consumer} reading {', '.join(agg.parts[i].stream for i in agg.mine)}", flush=True)
    if settings.live and settings.live_publisher:
        from data.workers import start_publisher
        publisher = start_publisher(svc)
    agg.run(stop)
    if settings.live and settings.live_publisher:
        publisher.stop()
    if svc.embedded:
        svc.embedded.stop()


def cmd_publish(args: argparse.Namespace, settings: Settings) -> None:
    """The live publisher alone (live.publisher), out of the web processes' event loop: run
    it with QMS_LIVE_PUBLISHER=0 on the web and aggregator processes."""
    from data.workers import start_publisher
    svc = _services(settings)
    stop = _stop_on_signals()
    # One round waits on Redis, the long timeframes' thread computes: switch between them
    # often, so a wake-up is not held up for the interpreter's default 5 ms.
    sys.setswitchinterval(0.001)
    publisher = start_publisher(svc)
    print(f"live publisher on {svc.keys.live_applied}", flush=True)
    stop.wait()
    publisher.stop()
    if svc.embedded:
        svc.embedded.stop()


def cmd_replay(args: argparse.Namespace, settings: Settings) -> None:
    from tqdm import tqdm

    from data.events import _BadLine, unwrap
    from data.ingest import IngestResult
    svc = _services(settings)
    total = IngestResult()
    chunk: list[Any] = []
    index = 0

    def flush() -> None:
        nonlocal chunk, index
        if chunk:
            total.merge(svc.ingestor.ingest(chunk, origin="replay"), offset=index)
            index += len(chunk)
            chunk = []

    with open(args.file, "rb") as fh, tqdm(total=None, unit="ev", desc="replay", disable=args.quiet) as bar:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                chunk.append(unwrap(orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                chunk.append(_BadLine(f"line {line_no}: not JSON ({exc})", line.decode(errors="replace")))
            if len(chunk) >= 5000:
                bar.update(len(chunk))
                flush()
        bar.update(len(chunk))
        flush()
    if args.wait:
        from data.aggregator import Aggregator
        Aggregator.from_settings(svc.redis, settings).drain(timeout_s=3600)
    print(f"accepted {total.accepted}, duplicates {total.duplicates}, rejected {total.rejected}")
    for err in total.errors[:20]:
        print(f"  #{err['index']} {err['id'] or '-'}: {'; '.join(err['errors'])}")
    if len(total.errors) > 20:
        print(f"  … {len(total.errors) - 20} more in the dead-letter store")
    if svc.embedded:
        svc.embedded.stop()


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> None:
    from tqdm import tqdm

    from data.timeutil import parse_duration
    from data.workers import simulate_into
    stop = _stop_on_signals()
    if args.url:
        ingest = _poster(args.url, args.token or os.environ.get("QMS_TOKEN"))
        svc = None
    else:
        svc = _services(settings)

        def ingest(batch: list[dict[str, Any]]) -> None:
            svc.ingestor.ingest(batch, origin="simulator")
    with tqdm(unit="ev", desc="simulate", disable=args.quiet) as bar:
        n = simulate_into(ingest, rate=args.rate, seed=args.seed, backfill_ms=parse_duration(args.backfill),
                          stop=stop, live=not args.no_live, progress=bar.update)
    print(f"sent {n} events")
    if svc and svc.embedded:
        svc.embedded.stop()


def _poster(url: str, token: str | None) -> Any:
    """POST batches to a dashboard's /api/events with `Authorization: Bearer <token>` (an API
    token with ingest:events, or a JWT from POST /api/auth/token). An HTTP error ends the
    command with the server's message, never the token."""
    import urllib.error
    import urllib.request
    endpoint = url.rstrip("/") + "/api/events"
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token.strip()}"

    def ingest(batch: list[dict[str, Any]]) -> None:
        for body in _bodies(batch):
            send(body)

    def send(body: bytes) -> None:
        req = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            try:
                detail = orjson.loads(exc.read())["response"]["error"]["message"]
            except (ValueError, KeyError, TypeError):
                detail = exc.reason
            hint = ("; pass --token TOKEN (or set QMS_TOKEN): an API token with ingest:events"
                    if exc.code in (401, 403) else "")
            sys.exit(f"error: POST {endpoint} answered {exc.code}: {detail}{hint}")
        except urllib.error.URLError as exc:
            sys.exit(f"error: cannot reach {endpoint}: {exc.reason}")
    return ingest


def _bodies(batch: list[dict[str, Any]], limit: int = 900_000) -> Any:
    """`{"events": [...]}` request bodies of at most `limit` bytes (the server refuses bodies
    over 1 MiB by default: 5,000 simulated events in busy hours are ~1.7 MB)."""
    parts: list[bytes] = []
    size = 0
    for ev in batch:
        raw = orjson.dumps(ev)
        if parts and size + len(raw) + 1 > limit:
            yield b'{"events":[' + b",".join(parts) + b"]}"
            parts, size = [], 0
        parts.append(raw)
        size += len(raw) + 1
    if parts:
        yield b'{"events":[' + b",".join(parts) + b"]}"


def cmd_import(args: argparse.Namespace, settings: Settings) -> None:
    """History from a forge's REST API, mapped like its webhooks (integrations/importer.py).
    The token comes from the environment only and is never printed."""
    from redis import RedisError
    from tqdm import tqdm

    from integrations.importer import (TOKEN_ENV, ApiError, load_mapping, make_source, parse_since, run_import,
                                       token_from_env)
    from integrations.mapping import MappingError
    target = args.repo if args.source == "github" else args.project
    try:
        since_ms = parse_since(args.since)
        source = make_source(args.source, target, args.api_url, token_from_env(args.source))
        mapping = load_mapping(settings)
    except (ValueError, MappingError) as exc:
        sys.exit(f"error: {exc}")
    if token_from_env(args.source) is None:
        limit = ", at 60 requests an hour" if args.source == "github" else ""
        print(f"note: no token ({' or '.join(TOKEN_ENV[args.source])}): public data only{limit}", file=sys.stderr)
    svc = _services(settings)

    def ingest(events: list[dict[str, Any]], origin: str) -> Any:
        return svc.ingestor.ingest(events, origin=origin)
    code = 0
    try:
        with tqdm(total=None, unit="PR" if args.source == "github" else "MR", desc=f"import {target}",
                  disable=args.quiet) as bar:
            summary = run_import(source, r=svc.redis, prefix=svc.keys.p, ingest=ingest, since_ms=since_ms,
                                 mapping=mapping, restart=args.restart, progress=bar)
    except (ApiError, RedisError, KeyboardInterrupt) as exc:
        if not isinstance(exc, KeyboardInterrupt):
            print(f"error: {'Redis: ' if isinstance(exc, RedisError) else ''}{exc}", file=sys.stderr)
        done = getattr(exc, "import_summary", None)
        print(f"interrupted: {done.line() + '; what was read is kept' if done else 'nothing imported'}; "
              "run the same command again to resume", file=sys.stderr)
        code = 130 if isinstance(exc, KeyboardInterrupt) else 1
    else:
        if args.wait:
            from data.aggregator import Aggregator
            Aggregator.from_settings(svc.redis, settings).drain(timeout_s=3600)
        print(summary.line())
        if summary.unmapped:
            print(f"  {summary.unmapped} deliveries of kinds the mapping does not map")
        for err in summary.errors[:20]:
            print(f"  {err}")
        if len(summary.errors) > 20:
            print(f"  … {len(summary.errors) - 20} more")
    finally:
        if svc.embedded:
            svc.embedded.stop()
    sys.exit(code)


def cmd_alerts_test(args: argparse.Namespace, settings: Settings) -> None:
    """Exit 0 when every expectation holds; print each failed one. Event-driven tests use
    REDIS_URL (or the embedded Redis) under a throwaway key prefix, removed afterwards."""
    from alerts.rules import RuleError
    from alerts.ruletest import run_tests
    svc = _services(settings)
    failures: list[str] = []
    try:
        for path in args.files:
            try:
                failures += run_tests(path, svc.redis)
            except RuleError as exc:
                failures.append(str(exc))
    finally:
        if svc.embedded:
            svc.embedded.stop()
    print("\n".join(failures) or f"{len(args.files)} alert rule test file(s) passed")
    sys.exit(1 if failures else 0)


def cmd_archive(args: argparse.Namespace, settings: Settings) -> None:
    """Move raw events older than the hot window from Redis to the archive (data/archive_move.py):
    once, or every --interval seconds with --loop."""
    from data import archive_move
    svc = _services(settings)
    keys, arch = archive_move.from_settings(svc.redis, settings)
    hot = args.hot_hours if args.hot_hours is not None else settings.raw_hot_hours
    try:
        if args.loop:
            print(f"archiver: raw events older than {hot:g} h to {arch.base}, every {args.interval:g} s", flush=True)
            archive_move.run(svc.redis, keys, arch, hot_hours=hot, retention_days=settings.raw_retention_days,
                             interval_s=args.interval, stop=_stop_on_signals(),
                             keep_days=settings.archive_retention_days)
        else:
            report = archive_move.move(svc.redis, keys, arch, hot_hours=hot, retention_days=settings.raw_retention_days,
                                       keep_days=settings.archive_retention_days)
            st = arch.stats()
            print(report.line())
            print(f"archive {arch.base}: {st['rows']} events in {st['files']} files over {st['days']} days, "
                  f"{st['bytes']} bytes ({st['bytes'] / max(st['rows'], 1):.1f} B/event)")
    except archive_move.ArchiveBusy as exc:
        sys.exit(f"error: {exc}")
    finally:
        if svc.embedded:
            svc.embedded.stop()


def cmd_rebuild(args: argparse.Namespace, settings: Settings) -> None:
    """Recompute rollups from DATE on from the archive and the hot raw events, with the current
    settings (after a change of the SLA target or a metric's definition): data/archive_rebuild.py."""
    from tqdm import tqdm

    from data import archive_rebuild
    from data.timeutil import parse_iso
    try:
        from_ms = parse_iso(args.from_date + "T00:00:00Z" if len(args.from_date) == 10 else args.from_date)
    except ValueError:
        sys.exit("error: --from: a date (2026-11-01) or an ISO 8601 time with a zone")
    svc = _services(settings)
    try:
        with tqdm(unit="ev", desc="rebuild", disable=args.quiet) as bar:
            report = archive_rebuild.rebuild(svc.redis, settings, from_ms, progress=bar.update,
                                             allow_pruned=args.allow_pruned)
        print(report.line())
    except (RuntimeError, ValueError) as exc:
        sys.exit(f"error: {exc}")
    finally:
        if svc.embedded:
            svc.embedded.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cli.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve", help="run the dashboard")
    p.add_argument("--demo", action="store_true", help="simulate QMS activity (also QMS_DEMO=1)")
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("aggregate", help="run an aggregator process")
    p.add_argument("--name", help="consumer name (default host-pid)")
    p.add_argument("--partitions", help="serve only these partitions, e.g. 0,2 (default: all of QMS_PARTITIONS)")
    p.set_defaults(fn=cmd_aggregate)
    p = sub.add_parser("publish", help="run the live publisher as a process of its own")
    p.set_defaults(fn=cmd_publish)
    p = sub.add_parser("replay", help="ingest a JSON Lines file")
    p.add_argument("file")
    p.add_argument("--wait", action="store_true", help="aggregate before returning")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_replay)
    p = sub.add_parser("simulate", help="fill history with simulated events, then stream live")
    p.add_argument("--backfill", default="24h")
    p.add_argument("--rate", type=float, default=5.0, help="events per second")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-live", action="store_true", help="stop after the backfill")
    p.add_argument("--url", help="post to this dashboard's API instead of writing to Redis")
    p.add_argument("--token", help="with --url: Bearer token for POST /api/events (an API token with "
                                   "ingest:events, or a JWT); default $QMS_TOKEN")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_simulate)
    from integrations.importer import TOKEN_ENV
    p = sub.add_parser("import", help="import history from GitHub or GitLab (mapped like their webhooks)")
    isub = p.add_subparsers(dest="source", required=True)
    for name, flag, what, items in (("github", "--repo", "OWNER/NAME", "pull requests, reviews, checks"),
                                    ("gitlab", "--project", "GROUP/NAME", "merge requests, notes, pipelines")):
        env = " or ".join(f"${n}" for n in TOKEN_ENV[name])
        ip = isub.add_parser(name, help=f"{items} of one {what} (token: {env})")
        ip.add_argument(flag, required=True, metavar=what)
        ip.add_argument("--since", default="30d", help="how far back: 30d, 12h, or a date 2026-11-01 (default 30d)")
        ip.add_argument("--api-url", help="the REST API's base URL (GitHub Enterprise, self-managed GitLab, tests)")
        ip.add_argument("--restart", action="store_true", help="ignore the checkpoint of an earlier run")
        ip.add_argument("--wait", action="store_true", help="aggregate before returning")
        ip.add_argument("--quiet", action="store_true", help="no progress bar")
        ip.set_defaults(fn=cmd_import)
    p = sub.add_parser("alerts", help="alert rules: test them like promtool test rules")
    asub = p.add_subparsers(dest="alerts_cmd", required=True)
    p = asub.add_parser("test", help="run alert rule test files (snapshot- or event-driven)")
    p.add_argument("files", nargs="+")
    p.set_defaults(fn=cmd_alerts_test)
    p = sub.add_parser("archive", help="move raw events older than the hot window to the Parquet archive")
    p.add_argument("--loop", action="store_true", help="keep going, every --interval seconds")
    p.add_argument("--interval", type=float, default=900.0, help="seconds between runs with --loop (default 900)")
    p.add_argument("--hot-hours", type=float, help="override QMS_RAW_HOT_HOURS")
    p.set_defaults(fn=cmd_archive)
    p = sub.add_parser("rebuild", help="recompute rollups from DATE on from the archive (after a definition change)")
    p.add_argument("--from", dest="from_date", required=True, help="first day (UTC) whose rollups are replaced")
    p.add_argument("--allow-pruned", action="store_true",
                   help="rebuild although the archive's retention removed days (states of entities begun before "
                        "its first day are then lost)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_rebuild)
    from auth.users_cli import register as register_user_commands
    register_user_commands(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, os.environ.get("QMS_LOG_LEVEL", "INFO").upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)     # not a line per evaluation
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"error: {exc}")
    if getattr(args, "needs_services", False):
        svc = _services(settings)
        try:
            args.fn(args, svc)
        finally:
            if svc.embedded:
                svc.embedded.stop()
        return
    args.fn(args, settings)


if __name__ == "__main__":
    main()
