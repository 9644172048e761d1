"""glibc malloc tuning: a process that serves bots keeps to two arenas and hands free pages back.

Each test runs a fresh interpreter (arenas are per process, and the tuning is done once per process)
and reads glibc's own account of its heaps (``malloc_info``) or the kernel's (``VmRSS``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from bots import malloc

pytestmark = pytest.mark.skipif(malloc._glibc() is None, reason="glibc's malloc only")

#: Runs ``setup``, then eight threads that each allocate from malloc at once, and prints how many heaps
#: (arenas) glibc reports afterwards.
ARENAS_SCRIPT = """
import ctypes, os, tempfile, threading
from bots import malloc
{setup}
gate = threading.Barrier(8)
def work():
    gate.wait()
    blocks = [bytearray(4096) for _ in range(200)]  # past pymalloc's 512 bytes: from glibc's malloc
    gate.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads: thread.start()
for thread in threads: thread.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
path = tempfile.mktemp()
handle = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, handle)
libc.fclose(handle)
print(open(path).read().count("<heap nr="))
os.unlink(path)
"""

#: Leaves a thread's arena full of free pages (one block in 64 kept), reads VmRSS (kB), runs ``setup`` (so no
#: trim can come before that reading), and prints the reading and VmRSS ``wait`` seconds later.
TRIM_SCRIPT = """
import json, threading, time
from bots import malloc
def rss():
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS:")).split()[1])
kept = []
def fill():
    blocks = [bytearray(1024) for _ in range(64 * 1024)]
    kept.extend(blocks[::64])
thread = threading.Thread(target=fill)
thread.start()
thread.join()
before = rss()
{setup}
time.sleep({wait})
print(json.dumps([before, rss()]))
"""


def run(script: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          check=True, timeout=60, env=env).stdout


def test_a_tuned_process_keeps_to_two_arenas_however_many_threads_allocate():
    untuned = int(run(ARENAS_SCRIPT.format(setup="")))
    tuned = int(run(ARENAS_SCRIPT.format(setup="malloc.tune()")))

    assert untuned > malloc.ARENAS  # glibc's own rule: an arena per thread, up to eight per core
    assert tuned <= malloc.ARENAS


def test_malloc_arena_max_in_the_environment_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")

    arenas = int(run(ARENAS_SCRIPT.format(setup="malloc.tune()"), env=dict(os.environ)))

    assert malloc.ARENAS < arenas <= 4


def test_free_pages_go_back_to_the_kernel_within_a_trim_period():
    untrimmed = json.loads(run(TRIM_SCRIPT.format(setup="", wait=1.0)))
    trimmed = json.loads(run(TRIM_SCRIPT.format(setup="malloc.tune(trim_every=0.2)", wait=1.0)))

    assert untrimmed[1] > untrimmed[0] - 20_000  # left alone, glibc keeps the ~64 MB of free pages
    assert trimmed[1] < trimmed[0] - 40_000


def test_tuning_twice_starts_one_trimming_thread():
    threads = run("""
        import threading
        from bots import malloc
        malloc.tune(); malloc.tune()
        print(sum(thread.name == "bots-malloc-trim" for thread in threading.enumerate()))
    """)

    assert threads.strip() == "1"
