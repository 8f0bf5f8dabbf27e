"""The limiter protocol (limiter/memlimit_proto.h, version 1): 64-byte messages, host byte order.

Pure: bytes in, fields out. memlimit_proto.h is the contract; tests/test_proto.py checks this codec
against the golden messages the C definition prints (tests/helpers/protogolden.c).
"""
import struct

VERSION = 1
MAGIC = 0x4C4D454D
MSG_SIZE = 64
ENV_ENDPOINT = "MEMRUN_LIMITER"
MAX_MALFORMED = 16

HELLO, WELCOME, LEVEL, RESULT, BYE = 1, 2, 3, 4, 5
TYPE_MAX = 6
TYPE_NAMES = {HELLO: "HELLO", WELCOME: "WELCOME", LEVEL: "LEVEL", RESULT: "RESULT", BYE: "BYE"}

LEVEL_MAX = 4
ACT_TRIM, ACT_COLLECT, ACT_SHED = 1, 2, 4
ACT_ALL = ACT_TRIM | ACT_COLLECT | ACT_SHED

HELLO_PRELOAD, HELLO_FORKED = 1, 2
HELLO_ALL = HELLO_PRELOAD | HELLO_FORKED

RESULT_FUTILE, RESULT_SKIPPED_BUDGET, RESULT_SKIPPED_FUTILE, RESULT_NO_HANDLER = 1, 2, 4, 8
RESULT_ALL = 15

BYE_NORMAL, BYE_VERSION, BYE_MALFORMED, BYE_FULL = 0, 1, 2, 3
BYE_REASON_MAX = 4
BYE_NAMES = ("normal", "version", "malformed", "full")

NONE = (1 << 64) - 1  # a limit of UINT64_MAX: none

_HEADER = struct.Struct("=IHHII")
# Bodies at offset 16, 48 bytes each, reserved bytes as pad bytes (written as zero, ignored on read).
_BODIES = {
    HELLO: (struct.Struct("=II16s24x"), ("pid", "caps", "comm")),
    WELCOME: (struct.Struct("=QQIIQI12x"), ("limit", "soft", "level", "actions", "goal", "client_id")),
    LEVEL: (struct.Struct("=IIQQI20x"), ("level", "actions", "goal", "usage", "coalesced")),
    RESULT: (struct.Struct("=IIQQ24x"), ("action", "callbacks", "freed", "usec")),
    BYE: (struct.Struct("=I44x"), ("reason",)),
}


class ProtocolError(ValueError):
    """Not a message of this protocol (memlimit_msg_check's -EINVAL)."""


class VersionError(ProtocolError):
    """A well-formed header of another protocol version (-EPROTO); .version says which."""

    def __init__(self, version, type_):
        super().__init__("protocol version %d, not %d" % (version, VERSION))
        self.version = version
        self.type = type_


class Message:
    """A decoded message: type, seq, flags and the body's fields as attributes."""

    __slots__ = ("type", "seq", "flags", "fields")

    def __init__(self, type_, seq, flags, fields):
        self.type, self.seq, self.flags, self.fields = type_, seq, flags, fields

    def __getattr__(self, name):
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self):
        body = " ".join("%s=%r" % kv for kv in self.fields.items())
        return "<%s seq=%d flags=%d %s>" % (TYPE_NAMES.get(self.type, "?"), self.seq, self.flags, body)


def encode(type_, seq=0, flags=0, **fields):
    """The 64 bytes of a message; fields not given are zero (comm: str or bytes, NUL-terminated)."""
    body, names = _BODIES[type_]
    values = []
    for name in names:
        v = fields.pop(name, 0)
        if name == "comm":
            v = v.encode() if isinstance(v, str) else bytes(v or b"")
            v = v[:15]  # the 16th byte stays NUL
        values.append(v)
    if fields:
        raise TypeError("%s has no field %s" % (TYPE_NAMES[type_], ", ".join(sorted(fields))))
    return _HEADER.pack(MAGIC, VERSION, type_, seq, flags) + body.pack(*values)


def _one_action(a):
    return a != 0 and not (a & ~ACT_ALL) and not (a & (a - 1))


def decode(data):
    """A received datagram (its whole length: read with a buffer larger than MSG_SIZE) -> Message.
    Raises VersionError or ProtocolError under exactly memlimit_msg_check()'s rules."""
    if len(data) < 8:
        raise ProtocolError("%d bytes" % len(data))
    magic, version, type_ = struct.unpack_from("=IHH", data)
    if magic != MAGIC:
        raise ProtocolError("bad magic %#x" % magic)
    if version != VERSION:
        raise VersionError(version, type_)
    if len(data) != MSG_SIZE:
        raise ProtocolError("%d bytes, not %d" % (len(data), MSG_SIZE))
    _, _, _, seq, flags = _HEADER.unpack_from(data)
    if type_ not in _BODIES:
        raise ProtocolError("unknown type %d" % type_)
    body, names = _BODIES[type_]
    f = dict(zip(names, body.unpack_from(data, _HEADER.size)))
    bad = None
    if type_ == HELLO:
        comm = f["comm"]
        if b"\0" not in comm:
            bad = "comm not terminated"
        f["comm"] = comm.split(b"\0", 1)[0].decode("utf-8", "replace")
        bad = bad or ((seq != 0 or flags & ~HELLO_ALL or f["caps"] & ~ACT_ALL) and "bad HELLO")
    elif type_ == WELCOME:
        bad = (flags != 0 or f["level"] >= LEVEL_MAX or f["actions"] & ~ACT_ALL) and "bad WELCOME"
    elif type_ == LEVEL:
        bad = (seq == 0 or flags != 0 or f["level"] >= LEVEL_MAX or f["actions"] & ~ACT_ALL) and "bad LEVEL"
    elif type_ == RESULT:
        bad = (flags & ~RESULT_ALL or not _one_action(f["action"])) and "bad RESULT"
    elif type_ == BYE:
        bad = (seq != 0 or flags != 0 or f["reason"] >= BYE_REASON_MAX) and "bad BYE"
    if bad:
        raise ProtocolError(bad)
    return Message(type_, seq, flags, f)


def endpoint_address(endpoint):
    """The socket address for MEMRUN_LIMITER: '@name' is Linux's abstract namespace."""
    if not endpoint or endpoint == "@":
        raise ValueError("empty limiter endpoint")
    if endpoint.startswith("@"):
        return "\0" + endpoint[1:]
    return endpoint
