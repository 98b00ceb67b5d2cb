"""Compile the aggregation path (data.native.MODULES) with Cython into .native/ (data/native.py).

    python scripts/build_native.py [--jobs N] [--strict] [--force]

Run by scripts/bootstrap.sh, hence by ./run and ./test. Up to date, it only hashes the sources.
A module whose build for the same source is in the user's cache ($XDG_CACHE_HOME/qms-native,
~/.cache/qms-native) is copied from there; the others are compiled (~20 s for all on 2 cores)
and put in the cache. Builds for other sources are removed from .native/ (kept in the cache 30
days). Without Cython, a C compiler or Python's headers this prints why and exits 0: the
product then runs the modules' source, only slower (--strict: exit 1).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data import native  # noqa: E402

CACHE_DAYS = 30


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qms-native"


def put(src: Path, dest: Path) -> None:
    """Copy whole or not at all: a copy cut short (or read by another checkout's build, through
    the shared cache) must never be a file of the final name, which the import would load."""
    part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    shutil.copy2(src, part)
    part.replace(dest)


def compile_modules(sources: dict[str, bytes], jobs: int, work: Path) -> dict[str, Path]:
    """name -> compiled file, for each name's source as given (its module is data.<name>)."""
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension

    pkg = work / native.PACKAGE
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_bytes(b"")
    exts = []
    for name, source in sources.items():
        (pkg / f"{name}.py").write_bytes(source)
        exts.append(Extension(f"{native.PACKAGE}.{name}", [str(pkg / f"{name}.py")],
                              extra_compile_args=list(native.CFLAGS)))
    exts = cythonize(exts, compiler_directives=dict(native.DIRECTIVES), nthreads=jobs, quiet=True,
                     build_dir=str(work / "c"))
    dist = Distribution({"ext_modules": exts, "script_name": "build_native", "script_args": []})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib = str(work / "lib")
    cmd.build_temp = str(work / "tmp")
    cmd.parallel = jobs
    cmd.ensure_finalized()
    cmd.run()
    return {name: Path(cmd.get_ext_fullpath(f"{native.PACKAGE}.{name}")) for name in sources}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--strict", action="store_true", help="exit 1 when it cannot compile")
    ap.add_argument("--force", action="store_true", help="compile even what is built or cached")
    args = ap.parse_args(argv)
    try:
        return build(args)
    except OSError as exc:           # e.g. a checkout this user cannot write: the source runs
        print(f"native: not built ({exc}); the modules run as Python source, which is slower",
              file=sys.stderr)
        return 1 if args.strict else 0


def build(args: argparse.Namespace) -> int:
    out, cache = native.OUT, cache_dir()
    out.mkdir(exist_ok=True)
    sources = {name: (native.SRC / f"{name}.py").read_bytes() for name in native.MODULES}
    target = {name: out / f"{name}-{native.digest_of(src)}{native.EXT}" for name, src in sources.items()}
    todo: dict[str, bytes] = {}
    for name, path in target.items():
        if path.is_file() and not args.force:
            continue
        cached = cache / path.name
        if cached.is_file() and not args.force:
            put(cached, path)
            with contextlib.suppress(OSError):
                os.utime(cached)      # used: kept another CACHE_DAYS (unless the cache is read-only)
            continue
        todo[name] = sources[name]
    if todo:
        start = time.monotonic()
        print(f"native: compiling {len(todo)} module(s) of data/ with Cython (once per change of their source) ...",
              file=sys.stderr, flush=True)
        try:
            with tempfile.TemporaryDirectory(prefix="qms-native-") as tmp:
                built = compile_modules(todo, max(1, args.jobs), Path(tmp))
                for name, path in built.items():
                    put(path, target[name])
        except Exception as exc:     # ImportError (no Cython), CompileError, LinkError, ...
            print(f"native: not compiled ({type(exc).__name__}: {exc}); the modules run as Python source,"
                  " which is slower (docs/PERFORMANCE.md)", file=sys.stderr)
            return 1 if args.strict else 0
        try:
            cache.mkdir(parents=True, exist_ok=True)
            for name in todo:
                put(target[name], cache / target[name].name)
        except OSError:
            pass                      # a read-only home: no cache, nothing else lost
        print(f"native: done in {time.monotonic() - start:.0f} s", file=sys.stderr)
    keep = {p.name for p in target.values()}
    for old in [*out.glob(f"*{native.EXT}"), *out.glob(".*.part")]:     # (one build per checkout: bootstrap's lock)
        if old.name not in keep:
            old.unlink(missing_ok=True)
    horizon = time.time() - CACHE_DAYS * 86400
    for old in cache.glob(f"*{native.EXT}") if cache.is_dir() else ():
        try:
            if old.stat().st_mtime < horizon:
                old.unlink()
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
