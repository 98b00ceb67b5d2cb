"""Every Redis key the product uses, in one place (docs/ARCHITECTURE.md lists them too).

Templates are module constants; `Keys(prefix)` formats them so tests and several
deployments can share one Redis.
"""
from __future__ import annotations

import hashlib
from typing import Any

from data.partition import owner as _owner
from data.partition import partition_of

STREAM = "{p}:events"                      # stream: ingest log, field "e" = one bare event as JSON
GROUP = "aggregators"                      # consumer group on STREAM
ROUTER_GROUP = "router"                    # consumer group on the root STREAM when partitioned (the router step)
PART = "{p}:{{{i}}}"                       # prefix of partition i's keys: the hash tag {i} puts them in one slot
DEADLETTER = "{p}:deadletter"              # stream: rejected events, fields reason/raw/origin/at
SEEN = "{p}:seen:{day}:{b}"                # hash: event id fingerprint (8 bytes) -> 0 accepted by the ingest, 1 applied by an aggregator; bucket b of the event's day
SEEN_BUCKETS = "{p}:seen:buckets"          # string: the bucket count SEEN keys were made with (pinned at first use)
INGEST_SEEN = "{p}:seen:in:{day}"          # legacy set of event ids accepted by the HTTP ingest (read until it expires)
APPLIED = "{p}:seen:agg:{day}"             # legacy set of event ids applied by an aggregator (read until it expires)
ROLLUP = "{p}:r:{res}:{fam}:{start}"       # hash: rollup bucket of family fam at resolution res
TOTALS = "{p}:tot:{fam}"                   # hash: sum of all step deltas ever (state at +inf)
CARRY = "{p}:carry"                        # set: rollup/total keys with a "<key>:carry" hash (field = carries of 2^62)
ENTITY = "{p}:ent:{kind}:{id}"             # string: JSON state of one workflow/defect/review/compliance entity
TIMELINE = "{p}:tl:{kind}:{id}"            # zset: agent status / queue depth changes, score = ts ms
REGISTRY = "{p}:reg:{kind}"                # set: known gates, queues, users, teams, categories, types, agents
STATE = "{p}:state:{kind}"                 # hash: current state for display (agents, queues, active, ...)
AUTHORS = "{p}:authors"                    # hash: author -> JSON {ts, team} of their latest pr_created
RAW = "{p}:raw:{day}"                      # hash: event id -> JSON, by event day (drill-down, CSV)
RAW_INDEX = "{p}:rawidx:{type}:{day}"      # zset: event ids of one type on one day, score = ts ms
WORKFLOW_TEAM = "{p}:wft:{id}"             # string: a workflow's team ("" when it has none), as long as its entity
ENTITY_EVENTS = "{p}:eix:{kind}:{id}"      # zset: event ids of one workflow ("wf") or actor ("ac": agent/reviewer/finder), score = ts ms
META = "{p}:meta"                          # hash: version, last_batch_ms, counters of the aggregator
CACHE = "{p}:cache:{key}"                  # string: a computed dashboard response
LOCK = "{p}:agg:lock"                      # string: the aggregators' apply lock (token, PX)
PREFS = "{p}:prefs"                        # hash: user -> JSON of personal settings (theme)
AUDIT = "{p}:audit"                        # stream: audit log, field "e" = one entry as JSON
DEMO = "{p}:demo"                          # hash: the demo simulation's epoch, cursor, seed, rate, beat (ms it last wrote)
USER = "{p}:user:{name}"                   # hash: one account: roles, password hash (Argon2id), disabled, session_epoch
USERS = "{p}:users"                        # set: every account name
TOKEN = "{p}:token:{id}"                   # hash: one API token: name, roles, sha256 of the secret, revoked, last_used
TOKENS = "{p}:tokens"                      # set: every API token id
# Pub/sub channels are global to a Redis server (not per database): their names carry the
# database number too ({n} = "<prefix>@<db>"), so deployments on two databases never mix.
LIVE = "{n}:live:{channel}"                 # pub/sub channel: messages for browsers on one channel (data_update, alert)
LIVE_APPLIED = "{n}:live-applied"          # pub/sub channel: the aggregator's new data version after each batch
LIVE_CONTROL = "{n}:live-control"          # pub/sub channel: close a user's or a credential's sockets (sign-out, disabled, token revoked)
LIVE_LAST = "{p}:live-last:{channel}"      # hash: timeframe -> last data_update payload (snapshot on subscribe)
LIVE_CLAIM = "{p}:live-claim:{version}"    # string (NX, EX): which publisher computes this data version
SIGNIN_FAIL_USER = "{p}:signin:fail:user:{name}"  # string: failed sign-ins for a name in the current window (EX)
SIGNIN_FAIL_IP = "{p}:signin:fail:ip:{ip}"        # string: failed sign-ins from an address in the current window (EX)
SIGNIN_FAIL_PAIR = "{p}:signin:fail:pair:{name}|{ip}"  # string: failed sign-ins of one name from one address (EX)
SESSION = "{p}:session:{id}"               # hash: one browser sign-in (user, epoch, remember), id = sha256 of the cookie's id (EX)
USER_SESSIONS = "{p}:user-sessions:{name}"  # zset: the sign-in digests of one user, score = expiry ms (to end them all)
# Dashboards as data (dashboards/store.py, dashboards/provision.py). Ids are slugs (no ':').
DASH_IDS = "{p}:dash:ids"                  # hash: id of every created dashboard -> its owner ("" once shared): ids are unique
DASH_SHARED = "{p}:dash:shared"            # hash: id -> JSON record {definition, updated_at, updated_by} of a shared dashboard or of a provisioned one's override
DASH_USER = "{p}:dash:user:{name}"         # hash: id -> JSON record of a user's personal dashboard or personal copy ("copy": true)
DASH_VERSIONS = "{p}:dash:ver:{id}"        # list: versions of a dashboard (shared, override, personal), JSON {n, at, by, summary, definition}
DASH_COPY_VERSIONS = "{p}:dash:ver:{id}:u:{name}"  # list: versions of one user's personal copy of a dashboard
DASH_STARS = "{p}:dash:stars:{name}"       # set: the dashboard ids a user starred
DASH_PROVISIONED = "{p}:dash:provisioned"  # hash: provisioned file name -> JSON of its last definition that validated
# Webhook receivers (integrations/receiver.py); source = github | gitlab | sonarqube.
WH_DELIVERIES = "{p}:wh:{source}:deliveries"  # stream: stored deliveries (id, event, received_at, status, events, error, headers, body)
WH_STATS = "{p}:wh:{source}:stats"         # hash: received, mapped, unknown, ignored, invalid, duplicate, bad_signature, last_*
WH_SEEN = "{p}:wh:{source}:seen"           # zset: delivery ids seen, score = ms received (trimmed after 7 days)
WH_HEAD = "{p}:wh:{source}:head:{sha}"     # string (EX 30 d): JSON list of the workflows whose head commit this is
WH_RATE = "{p}:wh:{source}:rate:{addr}:{window}"  # string (EX): deliveries from one address in one rate-limit window


class Keys:
    """Key names. `partitions` > 1 (or `cluster`) makes the deployment partitioned: the
    aggregator's keys of partition i are `part(i)`'s (prefix `<prefix>:{i}`), and `entity()`,
    `timeline()` and `workflow_team()` name the key in the partition that owns it (data.partition),
    so their readers need not know about partitions. K = 1 on a single Redis keeps every name."""

    def __init__(self, prefix: str = "qms", db: int = 0, partitions: int = 1, cluster: bool = False) -> None:
        self.p = prefix
        self.root = prefix
        self.db = db
        self.partitions = max(1, int(partitions))
        self.cluster = bool(cluster)
        self.partitioned = self.cluster or self.partitions > 1
        self.index = 0                       # this object's partition (part(i) sets it)
        self._parts: list["Keys"] | None = None
        self.n = f"{prefix}@{db}"
        self.stream = STREAM.format(p=prefix)
        self.group = GROUP
        self.deadletter = DEADLETTER.format(p=prefix)
        self.authors = AUTHORS.format(p=prefix)
        self.meta = META.format(p=prefix)
        self.lock = LOCK.format(p=prefix)
        self.carry = CARRY.format(p=prefix)
        self.demo = DEMO.format(p=prefix)
        self.prefs = PREFS.format(p=prefix)
        self.live_applied = LIVE_APPLIED.format(n=self.n)
        self.live_control = LIVE_CONTROL.format(n=self.n)
        self.live_pattern = LIVE.format(n=self.n, channel="*")

    @classmethod
    def of(cls, r: Any, prefix: str, partitions: int = 1) -> "Keys":
        """Keys for a client: the client's database number goes into pub/sub channel names; a
        Redis Cluster client (database 0 only) makes the keys partitioned."""
        pool = getattr(r, "connection_pool", None)
        if pool is None:                     # redis.cluster.RedisCluster
            return cls(prefix, 0, partitions, cluster=True)
        return cls(prefix, int(pool.connection_kwargs.get("db", 0) or 0), partitions)

    @classmethod
    def from_settings(cls, r: Any, settings: Any) -> "Keys":
        return cls.of(r, settings.key_prefix, getattr(settings, "aggregation_partitions", 1))

    def part(self, i: int) -> "Keys":
        """Partition i's keys (stream, consumer group, applied ids, rollups, totals, carry,
        meta, lock, dead letters of the aggregator): this object itself when not partitioned."""
        if not self.partitioned:
            return self
        return self.parts()[i]

    def parts(self) -> list["Keys"]:
        if self._parts is None:
            if not self.partitioned:
                self._parts = [self]
            else:
                self._parts = []
                for i in range(self.partitions):
                    pk = Keys(PART.format(p=self.root, i=i), self.db)
                    pk.index = i
                    pk.root = self.root
                    self._parts.append(pk)
        return self._parts

    @property
    def inbox(self) -> str:
        """The stream producers XADD to: the ingest stream itself, or (partitioned) the
        router's input, whose entries the router step moves to their partitions."""
        return STREAM.format(p=self.root)

    def owner_prefix(self, kind: str, ident: str) -> str:
        if not self.partitioned:
            return self.p
        return PART.format(p=self.root, i=partition_of(_owner(kind, ident), self.partitions))

    def live(self, channel: str) -> str:
        return LIVE.format(n=self.n, channel=channel)

    def live_last(self, channel: str) -> str:
        return LIVE_LAST.format(p=self.p, channel=channel)

    def live_claim(self, version: int) -> str:
        return LIVE_CLAIM.format(p=self.p, version=version)

    def seen(self, day: int, bucket: int) -> str:
        return SEEN.format(p=self.p, day=day, b=bucket)

    @property
    def seen_buckets(self) -> str:
        return SEEN_BUCKETS.format(p=self.root)

    def ingest_seen(self, day: int) -> str:
        return INGEST_SEEN.format(p=self.p, day=day)

    def applied(self, day: int) -> str:
        return APPLIED.format(p=self.p, day=day)

    def rollup(self, res: str, fam: str, start: int) -> str:
        return ROLLUP.format(p=self.p, res=res, fam=fam, start=start)

    def totals(self, fam: str) -> str:
        return TOTALS.format(p=self.p, fam=fam)

    def entity(self, kind: str, ident: str) -> str:
        return ENTITY.format(p=self.owner_prefix(kind, ident), kind=kind, id=ident)

    def timeline(self, kind: str, ident: str) -> str:
        return TIMELINE.format(p=self.owner_prefix(kind, ident), kind=kind, id=ident)

    def registry(self, kind: str) -> str:
        return REGISTRY.format(p=self.p, kind=kind)

    def state(self, kind: str) -> str:
        return STATE.format(p=self.p, kind=kind)

    def raw(self, day: int) -> str:
        return RAW.format(p=self.p, day=day)

    def raw_index(self, ev_type: str, day: int) -> str:
        return RAW_INDEX.format(p=self.p, type=ev_type, day=day)

    def workflow_team(self, ident: str) -> str:
        return WORKFLOW_TEAM.format(p=self.owner_prefix("wf", ident), id=ident)

    def entity_events(self, kind: str, ident: str) -> str:
        return ENTITY_EVENTS.format(p=self.p, kind=kind, id=ident)

    def cache(self, key: str) -> str:
        return CACHE.format(p=self.p, key=key)

    def user(self, name: str) -> str:
        return USER.format(p=self.p, name=name)

    @property
    def users(self) -> str:
        return USERS.format(p=self.p)

    def token(self, ident: str) -> str:
        return TOKEN.format(p=self.p, id=ident)

    @property
    def tokens(self) -> str:
        return TOKENS.format(p=self.p)

    def signin_fail_user(self, name: str) -> str:
        return SIGNIN_FAIL_USER.format(p=self.p, name=name)

    def signin_fail_ip(self, ip: str) -> str:
        return SIGNIN_FAIL_IP.format(p=self.p, ip=ip)

    def signin_fail_pair(self, name: str, ip: str) -> str:
        return SIGNIN_FAIL_PAIR.format(p=self.p, name=name, ip=ip)

    def session(self, ident: str) -> str:
        return SESSION.format(p=self.p, id=ident)

    def user_sessions(self, name: str) -> str:
        return USER_SESSIONS.format(p=self.p, name=name)

    @property
    def dash_ids(self) -> str:
        return DASH_IDS.format(p=self.p)

    @property
    def dash_shared(self) -> str:
        return DASH_SHARED.format(p=self.p)

    @property
    def dash_provisioned(self) -> str:
        return DASH_PROVISIONED.format(p=self.p)

    def dash_user(self, name: str) -> str:
        return DASH_USER.format(p=self.p, name=name)

    def dash_versions(self, ident: str, user: str | None = None) -> str:
        """A dashboard's versions, or (with `user`) those of that user's personal copy of it."""
        if user is None:
            return DASH_VERSIONS.format(p=self.p, id=ident)
        return DASH_COPY_VERSIONS.format(p=self.p, id=ident, name=user)

    def dash_stars(self, name: str) -> str:
        return DASH_STARS.format(p=self.p, name=name)

    def webhook(self, source: str, what: str, **parts: Any) -> str:
        """A webhook receiver's key: what = deliveries | stats | seen | head (sha=) | rate (addr=, window=)."""
        template = {"deliveries": WH_DELIVERIES, "stats": WH_STATS, "seen": WH_SEEN, "head": WH_HEAD,
                    "rate": WH_RATE}[what]
        return template.format(p=self.p, source=source, **parts)


# --- event id de-duplication ------------------------------------------------------------
# One structure for the ingest and the aggregators: per event day, `buckets` small hashes
# (listpack-encoded while they hold <= 128 fields: ~12 B an id instead of ~75 B in each of
# two sets) whose fields are an 8-byte fingerprint of the id. The bucket takes another
# log2(buckets) bits of the same hash, so two ids of one day are confused with odds of about
# n^2 / 2^(65 + log2 buckets): 2e-11 for 864,000 ids a day in 1,024 buckets.
SEEN_ACCEPTED, SEEN_APPLIED = b"0", b"1"


def fingerprint(ident: str, buckets: int) -> tuple[int, bytes]:
    """(bucket, field) of an event id in its day's seen hashes."""
    h = hashlib.blake2b(ident.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    return int.from_bytes(h[8:], "big") % buckets, h[:8]


def seen_buckets(r: Any, keys: "Keys", wanted: int) -> int:
    """The bucket count of the deployment: `wanted` (the `dedup_buckets` setting) the first
    time, then always the one pinned in Redis, so every process (and a changed setting)
    finds the ids where they were put."""
    r.set(keys.seen_buckets, int(wanted), nx=True)      # (SET NX GET needs Redis 7)
    got = r.get(keys.seen_buckets)
    return int(got) if got is not None else int(wanted)
