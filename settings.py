"""Typed settings for the whole product: defaults < YAML file (QMS_CONFIG) < environment.

Scripts rely on REDIS_URL, QMS_HOST, QMS_PORT, QMS_DEMO and QMS_CONFIG; the rest are
tuning knobs documented in the README's settings table.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

# An archive that prunes keeps at least this many days: the longest rollup retention (1h and 1d
# buckets, 90 days: data.timeutil.RESOLUTIONS) + 1, so a KPI the rollups still answer can be
# drilled down to its events (tests/unit/test_archive.py checks the two agree).
ARCHIVE_MIN_DAYS = 91


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message names the source."""


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {raw!r}")


@dataclass(frozen=True)
class Settings:
    """Every setting, with its default. Field name = YAML key; env var = QMS_<NAME> unless mapped."""

    redis_url: str | None = None          # REDIS_URL; None = embedded Redis
    data_dir: str = ".qms-data"            # embedded Redis keeps its files here
    redis_connect_timeout_s: float = 1.0   # Redis down: a request answers 503 after this, not a hang
    redis_socket_timeout_s: float = 2.0    # ... or after this when Redis accepts but does not answer
    host: str = "127.0.0.1"
    port: int = 8050
    demo: bool = False                     # simulated traffic in the web process
    demo_rate: float = 0.5                 # simulated events per second (~100 active reviews)
    demo_backfill: str = "3d"              # history simulated before going live (covers 24h + the window before)
    demo_seed: int = 42
    run_aggregator: bool = True            # run the aggregator as a thread of the web process
    key_prefix: str = "qms"
    sla_hours: float = 8.0
    max_body_bytes: int = 1024 * 1024
    max_batch_events: int = 10_000
    max_event_bytes: int = 64 * 1024
    max_future_skew_s: int = 900           # events more than this in the future are rejected
    raw_retention_days: int = 30           # raw events kept for drill-down and CSV
    export_max_rows: int = 0               # cut drill-down and widget exports at this many rows (0: complete)
    dedup_retention_days: int = 90         # how long an event id is remembered
    dedup_buckets: int = 1024              # hashes per day that remember event ids (~ events a day / 100; pinned at first use)
    aggregator_batch: int = 2000
    aggregator_batch_max: int = 8000       # catching up on a backlog, batches double up to this (data.aggregator: Aggregator._sized)
    aggregation_partitions: int = 1        # QMS_PARTITIONS: K partitions, K aggregator processes work at once (docs/INTERNALS.md, "Partitions")
    redis_cluster: bool = False            # QMS_REDIS_CLUSTER: REDIS_URL names one node of a Redis Cluster (keys partitioned)
    aggregator_block_ms: int = 1000
    reclaim_idle_ms: int = 30_000          # pending entries older than this are reclaimed
    stream_maxlen: int = 5_000_000         # approximate cap of the ingest stream
    series_points: int = 500
    cache_ttl_s: int = 300
    series_cache_s: float = 5.0            # charts' series are shared this long (KPI cards are exact per batch)
    body_cache_s: float = 5.0              # a drawn widget body is reused this long across data versions (0: per version)
    refresh_ms: int = 5000                 # first page refresh interval
    draw_concurrency: int = 2              # requests drawing widget bodies at once per web process, the rest queued in order (0: no limit)
    log_level: str = "INFO"                # the app's log lines under gunicorn (app.py) and cli.py: DEBUG, INFO, WARNING, ERROR
    draw_max_wait_s: float = 5.0           # a draw expected to wait longer at the gate than this: the page takes a body up to overload_max_age_s old instead
    overload_max_age_s: float = 600.0      # how old a kept body a page may show while draws queue past draw_max_wait_s (0: only the 4 x staleness window)
    draw_stats_s: float = 60.0             # each web process logs what its page draws did once per this period (0: never; callbacks/draw_stats.py)
    rbac_path: str | None = None           # roles and permissions YAML (default config/rbac.yaml)
    dashboards_dir: str | None = None      # provisioned dashboard definitions (default config/dashboards)
    secret_key: str | None = None          # signs sessions and JWTs; unset = generated once in data_dir
    https: bool = False                    # served over HTTPS: Secure cookies
    session_hours: float = 12.0            # a session ends this long after sign-in
    remember_days: int = 14                # "remember me" cookie lifetime
    jwt_ttl_s: int = 3600                  # lifetime of JWTs from POST /api/auth/token
    live: bool = True                      # /ws and /api/stream push updates (else pages poll)
    live_publisher: bool = True            # compute and publish live updates in this process (with the aggregator)
    allowed_origins: str = ""              # extra Origins allowed to open /ws (comma list); the app's own is always allowed
    trusted_proxies: int = 0               # reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host are believed
    ws_max_message_bytes: int = 4096       # a bigger client message is refused
    ws_rate_per_s: float = 20.0            # client messages per second per socket (burst 40)
    alerts: bool = True                    # alert rules evaluated (one loop per deployment, leader lock)
    alert_rules_path: str | None = None    # rule YAML (default config/alert_rules.yaml), re-read when it changes
    alert_interval_s: float = 15.0         # evaluation interval
    alert_timeframe: str = "1h"            # window of the KPIs that rules compare
    public_url: str = ""                   # base of links in notifications (default http://host:port)
    integrations_path: str | None = None   # QMS_INTEGRATIONS: the mapping file (default config/integrations.yaml)
    github_webhook_secret: str | None = None      # HMAC secret of /api/webhooks/github (unset: 404)
    webhook_rate_per_min: int = 600        # deliveries a minute per source and client address (then 429)
    gitlab_webhook_token: str | None = None       # X-Gitlab-Token of /api/webhooks/gitlab (unset: 404)
    sonarqube_webhook_secret: str | None = None   # HMAC secret of /api/webhooks/sonarqube (unset: 404)
    # Event archive (data/archive.py, docs/INTERNALS.md "Event archive"): raw events older
    # than the hot window move from Redis to Parquet files by day; readers span both.
    raw_hot_hours: float = 48.0            # raw events kept in Redis this long (older ones move to the archive)
    archive_dir: str | None = None         # default <data_dir>/archive
    archive_interval_s: float = 900.0      # the embedded archiver's period (cli.py archive --loop: its own)
    archive_retention_days: int = 0        # archived days kept on disk (0: all); else at least the rollups' 90 days + 1
    config_path: str | None = None         # QMS_CONFIG
    extra: Mapping[str, Any] = field(default_factory=dict)  # unknown YAML sections, kept for later features

    ENV_NAMES = {"redis_url": "REDIS_URL", "config_path": "QMS_CONFIG", "integrations_path": "QMS_INTEGRATIONS",
                 "aggregation_partitions": "QMS_PARTITIONS"}

    @classmethod
    def env_name(cls, name: str) -> str:
        return cls.ENV_NAMES.get(name, "QMS_" + name.upper())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Build settings from the YAML file named by QMS_CONFIG, then the environment, then overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        config_path = overrides.get("config_path") or env.get("QMS_CONFIG")
        extra: dict[str, Any] = {}
        if config_path:
            values["config_path"] = config_path
            for key, value in _load_yaml(config_path).items():
                if key in _FIELD_TYPES and key not in ("extra", "config_path"):
                    values[key] = _coerce(key, value, f"{config_path}: {key}")
                else:
                    extra[key] = value
        for name in _FIELD_TYPES:
            if name in ("extra", "config_path"):
                continue
            env_key = cls.env_name(name)
            if env_key in env and env[env_key] != "":
                values[name] = _coerce(name, env[env_key], f"environment {env_key}")
        for name, value in overrides.items():
            if name not in _FIELD_TYPES:
                raise SettingsError(f"unknown setting {name!r}")
            values[name] = value
        if extra:
            values["extra"] = {**extra, **dict(values.get("extra", {}))}
        settings = cls(**values)
        settings.validate()
        return settings

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        if not (0 < self.port < 65536):
            raise SettingsError(f"port: {self.port} is not a TCP port")
        for name in ("max_body_bytes", "max_batch_events", "max_event_bytes", "aggregator_batch", "aggregator_batch_max",
                     "series_points", "raw_retention_days", "dedup_retention_days", "dedup_buckets"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name}: must be positive")
        if self.archive_retention_days < 0 or 0 < self.archive_retention_days < ARCHIVE_MIN_DAYS:
            raise SettingsError(f"archive_retention_days: 0 (keep every day) or at least {ARCHIVE_MIN_DAYS}: a "
                                "window the rollups still answer must have its events for its drill-down")
        if not 1 <= self.aggregation_partitions <= 1024:
            raise SettingsError("aggregation_partitions: must be 1 to 1024")
        if self.redis_cluster and not self.redis_url:
            raise SettingsError("redis_cluster: needs REDIS_URL (a node of the cluster)")
        if self.sla_hours <= 0:
            raise SettingsError("sla_hours: must be positive")
        for name in ("redis_connect_timeout_s", "redis_socket_timeout_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name}: must be positive")
        if self.aggregator_block_ms >= 1000 * self.redis_socket_timeout_s:
            # The aggregator's blocking read would end in a socket timeout every time.
            raise SettingsError(f"aggregator_block_ms: {self.aggregator_block_ms} must be shorter than "
                                f"redis_socket_timeout_s ({self.redis_socket_timeout_s:g} s)")


_FIELD_TYPES: dict[str, str] = {f.name: str(f.type) for f in fields(Settings)}


def _coerce(name: str, value: Any, where: str) -> Any:
    kind = _FIELD_TYPES[name]
    try:
        if value is None:
            return None
        if kind.startswith("bool"):
            return value if isinstance(value, bool) else _parse_bool(str(value))
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
        return str(value)
    except ValueError as exc:
        raise SettingsError(f"{where}: {exc}") from None


def _load_yaml(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise SettingsError(f"QMS_CONFIG: {path} does not exist")
    try:
        loaded = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise SettingsError(f"{path}: top level must be a mapping")
    return loaded
