#!/usr/bin/python3
"""pycache: a Python cache that keeps growing and gives back what memrun asks for, through the
stdlib-only client in limiter/python (import memlimit). The Python twin of holdcache: an
OrderedDict of --entry sized bytes values (filled, so resident), one added every --every ms until
--total went in; a registered trimmer drops the oldest entries toward each ask's goal. With
--no-register it registers nothing and, under a budget smaller than --total, is OOM-killed.

    memrun --limit 128M -- python3 examples/pycache.py          (PYTHONPATH=limiter/python)

One line at the end:
  pycache: added=N evicted=N held=BYTES trims=N mode=MODE level=LEVEL wall_ms=N trim_cpu_ms=N
"""
import argparse
import collections
import sys
import threading
import time

import memlimit


def main():
    ap = argparse.ArgumentParser(description="a growing cache governed by memrun")
    ap.add_argument("--total", default="600M", help="bytes to add in all (default 600M)")
    ap.add_argument("--entry", default="1M", help="size of one entry (default 1M)")
    ap.add_argument("--every", type=float, default=5, help="milliseconds between entries (default 5)")
    ap.add_argument("--no-register", action="store_true", help="register no cache: nothing to give back")
    a = ap.parse_args()
    total, entry = memlimit.parse_size(a.total), memlimit.parse_size(a.entry)

    cache = collections.OrderedDict()
    lock = threading.Lock()
    stats = {"evicted": 0, "trims": 0, "cpu": 0.0}

    def trim(level, goal):
        """Drop the oldest entries until goal bytes went (goal 0: half of them)."""
        freed = 0
        c0 = time.thread_time()
        with lock:
            stats["trims"] += 1
            want = goal or len(cache) * entry // 2
            while cache and freed < want:
                cache.popitem(last=False)
                freed += entry
                stats["evicted"] += 1
        stats["cpu"] += time.thread_time() - c0
        return freed

    if not a.no_register:
        memlimit.register_cache("pycache", trim)
    try:
        memlimit.init()
    except OSError as e:
        print("pycache: %s" % e, file=sys.stderr)

    added, key = 0, 0
    t0 = time.monotonic()
    while added < total:
        value = b"\x5a" * entry          # filled: every page resident
        with lock:
            cache[key] = value
        del value
        key += 1
        added += entry
        time.sleep(a.every / 1000)
    with lock:
        held = len(cache) * entry
    wall_ms = int((time.monotonic() - t0) * 1000)
    print("pycache: added=%d evicted=%d held=%d trims=%d mode=%s level=%s wall_ms=%d trim_cpu_ms=%d"
          % (added >> 20, stats["evicted"], held, stats["trims"], memlimit.mode(), memlimit.level(), wall_ms,
             stats["cpu"] * 1000))
    memlimit.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
