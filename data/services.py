"""The per-app bundle of Redis client and data services (one per app built, never global)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis

from data.engine import Engine
from data.ingest import Ingestor
from data.keys import Keys
from data.redis_conn import EmbeddedRedis, connect


@dataclass
class Services:
    settings: Any
    redis: redis.Redis
    keys: Keys
    ingestor: Ingestor
    engine: Engine
    embedded: EmbeddedRedis | None = None
    workers: list[Any] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Any, client: redis.Redis | None = None) -> "Services":
        embedded = None
        if client is None:
            client, embedded = connect(settings.redis_url, settings.data_dir)
        return cls(settings, client, Keys(settings.key_prefix), Ingestor.from_settings(client, settings),
                   Engine.from_settings(client, settings), embedded)
