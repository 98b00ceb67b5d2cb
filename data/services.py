"""The per-app bundle of Redis client and services (one per app built, never global)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis

from data import archive
from data.audit import AuditLog
from data.engine import Engine
from data.ingest import Ingestor
from data.keys import Keys
from data.redis_conn import EmbeddedRedis, connect
from data.signin import SignInLimiter
from data.users import TokenStore, UserStore


@dataclass
class Services:
    settings: Any
    redis: redis.Redis
    keys: Keys
    ingestor: Ingestor
    engine: Engine
    users: UserStore
    tokens: TokenStore
    limiter: SignInLimiter
    audit: AuditLog
    rbac: Any
    secret_key: str
    embedded: EmbeddedRedis | None = None
    dashboards: Any = None            # dashboards.store.DashboardStore (definitions, copies, versions, stars)
    workers: list[Any] = field(default_factory=list)

    def sanitizer_for(self, roles: Any, user: str | None = None) -> Any:
        """The sanitiser of a principal's roles: the RBAC file's merge (most permissive known
        role wins; unknown roles never loosen it; no known role = most restrictive), with the
        team scope of `user` (auth.scope; without a user, other teams' rules apply to every row)."""
        from auth.scope import sanitizer_for
        return sanitizer_for(self.rbac, self.redis, self.keys, self.secret_key.encode(), roles, user)

    @classmethod
    def build(cls, settings: Any, client: redis.Redis | None = None) -> "Services":
        from auth.rbac import DEFAULT_RBAC_PATH, load_rbac
        from auth.security import secret_key
        embedded = None
        if client is None:
            client, embedded = connect(settings.redis_url, settings.data_dir,
                                       connect_timeout_s=settings.redis_connect_timeout_s,
                                       socket_timeout_s=settings.redis_socket_timeout_s,
                                       cluster=settings.redis_cluster)
        from dashboards.provision import Provisioner
        from dashboards.store import DashboardStore
        keys = Keys.from_settings(client, settings)
        archive.configure(keys, settings)          # readers span Redis and the event archive (data/archive.py)
        engine = Engine.from_settings(client, settings)
        dashboards = DashboardStore(client, keys, Provisioner(settings.dashboards_dir, r=client, keys=keys),
                                    team_of=engine.team_of)
        return cls(settings, client, keys, Ingestor.from_settings(client, settings), engine,
                   UserStore(client, keys), TokenStore(client, keys), SignInLimiter(client, keys),
                   AuditLog(client, settings.key_prefix), load_rbac(settings.rbac_path or DEFAULT_RBAC_PATH),
                   secret_key(settings), embedded, dashboards)
