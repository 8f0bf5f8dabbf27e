package memlimit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// golden: the messages tests/helpers/protogolden prints from the C definition (memlimit_proto.h).
// MEMLIMIT_GOLDEN names a file with its output; without it the helper is run from the build tree.
func golden(t *testing.T) [][]string {
	var text []byte
	var err error
	if p := os.Getenv("MEMLIMIT_GOLDEN"); p != "" {
		text, err = os.ReadFile(p)
	} else {
		text, err = exec.Command(filepath.Join("..", "..", "build", "tests", "helpers", "protogolden")).Output()
	}
	if err != nil {
		t.Fatalf("no golden messages (set MEMLIMIT_GOLDEN or make build/tests/helpers/protogolden): %v", err)
	}
	var lines [][]string
	for _, l := range strings.Split(string(text), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines = append(lines, f)
		}
	}
	if len(lines) < 20 {
		t.Fatalf("golden file has %d messages: not protogolden's output", len(lines))
	}
	return lines
}

var typeNames = map[string]uint16{"HELLO": msgHello, "WELCOME": msgWelcome, "LEVEL": msgLevel, "RESULT": msgResult, "BYE": msgBye}

func fieldsOf(t *testing.T, words []string) (map[string]uint64, string) {
	f := map[string]uint64{}
	comm := ""
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			t.Fatalf("bad golden field %q", w)
		}
		if k == "comm" {
			comm = v
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("bad golden value %q", w)
		}
		f[k] = n
	}
	return f, comm
}

func fromFields(typ uint16, f map[string]uint64, comm string) *message {
	u32 := func(k string) uint32 { return uint32(f[k]) }
	return &message{typ: typ, seq: u32("seq"), flags: u32("flags"), pid: u32("pid"), caps: u32("caps"), comm: comm,
		limit: f["limit"], soft: f["soft"], clientID: u32("client_id"), level: u32("level"), actions: u32("actions"),
		goal: f["goal"], usage: f["usage"], coalesced: u32("coalesced"), action: u32("action"),
		callbacks: u32("callbacks"), freed: f["freed"], usec: f["usec"], reason: u32("reason")}
}

func TestGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, l := range golden(t) {
		verdict, raw, name := l[0], l[1], l[2]
		b, err := hex.DecodeString(raw)
		if err != nil {
			t.Fatalf("bad hex in %v", l)
		}
		seen[verdict] = true
		got, derr := decode(b)
		switch verdict {
		case "ok":
			f, comm := fieldsOf(t, l[3:])
			want := fromFields(typeNames[name], f, comm)
			if enc := want.encode(); !bytes.Equal(enc, b) {
				t.Errorf("%v: encode\n got %x\nwant %s", l, enc, raw)
			}
			if derr != nil {
				t.Errorf("%v: decode: %v", l, derr)
			} else if *got != *want {
				t.Errorf("%v: decode\n got %+v\nwant %+v", l, *got, *want)
			}
		case "eproto":
			var ve *versionError
			if !errors.As(derr, &ve) {
				t.Errorf("%v: want a version error, got %v", l, derr)
			}
		case "einval":
			if !errors.Is(derr, errMalformed) {
				t.Errorf("%v: want malformed, got %v (%+v)", l, derr, got)
			}
		default:
			t.Fatalf("unknown verdict %q", verdict)
		}
	}
	for _, v := range []string{"ok", "eproto", "einval"} {
		if !seen[v] {
			t.Errorf("no %s message in the golden file", v)
		}
	}
}

func TestTooLong(t *testing.T) {
	b := append((&message{typ: msgBye}).encode(), 0)
	if _, err := decode(b); !errors.Is(err, errMalformed) {
		t.Fatalf("65 bytes: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"1048576": 1 << 20, "512M": 512 << 20, "2G": 2 << 30, "1GiB": 1 << 30, "1.5K": 1536, "64KB": 64 << 10,
		"2.5g": 5 << 29, "0": 0, "100b": 100, "max": None, "Infinity": None, "0.1k": 102} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "M", "-1G", "10X", "1e400", " 1M", "1Gi", "1.G", ".5G", "50%", "8E", "9223372036854775808"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) took it", bad)
		}
	}
}
