# httpmetrics.sh: --metrics-listen, sourced by run.sh: the exposition scraped over HTTP as Prometheus
# does (python3's urllib; parsed by Debian's prometheus_client where it is installed, else by the
# few lines of the text format the checks need: the VM has python3 but no prometheus_client).
# shellcheck shell=sh disable=SC2317,SC2034,SC2086,SC2015  # rc is read by expect_rc (run.sh); pids and ports are numbers

# The scraper: waits for memrun PID to listen on PORT, then checks the page, its headers, HEAD, 404,
# 405, that it is rendered per scrape, and that its families are those of the --metrics FILE.
# Prints "parser: prometheus_client" or "parser: own"; exit 0 when every check held.
http_scrape_py='
import os, re, sys, time, urllib.request, urllib.error
port, pid, limit, mfile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
base = "http://127.0.0.1:%s" % port
try:
    from prometheus_client.parser import text_string_to_metric_families
    def families(text):
        return {f.name: {tuple(sorted(s.labels.items())): s.value for s in f.samples}
                for f in text_string_to_metric_families(text)}
    print("parser: prometheus_client")
except ImportError:
    line = re.compile(r"^([a-z_]+)\{([^}]*)\} (\S+)$")
    def families(text):
        fams = {}
        for l in text.splitlines():
            if l.startswith("#"):
                continue
            m = line.match(l)
            assert m, "not a sample line: %r" % l
            name = re.sub("_total$", "", m.group(1))   # as prometheus_client names counter families
            labels = tuple(sorted(tuple(kv.split("=", 1)) for kv in m.group(2).split(",")))
            labels = tuple((k, v.strip("\"")) for k, v in labels)
            fams.setdefault(name, {})[labels] = float(m.group(3))
        return fams
    print("parser: own")

def get(path, method="GET", data=None):
    req = urllib.request.Request(base + path, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()

def one(fams, name, **labels):
    for k, v in fams[name].items():
        if all((lk, lv) in k for lk, lv in labels.items()):
            return v
    raise AssertionError("no %s %s in %s" % (name, labels, fams.get(name)))

for i in range(600):                 # memrun starting: refused until it listens
    try:
        st, hdr, body = get("/metrics")
        break
    except (ConnectionError, urllib.error.URLError):
        if not os.path.exists("/proc/%d" % pid):
            sys.exit("memrun %d ended before it served" % pid)
        time.sleep(0.05)
else:
    sys.exit("memrun never listened on %s" % base)
assert st == 200, (st, body)
assert hdr["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8", hdr["Content-Type"]
fams = families(body)
assert one(fams, "memrun_limit_bytes", kind="max") == limit, fams["memrun_limit_bytes"]
assert 0 < one(fams, "memrun_limit_bytes", kind="high") < limit, fams["memrun_limit_bytes"]
assert one(fams, "memrun_usage_bytes") > 0, fams["memrun_usage_bytes"]
# rendered for each scrape: the cooperating cache attaches, and the clock moves between two scrapes
for i in range(600):
    fams = families(get("/metrics")[2])
    if one(fams, "memrun_limiter_clients") >= 1:
        break
    time.sleep(0.05)
else:
    raise AssertionError("the limiter client never showed: %s" % fams.get("memrun_limiter_clients"))
print("scraped: %d families; memrun_limit_bytes max=%d high=%d, memrun_usage_bytes=%d, memrun_limiter_clients=%d"
      % (len(fams), one(fams, "memrun_limit_bytes", kind="max"), one(fams, "memrun_limit_bytes", kind="high"),
         one(fams, "memrun_usage_bytes"), one(fams, "memrun_limiter_clients")))
up1 = one(fams, "memrun_uptime_seconds")
time.sleep(0.2)
up2 = one(families(get("/metrics")[2]), "memrun_uptime_seconds")
assert up2 > up1, (up1, up2)
st, hdr, body = get("/metrics", "HEAD")
assert st == 200 and body == "" and hdr["Content-Type"].startswith("text/plain; version=0.0.4"), (st, hdr, body)
st, hdr, body = get("/other")
assert st == 404, (st, body)
st, hdr, body = get("/", "GET")
assert st == 404, (st, body)
st, hdr, body = get("/metrics", "POST", b"x=1")
assert st == 405 and hdr["Allow"] == "GET, HEAD", (st, hdr)
# the same families as --metrics FILE (written at most once a second while running)
for i in range(600):
    if os.path.exists(mfile):
        break
    time.sleep(0.05)
filed = families(open(mfile).read())
served = families(get("/metrics")[2])
assert sorted(filed) == sorted(served), (sorted(filed), sorted(served))
assert all(sorted(filed[f]) == sorted(served[f]) for f in filed), "label sets differ"
# stalled clients, more than its connection limit, each half a request: memrun goes on (it rewrites
# --metrics), and once they go their slots serve again
import socket
stalled = []
for i in range(12):
    c = socket.create_connection(("127.0.0.1", int(port)), 5)
    c.sendall(b"GET /metr")
    stalled.append(c)
m0 = os.stat(mfile).st_mtime_ns
for i in range(600):
    if os.stat(mfile).st_mtime_ns != m0:
        break
    time.sleep(0.05)
else:
    raise AssertionError("--metrics not rewritten while clients stalled: the loop is blocked")
for c in stalled:
    c.close()
for i in range(600):
    try:
        st = get("/metrics")[0]
        break
    except (ConnectionError, urllib.error.URLError):
        time.sleep(0.05)
assert st == 200, st
print("scraped", len(served), "families")
'

# A port nothing listens on now: the kernel picks one (bind to port 0). memrun refuses port 0 itself,
# and another program may take this one before memrun binds it: the caller tries again then.
http_free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

t_metrics_http() {
    py=/usr/bin/python3
    [ -x $py ] || { skip "no /usr/bin/python3 to scrape with"; return; }
    n=t-http-$$
    for _ in 1 2 3; do
        port=$(http_free_port)
        rm -f "$T/h.prom" "$T/stop-$n"
        # the cooperating cache, until the test is done with it ($T/stop-NAME)
        "$MEMRUN" --limit 64M -n $n --metrics "$T/h.prom" --metrics-listen "127.0.0.1:$port" -- sh -c \
            "\"$EXAMPLES/holdcache\" --total 100000M --entry 1M --every 5 & h=\$!
             while [ ! -e $T/stop-$n ]; do sleep 0.05; done; kill \$h; wait \$h; [ \$? = 143 ]" \
            >"$T/h.out" 2>"$T/h.err" &
        p=$!
        $py -c "$http_scrape_py" "$port" $p 67108864 "$T/h.prom" >"$T/scrape" 2>&1; src=$?
        # the port taken in between by someone else: memrun said so and ended; try another
        if [ $src != 0 ] && ! alive $p && grep -q 'Address already in use' "$T/h.err"; then wait $p; continue; fi
        break
    done
    touch "$T/stop-$n"
    wait $p; rc=$?
    [ $src = 0 ] || fail "scrape: $(cat "$T/scrape"); memrun: $(head -c 600 "$T/h.err")"
    expect_rc 0 "the cache stopped: $(head -c 600 "$T/h.err")"
    grep -qF "metrics at http://127.0.0.1:$port/metrics" "$T/h.err" || fail "no URL said: $(cat "$T/h.err")"
    sed 's/^/    # /' "$T/scrape"
    # nothing listens once memrun is gone
    $py -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)' "$port" 2>/dev/null &&
        fail "127.0.0.1:$port still accepts connections after memrun ended"
    # -q: no URL line (it is start-up information, as the summary is). The command scrapes its own
    # memrun, and has inherited none of its sockets (the listening one is close-on-exec).
    port=$(http_free_port)
    mr -q --metrics-listen ":$port" -- $py -c 'import os, sys, urllib.request as u
fds = [os.readlink("/proc/self/fd/" + f) for f in os.listdir("/proc/self/fd") if os.path.exists("/proc/self/fd/" + f)]
assert not [f for f in fds if f.startswith("socket:")], fds
sys.exit(0 if u.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=30).status == 200 else 1)' "$port"
    expect_rc 0 "the command scrapes its own memrun on :$port: $(cat "$T/err")"
    [ -s "$T/err" ] && fail "-q printed: $(cat "$T/err")"
    if grep -q parser:\ own "$T/scrape"; then
        skip "no Prometheus parser here (python3-prometheus-client): scraped and checked with the test's own"
    fi
}

t_metrics_http_bad_listen() {
    py=/usr/bin/python3
    # Bad values: exit 125 naming the value, before anything is made or run.
    for v in "" ":" "127.0.0.1" "127.0.0.1:" "[::1]" "x" ":0" "0" "65536" "99999999999999999999" "1.2.3:80" \
             "300.1.1.1:80" "localhost:9464" "::1:9464" "[::1:80" "[nonsense]:80" "1.2.3.4:-1" "1.2.3.4:80x"; do
        rm -f "$T/started"
        mr --metrics-listen "$v" -n t-hbad-$$ -- sh -c "echo started > $T/started"
        expect_rc 125 "--metrics-listen '$v'"
        grep -qF -- "--metrics-listen '$v'" "$T/err" || fail "'$v': the message does not name it: $(cat "$T/err")"
        [ ! -e "$T/started" ] || fail "'$v': the command ran"
    done
    [ -x $py ] || { skip "no /usr/bin/python3 to hold a port with"; return; }
    # A port already in use: memrun says which address and why, exits 125, and leaves nothing: the
    # command never ran and no sandbox cgroup stays (run() also looks for leftovers).
    : >"$T/busy"
    $py -c 'import signal, socket, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))   # a quiet end: no "Terminated" from the shell
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(600)' >"$T/busy" &
    holder=$!
    i=0; while [ ! -s "$T/busy" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    port=$(cat "$T/busy")
    n=t-hbusy-$$
    rm -f "$T/started"
    mr --metrics-listen "127.0.0.1:$port" -n $n --limit 64M -- sh -c "echo started > $T/started"
    expect_rc 125 "port $port in use"
    grep -qF "127.0.0.1:$port" "$T/err" && grep -q 'Address already in use' "$T/err" ||
        fail "the message names neither the address nor the errno: $(cat "$T/err")"
    [ ! -e "$T/started" ] || fail "the command ran though memrun could not listen"
    [ ! -d "$SANDBOXES/$n" ] || fail "sandbox $SANDBOXES/$n left behind"
    kill $holder; wait $holder 2>/dev/null
    # IPv6 loopback, where the host has it: the command scrapes its own memrun over [::1]
    if $py -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
        mr --metrics-listen "[::1]:$port" -- $py -c 'import sys, urllib.request as u
page = u.urlopen("http://[::1]:%s/metrics" % sys.argv[1], timeout=30).read()
sys.exit(0 if b"memrun_limit_bytes" in page else 1)' "$port"
        expect_rc 0 "scraped over [::1]:$port: $(cat "$T/err")"
        grep -qF "metrics at http://[::1]:$port/metrics" "$T/err" || fail "IPv6 URL: $(cat "$T/err")"
    fi
}
