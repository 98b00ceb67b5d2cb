"""The compiled aggregation path (data/native.py, scripts/build_native.py).

./test (scripts/bootstrap.sh) compiles the modules before the suite, so the whole suite runs
on them: test_nat001 says so, and fails when the build broke (QMS_NATIVE=0 turns both off).
A build is used only for the source it was compiled from (nat002); the build script takes
what it can from its cache and removes builds of older sources (nat003).
"""
from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data import native

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not native.enabled(), reason="QMS_NATIVE=0: the source runs, by request")
def test_nat001_suite_runs_on_the_compiled_modules():
    for name in native.MODULES:
        importlib.import_module(f"data.{name}")
    assert native.status() == {name: "compiled" for name in native.MODULES}, (
        "scripts/build_native.py did not build every module (bootstrap prints why)")
    # ... and they are the Python source's own: the same functions, the same results.
    from data import entcodec, keys
    state = {"c": [1_793_779_200_000, "ana", "core", "org/repo", 7, "gh:org/repo#7:opened"]}
    assert entcodec.decode(entcodec.encode("wf", state)) == state
    assert entcodec.encode("wf", state) == _pure(f"from data.entcodec import encode; print(repr(encode('wf', {state!r})))")
    assert keys.fingerprint("sim-1-x", 64) == _pure("from data.keys import fingerprint; "
                                                    "print(repr(fingerprint('sim-1-x', 64)))")


def _pure(code: str) -> object:
    """What `code` prints, run on the modules' source (QMS_NATIVE=0)."""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={"QMS_NATIVE": "0", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout
    return eval(out)  # noqa: S307 (our own repr)


def test_nat002_a_build_of_another_source_is_never_loaded(tmp_path):
    finder = native._Finder(tmp_path)
    so = native.built_path("keys", tmp_path)
    stale = tmp_path / f"keys-{'0' * 16}{native.EXT}"
    stale.write_bytes(b"not loaded")
    assert finder.find_spec("data.keys") is None          # only another source's build: the .py
    so.write_bytes(b"")
    spec = finder.find_spec("data.keys")
    assert spec is not None and spec.origin == str(so)
    assert finder.find_spec("data.kpis") is None          # not one of the compiled modules
    assert native.digest_of(b"x = 1\n") != native.digest_of(b"x = 2\n")
    # The source as it is now decides: the digest is the file's.
    assert native.digest("keys") == native.digest_of((native.SRC / "keys.py").read_bytes())


def test_nat003_build_uses_the_cache_and_drops_older_builds(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_native
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    out, cache = tmp_path / "out", tmp_path / "cache"
    monkeypatch.setattr(native, "OUT", out)
    monkeypatch.setattr(build_native, "cache_dir", lambda: cache)
    compiled: list[list[str]] = []

    def fake_compile(sources, jobs, work):
        compiled.append(sorted(sources))
        built = {}
        for name, src in sources.items():
            built[name] = work / f"{name}.so"
            built[name].write_bytes(b"built from " + src[:20])
        return built

    monkeypatch.setattr(build_native, "compile_modules", fake_compile)
    out.mkdir()
    old = out / f"keys-{'f' * 16}{native.EXT}"
    old.write_bytes(b"older source")
    assert build_native.main([]) == 0
    assert compiled == [sorted(native.MODULES)]
    assert sorted(p.name for p in out.iterdir()) == sorted(native.built_path(m, out).name for m in native.MODULES)
    assert sorted(p.name for p in cache.iterdir()) == sorted(p.name for p in out.iterdir())
    # Up to date: nothing compiled. .native emptied (a new clone): copied from the cache.
    assert build_native.main([]) == 0
    shutil.rmtree(out)
    assert build_native.main([]) == 0
    assert len(compiled) == 1 and len(list(out.iterdir())) == len(native.MODULES)
    # No Cython (or no compiler): the source runs; --strict says it failed.
    def broken(sources, jobs, work):
        raise ImportError("No module named 'Cython'")
    monkeypatch.setattr(build_native, "compile_modules", broken)
    assert build_native.main(["--force"]) == 0
    assert build_native.main(["--force", "--strict"]) == 1
    # A checkout it cannot write (an install owned by another user): the same.
    monkeypatch.setattr(native, "OUT", tmp_path / "no" / "such" / "dir")
    assert build_native.main([]) == 0
    assert build_native.main(["--strict"]) == 1
