"""memlimit: the Python client of memrun's limiter (libmemlimit's protocol), standard library only.

    import memlimit
    memlimit.register_cache("users", lambda level, goal: users.evict(goal))   # returns bytes freed
    memlimit.init()          # attach to memrun ($MEMRUN_LIMITER), else MEMLIMIT=SIZE, else no-op

Under memrun the governor asks the process to trim (registered caches, toward a goal in bytes),
collect (registered collectors, then gc.collect() and glibc's malloc_trim(0)) or shed load, and the
process answers with what resident memory actually fell by. A background thread reads memrun's
messages and runs the callbacks, one at a time. See memlimit(3) for the C library this mirrors.

Unmodified programs: python3 -m memlimit.run prog.py [args...] attaches before the program runs and
answers trim and collect with gc.collect() and malloc_trim(0).
"""
import functools

from ._core import CLIENT as _C, NONE, Level, malloc_trim, parse_size, rss

OK, MODERATE, HIGH, CRITICAL = Level.OK, Level.MODERATE, Level.HIGH, Level.CRITICAL

__all__ = ["init", "register_cache", "register_collector", "register_lru_cache", "on_level", "on_limits",
           "level", "shedding", "limits", "mode", "set_limit", "shutdown", "Level", "OK", "MODERATE",
           "HIGH", "CRITICAL", "NONE", "rss", "malloc_trim"]


def init():
    """Attach to the memrun that launched this process, else run standalone from MEMLIMIT=SIZE, else
    do nothing (levels stay OK). Idempotent. Raises OSError naming the endpoint when memrun's cannot
    be reached."""
    _C.init()


def register_cache(name, fn):
    """fn(level, goal) -> bytes freed: drop entries toward goal bytes (0: what you can spare). Runs
    in the memlimit thread. Register before init() so memrun learns this process can trim."""
    if not callable(fn):
        raise TypeError("fn must be callable")
    _C.caches.append((str(name), fn))


def register_collector(name, fn):
    """fn(level, goal) -> bytes freed, run on collect before gc.collect() and malloc_trim(0)."""
    if not callable(fn):
        raise TypeError("fn must be callable")
    _C.collectors.append((str(name), fn))


def register_lru_cache(func, name=None):
    """A functools.lru_cache-decorated function as a cache: trimming clears it (lru_cache cannot
    drop part of itself); the bytes are what resident memory fell by, measured by the caller."""
    if not hasattr(func, "cache_clear") or not hasattr(func, "cache_info"):
        raise TypeError("%r is not a functools.lru_cache function" % (func,))

    def trim(level, goal):
        if not func.cache_info().currsize:
            return 0
        before = rss()
        func.cache_clear()
        # cleared entries are garbage only when nothing else holds them; count at least one byte so
        # a non-empty cache is not called futile before memrun measured the whole ask
        return max(before - rss(), 1)

    register_cache(name or getattr(func, "__qualname__", "lru_cache"), trim)
    return func


def lru_cache(maxsize=128, typed=False, name=None):
    """functools.lru_cache that memrun can trim: @memlimit.lru_cache(maxsize=None)."""
    def wrap(f):
        return register_lru_cache(functools.lru_cache(maxsize=maxsize, typed=typed)(f), name)
    return wrap


def on_level(fn):
    """fn(level) whenever the level or the shedding state changes (in the memlimit thread)."""
    _C.level_handlers.append(fn)


def on_limits(fn):
    """fn(hard, soft) whenever memrun's limits change (memrunctl set, give-up, resume); NONE: none."""
    _C.limits_handlers.append(fn)


def level():
    return _C.level


def shedding():
    """True while memrun asks the program to refuse new work."""
    return _C.shedding


def limits():
    """(hard, soft) in bytes; NONE where there is none or it is not known yet."""
    return _C.limits


def mode():
    """'memrun', 'standalone' or 'none'."""
    return _C.mode


def set_limit(soft_bytes):
    """Standalone soft limit, as MEMLIMIT= sets it (0: stop). RuntimeError under memrun."""
    _C.set_limit(int(soft_bytes))


def shutdown():
    """Say goodbye to memrun, stop the thread, forget registrations."""
    _C.shutdown()
