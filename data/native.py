"""The aggregation path's modules compiled with Cython, used only while they match their source.

`scripts/build_native.py` (run by scripts/bootstrap.sh, so by ./run and ./test) compiles each
module of MODULES, unchanged, into `.native/<name>-<digest><EXT_SUFFIX>`, the digest being
that of the module's source as compiled. `install()` (data/__init__.py) puts a finder first on
sys.meta_path: importing one of them loads the compiled file whose digest is the source's as it
is now, or, when there is none (not built, no compiler, the source edited since), the source
as usual. An edit is therefore never shadowed by an older build. QMS_NATIVE=0 turns it off
(profiling the Python with py-spy, comparing).

Compiled, the same code runs ~20 % faster (docs/PERFORMANCE.md, "Stop 36: the aggregation path
compiled with Cython"):
Cython turns each function into C calls on the same objects. Nothing in the source is Cython's:
annotations are not taken as C types (annotation_typing=False), so the semantics are Python's.
"""
from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

PACKAGE = "data"
# The aggregator's per-event path (parse, fold, contributions, codec, keys, commands) and the
# ingest's validation. Build options are part of the digest: changing them rebuilds.
MODULES = ("aggregator", "batch", "contrib", "ledger_contrib", "entcodec", "timeutil", "keys",
           "redis_conn", "events")
DIRECTIVES = {"language_level": 3, "binding": True, "annotation_typing": False}
CFLAGS = ("-O1", "-g0")              # -O3 -g (Python's own) compiles 2.5x longer for no measured gain
OPTIONS = repr((sorted(DIRECTIVES.items()), CFLAGS))
SRC = Path(__file__).resolve().parent
ROOT = SRC.parent
OUT = ROOT / ".native"
EXT = importlib.machinery.EXTENSION_SUFFIXES[0]


def enabled() -> bool:
    return os.environ.get("QMS_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


def digest_of(source: bytes) -> str:
    """The digest a compiled module carries: its source's bytes and the build options."""
    return hashlib.sha256(OPTIONS.encode() + b"\0" + source).hexdigest()[:16]


def digest(name: str) -> str:
    return digest_of((SRC / f"{name}.py").read_bytes())


def built_path(name: str, out: Path = OUT) -> Path:
    return out / f"{name}-{digest(name)}{EXT}"


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, out: Path) -> None:
        self.out = out
        self.wanted = {f"{PACKAGE}.{m}": m for m in MODULES}

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        name = self.wanted.get(fullname)
        if name is None:
            return None
        try:
            so = built_path(name, self.out)
        except OSError:
            return None
        if not so.is_file():
            return None                      # the source, through the usual finders
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(so))
        return importlib.util.spec_from_file_location(fullname, str(so), loader=loader)


def install(out: Path = OUT) -> None:
    """Compiled modules first, when built for the source as it is (once per process)."""
    if not enabled() or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder(out))


def status() -> dict[str, str]:
    """Per module: "compiled" (loaded from .native), "source", or "not loaded"."""
    out: dict[str, str] = {}
    for name in MODULES:
        mod = sys.modules.get(f"{PACKAGE}.{name}")
        if mod is None:
            out[name] = "not loaded"
        else:
            origin = getattr(mod.__spec__, "origin", "") or ""
            out[name] = "compiled" if origin.endswith(EXT) else "source"
    return out
