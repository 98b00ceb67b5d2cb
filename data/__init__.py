"""data package: Redis-backed data layer. Its aggregation path runs compiled when built (data.native)."""
from data import native as _native

_native.install()
