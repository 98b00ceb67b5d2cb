"""auth.offload: a password hash runs on a native thread under gevent (the loop serves the
other requests meanwhile), and is a plain call without gevent."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from auth.offload import off_loop

ROOT = Path(__file__).resolve().parents[2]


def test_off001_without_gevent_a_plain_call() -> None:
    assert off_loop(threading.get_ident) == threading.get_ident()
    assert off_loop(lambda a, b: a + b, 2, 3) == 5


def test_off002_under_gevent_another_thread_and_the_loop_goes_on() -> None:
    code = """
from gevent import monkey
monkey.patch_all()
import gevent
from gevent.monkey import get_original
from werkzeug.security import check_password_hash, generate_password_hash
from auth.offload import off_loop
native = get_original("_thread", "get_ident")
h = generate_password_hash("a password", method="scrypt")
ticks = []
def ticker():
    while True:
        ticks.append(1)
        gevent.sleep(0.001)
t = gevent.spawn(ticker)
gevent.sleep(0)
before = len(ticks)
ok = off_loop(check_password_hash, h, "a password")
bad = off_loop(check_password_hash, h, "another one")
print(ok, bad, off_loop(native) != native(), len(ticks) > before)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    # right and wrong password told apart; the hash ran on another thread; the loop ran meanwhile
    assert out.stdout.split() == ["True", "False", "True", "True"], out.stdout
