"""The client: one connection to memrun per process, a background thread that dispatches, the
actions a level asks for. Mirrors libmemlimit (limiter/memlimit.c, memlimit_actions.c)."""
import ctypes
import ctypes.util
import enum
import gc
import os
import select
import socket
import sys
import threading
import time

from . import _proto as P

NONE = P.NONE


class Level(enum.IntEnum):
    """The wire levels, named as memrun's report and policies name them."""

    OK = 0
    MODERATE = 1
    HIGH = 2
    CRITICAL = 3

    def __str__(self):
        return self.name.lower()


_PAGE = os.sysconf("SC_PAGE_SIZE")
_SAMPLE_S = 0.1           # standalone: how often usage is read ...
_SAMPLE_FAST_S = 0.02     # ... and above half the soft limit
_HEADROOM_PPM = 30000     # standalone: hold at max(3%, 1 MiB) under the soft limit, as Go does
_HEADROOM_MIN = 1 << 20


def _debug(fmt, *args):
    """Said on stderr only with MEMLIMIT_DEBUG set (not "0"), as libmemlimit and the Go client do."""
    if os.environ.get("MEMLIMIT_DEBUG", "0") != "0":
        print("memlimit[%d]: %s" % (os.getpid(), fmt % args), file=sys.stderr, flush=True)


def rss():
    """Resident memory of this process, bytes (what the cgroup charges it, less page cache)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


def _load_malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        fn = libc.malloc_trim
    except (OSError, AttributeError):
        return None          # not glibc: nothing to hand back this way
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


_malloc_trim = _load_malloc_trim()


def malloc_trim():
    """glibc's malloc_trim(0): free heap pages back to the kernel. False where there is none."""
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True


def parse_size(text):
    """'512M', '2G', '1048576' (binary suffixes K M G T, optional 'i'/'B'), as MEMLIMIT= takes."""
    s = text.strip()
    mult = 1
    for suffix in ("iB", "B", "i"):
        if len(s) > 1 and s.endswith(suffix) and s[-len(suffix) - 1].upper() in "KMGT":
            s = s[: -len(suffix)]
            break
    if s and s[-1].upper() in "KMGT":
        mult = 1 << (10 * ("KMGT".index(s[-1].upper()) + 1))
        s = s[:-1]
    try:
        v = float(s) if "." in s else int(s, 10)
    except ValueError:
        raise ValueError("not a size: %r" % text) from None
    if v < 0:
        raise ValueError("not a size: %r" % text)
    return int(v * mult)


class _Client:
    def __init__(self):
        self.lock = threading.RLock()
        self.caches = []            # (name, fn)
        self.collectors = []
        self.level_handlers = []
        self.limits_handlers = []
        self._reset()

    def _reset(self):
        self.mode = "none"
        self.sock = None
        self.thread = None
        self.stop_r = self.stop_w = None
        self.level = Level.OK
        self.shedding = False
        self.limits = (NONE, NONE)
        self.malformed = 0
        self.soft = NONE            # standalone
        self._last = (None, 0, 0)   # standalone: time, usage, freed at the last sample
        self._rate = 0.0            # standalone: allocation rate, bytes/s, smoothed over 0.5 s

    # --- attach ------------------------------------------------------------------------------------
    def init(self, forked=False):
        with self.lock:
            if self.mode != "none" and not forked:
                return
            endpoint = os.environ.get(P.ENV_ENDPOINT)
            if endpoint:
                self._connect(endpoint, forked)
                self._start("memrun")
            elif os.environ.get("MEMLIMIT"):
                self._start_standalone(parse_size(os.environ["MEMLIMIT"]))

    def _start(self, mode):
        self.mode = mode
        self.stop_r, self.stop_w = os.pipe()
        self.thread = threading.Thread(target=self._run, name="memlimit", daemon=True)
        self.thread.start()

    def _start_standalone(self, soft):
        self.soft, self.limits = soft, (NONE, soft)
        self._start("standalone")

    def _connect(self, endpoint, forked):
        addr = P.endpoint_address(endpoint)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            s.connect(addr)
            caps = P.ACT_SHED | P.ACT_COLLECT | (P.ACT_TRIM if self.caches else 0)
            comm = os.path.basename(sys.argv[0] or sys.executable)[:15] if sys.argv else "python"
            s.send(P.encode(P.HELLO, flags=P.HELLO_FORKED if forked else 0, pid=os.getpid(), caps=caps,
                            comm=comm or "python"))
        except OSError as e:
            s.close()
            raise OSError(e.errno, "cannot attach to memrun at %s: %s" % (endpoint, e.strerror)) from None
        self.sock = s

    def shutdown(self):
        with self.lock:
            t, w = self.thread, self.stop_w
            if w is not None:
                os.write(w, b"x")
        if t is not None and t is not threading.current_thread():
            t.join(5)
        with self.lock:
            if self.sock is not None:
                try:
                    self.sock.send(P.encode(P.BYE, reason=P.BYE_NORMAL), socket.MSG_DONTWAIT)
                except OSError:
                    pass
                self.sock.close()
            for fd in (self.stop_r, self.stop_w):
                if fd is not None:
                    os.close(fd)
            self.caches, self.collectors, self.level_handlers, self.limits_handlers = [], [], [], []
            self._reset()

    def after_fork_in_child(self):
        # The parent's connection is the parent's: memrun knows peers by the pid that connected.
        was = self.mode
        if self.sock is not None:
            self.sock.close()
        for fd in (self.stop_r, self.stop_w):
            if fd is not None:
                os.close(fd)
        self.lock = threading.RLock()
        self._reset()
        if was != "none":
            try:
                self.init(forked=True)
            except OSError as e:
                _debug("the forked child could not attach again: %s", e)

    # --- the thread -------------------------------------------------------------------------------------
    def _run(self):
        while True:
            fds = [self.stop_r] + ([self.sock] if self.sock is not None else [])
            ready, _, _ = select.select(fds, [], [], self._sample_period())
            if self.stop_r in ready:
                return
            if self.mode == "standalone":
                self._standalone_tick()
            elif self.sock is not None and self.sock in ready:
                if not self._receive():
                    return

    def _receive(self):
        """Read what arrived, act on the newest state. False: the connection is gone."""
        work = None            # (level, actions, goal, seq, reply)
        limits_changed = False
        for _ in range(64):
            try:
                data = self.sock.recv(2 * P.MSG_SIZE, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionResetError:
                continue       # once, when memrun closed with RESULTs unread; its BYE follows
            except OSError as e:
                return self._lost(str(e))
            if not data:
                return self._lost("end of file")
            try:
                m = P.decode(data)
            except P.VersionError as e:
                if e.type == P.BYE:
                    return self._lost("memrun speaks protocol version %d" % e.version)
                self.malformed += 1
                continue
            except P.ProtocolError:
                self.malformed += 1
                if self.malformed >= P.MAX_MALFORMED:
                    return self._lost("too many malformed messages")
                continue
            if m.type == P.WELCOME:
                if (m.limit, m.soft) != self.limits:
                    self.limits = (m.limit, m.soft)
                    limits_changed = True
                if m.seq != 0:
                    work = self._note(work, m.level, m.actions & P.ACT_SHED, m.goal, m.seq, False)
            elif m.type == P.LEVEL:
                work = self._note(work, m.level, m.actions, m.goal, m.seq, True)
            elif m.type == P.BYE:
                return self._lost("memrun said goodbye (%s)" % P.BYE_NAMES[m.reason])
        if limits_changed:
            self._call(self.limits_handlers, *self.limits)
        if work is not None:
            level, actions, goal, seq, reply, shed = work
            self._apply(Level(level), shed)
            results = self._run_actions(Level(level), actions, goal)
            if reply:
                for action, flags, callbacks, freed, usec in results:
                    self._send(P.encode(P.RESULT, seq=seq, flags=flags, action=action, callbacks=callbacks,
                                        freed=freed, usec=usec))
        return True

    @staticmethod
    def _note(work, level, actions, goal, seq, reply):
        """(level, actions, goal, seq, reply, shed). The newest level and shedding win; an ask
        overtaken by a LEVEL that asks nothing is still answered under its own seq: memrun waits for
        that answer before it asks this process again."""
        ask = P.ACT_TRIM | P.ACT_COLLECT
        shed = bool(actions & P.ACT_SHED)
        if work is not None and work[4] and reply and not actions & ask and work[1] & ask:
            return (level, work[1], work[2], work[3], True, shed)
        return (level, actions, goal, seq, reply, shed)

    def _lost(self, why):
        _debug("memrun connection closed: %s", why)
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.mode = "none"
        self._apply(Level.OK, False)
        return False

    def _send(self, data):
        try:
            self.sock.send(data, socket.MSG_DONTWAIT)
        except OSError:
            pass               # memrun is not reading: the protocol lets a RESULT be dropped

    # --- actions ----------------------------------------------------------------------------------------
    def _apply(self, level, shed):
        old = (self.level, self.shedding)
        self.level, self.shedding = level, shed
        if old != (level, shed):
            self._call(self.level_handlers, level)

    def _call(self, handlers, *args):
        for fn in list(handlers):
            try:
                fn(*args)
            except Exception as e:  # a handler's bug must not end the dispatcher
                print("memlimit: handler %r failed: %r" % (fn, e), file=sys.stderr)

    def _run_actions(self, level, actions, goal):
        results = []
        if actions & P.ACT_TRIM:
            results.append(self._measured(P.ACT_TRIM, self.caches, level, goal, trim_heap=True))
        if actions & P.ACT_COLLECT:
            results.append(self._measured(P.ACT_COLLECT, self.collectors, level, goal, collect=True))
        if actions & P.ACT_SHED:
            results.append((P.ACT_SHED, 0, len(self.level_handlers), 0, 0))
        return results

    def _measured(self, action, callbacks, level, goal, trim_heap=False, collect=False):
        """Run callbacks toward goal. freed: what resident memory fell by, or what the caches claim
        they dropped when that is more (the C library reports claims): the program's other threads
        allocate meanwhile, and an RSS drop they hide is no proof the trim was futile."""
        t0 = time.monotonic()
        before = rss()
        claimed, ran = 0, 0
        for _, fn in list(callbacks):
            if goal and claimed >= goal:
                break
            try:
                claimed += int(fn(level, max(goal - claimed, 0) if goal else 0) or 0)
            except Exception as e:
                print("memlimit: callback %r failed: %r" % (fn, e), file=sys.stderr)
            ran += 1
        if collect:
            gc.collect()
            ran += malloc_trim()
        elif trim_heap and claimed:
            # What the caches dropped went back to pymalloc and malloc, not the kernel: hand the free
            # heap back when resident memory fell by less than half of it.
            if before - rss() < claimed // 2:
                malloc_trim()
        after = rss()
        freed = max(before - after, claimed if trim_heap else 0, 0)
        usec = int((time.monotonic() - t0) * 1e6)
        flags = 0
        if not callbacks and not collect:
            flags |= P.RESULT_NO_HANDLER
        elif ran and not freed:
            flags |= P.RESULT_FUTILE
        return (action, flags, ran, freed, usec)

    # --- standalone ---------------------------------------------------------------------------------
    def set_limit(self, soft):
        with self.lock:
            if self.mode == "memrun":
                raise RuntimeError("attached to memrun: its limits are in force")
            if soft and self.mode == "none":
                self._start_standalone(soft)
            elif soft:
                self.soft, self.limits = soft, (NONE, soft)
            else:
                self.soft, self.limits = NONE, (NONE, NONE)
        self._call(self.limits_handlers, *self.limits)

    def _standalone_tick(self):
        """Hold resident memory under the soft limit less headroom: max(3%, 1 MiB, what the program
        allocates in two sample periods), capped at a quarter of it. memrun's governor is the full
        law (limiter/memlimit_law.c); this is its simplest form, for programs run without memrun."""
        soft, now, usage = self.soft, time.monotonic(), rss()
        last_t, last_usage, freed = self._last
        if last_t is not None and now > last_t:
            inst = max(usage - last_usage + freed, 0) / (now - last_t)
            self._rate += (inst - self._rate) * min((now - last_t) / 0.5, 1.0)
        self._last = (now, usage, 0)
        if soft == NONE:
            self._apply(Level.OK, False)
            return
        head = max(soft * _HEADROOM_PPM // 1000000, _HEADROOM_MIN, int(self._rate * 2 * _SAMPLE_FAST_S))
        setpoint = soft - min(head, soft // 4)
        if usage <= setpoint:
            self._apply(Level.OK, False)
            return
        level = Level.CRITICAL if usage >= soft else Level.HIGH
        self._apply(level, False)
        res = self._run_actions(level, P.ACT_TRIM, usage - setpoint)
        if not res[0][3]:
            res = self._run_actions(level, P.ACT_COLLECT, usage - setpoint)
        self._last = (now, rss(), res[0][3])

    def _sample_period(self):
        if self.mode != "standalone":
            return None
        return _SAMPLE_FAST_S if self.soft != NONE and self._last[1] >= self.soft // 2 else _SAMPLE_S


CLIENT = _Client()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=CLIENT.after_fork_in_child)
