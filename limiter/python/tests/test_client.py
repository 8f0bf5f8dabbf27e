"""The client against a fake memrun on a real SOCK_SEQPACKET socket: HELLO, WELCOME and live limits,
a LEVEL's asks answered with one RESULT each (seq, action, flags), shedding, BYE, malformed input,
and the standalone mode."""
import os
import socket
import threading
import time
import unittest

import memlimit
from memlimit import _proto as P


def wait_for(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


class FakeMemrun:
    def __init__(self):
        self.name = "memlimit-pytest-%d-%d" % (os.getpid(), id(self))
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind("\0" + self.name)
        self.listener.listen(4)
        self.conn = None

    def accept(self):
        self.listener.settimeout(10)
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(10)
        return P.decode(self.conn.recv(128))

    def send(self, type_, seq=0, **f):
        self.conn.send(P.encode(type_, seq=seq, **f))

    def recv(self):
        return P.decode(self.conn.recv(128))

    def close(self):
        for s in (self.conn, self.listener):
            if s is not None:
                s.close()


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.fake = FakeMemrun()
        os.environ["MEMRUN_LIMITER"] = "@" + self.fake.name
        os.environ.pop("MEMLIMIT", None)
        self.cache = bytearray()
        self.goals = []

    def tearDown(self):
        memlimit.shutdown()
        self.fake.close()
        os.environ.pop("MEMRUN_LIMITER", None)

    def trim(self, level, goal):
        self.goals.append((level, goal))
        return 0

    def attach(self):
        memlimit.register_cache("test", self.trim)
        memlimit.init()
        hello = self.fake.accept()
        self.assertEqual(hello.type, P.HELLO)
        self.assertEqual(hello.pid, os.getpid())
        self.assertEqual(hello.caps, P.ACT_TRIM | P.ACT_COLLECT | P.ACT_SHED)
        self.fake.send(P.WELCOME, limit=256 << 20, soft=230 << 20, client_id=7)
        self.assertTrue(wait_for(lambda: memlimit.limits() == (256 << 20, 230 << 20)))
        self.assertEqual(memlimit.mode(), "memrun")

    def test_asks_answered(self):
        self.attach()
        levels = []
        memlimit.on_level(levels.append)
        self.fake.send(P.LEVEL, seq=5, level=2, actions=P.ACT_TRIM | P.ACT_COLLECT, goal=1 << 20, usage=1)
        r1, r2 = self.fake.recv(), self.fake.recv()
        self.assertEqual((r1.type, r1.seq, r1.action), (P.RESULT, 5, P.ACT_TRIM))
        self.assertEqual((r2.type, r2.seq, r2.action), (P.RESULT, 5, P.ACT_COLLECT))
        self.assertEqual(self.goals, [(memlimit.HIGH, 1 << 20)])
        self.assertEqual(r1.callbacks, 1)
        self.assertEqual(r1.flags & P.RESULT_NO_HANDLER, 0)
        if r1.freed == 0:
            self.assertEqual(r1.flags, P.RESULT_FUTILE)  # the trimmer freed nothing: said so
        self.assertEqual(memlimit.level(), memlimit.HIGH)
        self.assertEqual(levels, [memlimit.HIGH])
        self.assertFalse(memlimit.shedding())

    def test_shed_and_live_limits(self):
        self.attach()
        limits = []
        memlimit.on_limits(lambda h, s: limits.append((h, s)))
        self.fake.send(P.LEVEL, seq=1, level=3, actions=P.ACT_SHED)
        r = self.fake.recv()
        self.assertEqual((r.seq, r.action, r.freed, r.flags), (1, P.ACT_SHED, 0, 0))
        self.assertTrue(memlimit.shedding())
        # a WELCOME with seq 0 later: new limits, the level left alone
        self.fake.send(P.WELCOME, limit=512 << 20, soft=460 << 20, level=0, client_id=7)
        self.assertTrue(wait_for(lambda: limits == [(512 << 20, 460 << 20)]))
        self.assertEqual(memlimit.limits(), (512 << 20, 460 << 20))
        self.assertTrue(memlimit.shedding())
        self.assertEqual(memlimit.level(), memlimit.CRITICAL)
        self.fake.send(P.LEVEL, seq=2, level=0, actions=0)
        self.assertTrue(wait_for(lambda: not memlimit.shedding()))

    def test_malformed_then_bye(self):
        self.attach()
        self.fake.conn.send(b"\xff" * 64)
        self.fake.conn.send(P.encode(P.LEVEL, seq=0, level=1))   # seq 0: not a LEVEL
        self.fake.send(P.LEVEL, seq=3, level=1, actions=P.ACT_TRIM)
        r = self.fake.recv()
        self.assertEqual((r.seq, r.action), (3, P.ACT_TRIM))
        self.fake.send(P.BYE, reason=P.BYE_NORMAL)
        self.assertTrue(wait_for(lambda: memlimit.mode() == "none"))
        self.assertEqual(memlimit.level(), memlimit.OK)

    def test_no_cache_no_handler(self):
        memlimit.init()
        hello = self.fake.accept()
        self.assertEqual(hello.caps, P.ACT_COLLECT | P.ACT_SHED)
        self.fake.send(P.WELCOME, limit=1 << 30, soft=1 << 29)
        self.fake.send(P.LEVEL, seq=1, level=1, actions=P.ACT_TRIM)
        r = self.fake.recv()
        self.assertEqual((r.action, r.flags), (P.ACT_TRIM, P.RESULT_NO_HANDLER))

    def test_unreachable_endpoint_named(self):
        os.environ["MEMRUN_LIMITER"] = "@memlimit-nobody-listens-%d" % os.getpid()
        with self.assertRaises(OSError) as cm:
            memlimit.init()
        self.assertIn("memlimit-nobody-listens", str(cm.exception))


class StandaloneTest(unittest.TestCase):
    def tearDown(self):
        memlimit.shutdown()
        os.environ.pop("MEMLIMIT", None)

    def test_holds_under_memlimit(self):
        os.environ.pop("MEMRUN_LIMITER", None)
        held = []
        memlimit.register_cache("list", lambda level, goal: self.drop(held, goal))
        base = memlimit.rss()
        soft = base + (64 << 20)
        os.environ["MEMLIMIT"] = str(soft)
        memlimit.init()
        self.assertEqual(memlimit.mode(), "standalone")
        self.assertEqual(memlimit.limits(), (memlimit.NONE, soft))
        for _ in range(160):          # 160 MiB through a 64 MiB budget
            held.append(b"\x01" * (1 << 20))
            time.sleep(0.005)
        # trimmed while it grew, and back under the soft limit (no timing: as long as it takes)
        self.assertLess(len(held), 160)
        self.assertGreater(len(held), 0)
        self.assertTrue(wait_for(lambda: memlimit.rss() <= soft), "rss %d, soft %d" % (memlimit.rss(), soft))

    @staticmethod
    def drop(held, goal):
        n = 0
        while held and n < max(goal, 1 << 20):
            del held[0]
            n += 1 << 20
        return n


if __name__ == "__main__":
    unittest.main()
