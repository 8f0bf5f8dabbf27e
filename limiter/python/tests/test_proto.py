"""The codec against the golden messages the C definition prints (tests/helpers/protogolden.c):
encode(fields) must give the C bytes, decode(bytes) the C fields, and what memlimit_msg_check()
rejects must be rejected for the same reason. MEMLIMIT_GOLDEN names the file; without it the
helper is run from the build tree."""
import os
import subprocess
import unittest

from memlimit import _proto as P

HERE = os.path.dirname(os.path.abspath(__file__))
HELPER = os.path.join(HERE, "..", "..", "..", "build", "tests", "helpers", "protogolden")
TYPES = {v: k for k, v in P.TYPE_NAMES.items()}


def golden_lines():
    path = os.environ.get("MEMLIMIT_GOLDEN")
    if path:
        with open(path) as f:
            text = f.read()
    else:
        text = subprocess.run([HELPER], check=True, capture_output=True, text=True).stdout
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if len(lines) < 20:
        raise AssertionError("golden file has %d messages: not the protogolden output" % len(lines))
    return lines


def fields_of(words):
    out = {}
    for w in words:
        k, v = w.split("=", 1)
        out[k] = v if k == "comm" else int(v)
    return out


class GoldenTest(unittest.TestCase):
    def test_every_golden_message(self):
        seen = set()
        for verdict, hexbytes, type_name, *rest in golden_lines():
            data = bytes.fromhex(hexbytes)
            f = fields_of(rest)
            seq, flags = f.pop("seq"), f.pop("flags")
            with self.subTest(line=" ".join([verdict, type_name] + rest)):
                seen.add(verdict)
                if verdict == "ok":
                    t = TYPES[type_name]
                    self.assertEqual(P.encode(t, seq=seq, flags=flags, **f).hex(), hexbytes)
                    m = P.decode(data)
                    self.assertEqual((m.type, m.seq, m.flags), (t, seq, flags))
                    self.assertEqual(m.fields, f)
                elif verdict == "eproto":
                    with self.assertRaises(P.VersionError):
                        P.decode(data)
                else:
                    with self.assertRaises(P.ProtocolError) as cm:
                        P.decode(data)
                    self.assertNotIsInstance(cm.exception, P.VersionError)
        self.assertEqual(seen, {"ok", "eproto", "einval"})

    def test_too_long_is_garbage(self):
        data = P.encode(P.BYE) + b"\0"
        with self.assertRaises(P.ProtocolError):
            P.decode(data)

    def test_endpoint(self):
        self.assertEqual(P.endpoint_address("@memrun-1-ab"), "\0memrun-1-ab")
        self.assertEqual(P.endpoint_address("/run/x.sock"), "/run/x.sock")
        for bad in ("", "@"):
            with self.assertRaises(ValueError):
                P.endpoint_address(bad)


if __name__ == "__main__":
    unittest.main()
