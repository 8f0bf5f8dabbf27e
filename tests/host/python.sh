# python.sh: the stdlib-only Python client (limiter/python, `import memlimit`) with Debian's python3,
# on a real kernel (host v1/hybrid, and cgroup v2 in the VM when python3 is there). Sourced by run.sh.
# examples/pycache.py is holdcache in Python: 600 MiB through a 128M budget, 1 MiB entries.
PYTHON=${PYTHON:-/usr/bin/python3}
# the checkout's package, else the installed one (the VM: make install's dist-packages)
PYLIB=${PYLIB:-$(cd "$(dirname "$0")/../../limiter/python" 2>/dev/null && pwd)}
PYCACHE=$EXAMPLES/pycache.py
py_ready() {
    if [ -x "$PYTHON" ] && [ -f "$PYCACHE" ] && PYTHONPATH="$PYLIB" "$PYTHON" -c 'import memlimit' 2>"$T/pyerr"; then
        return 0
    fi
    skip "no Python client here ($PYTHON, PYTHONPATH=$PYLIB, $PYCACHE): $(cat "$T/pyerr" 2>/dev/null | tail -1)"
    return 1
}

# A Python cache registered with memlimit survives 600 MiB through 128M, held as holdcache is (1 MiB
# per 2 ms on the host, per 20 ms in the emulated VM); the same program registering nothing is
# OOM-killed (the contrast is the point).
t_python_cache_survives() {
    py_ready || return
    # the emulated VM (TCG) runs the interpreter and its client thread several times slower than the
    # host: there the governor tests' slowest rate, on the host their fastest
    if [ $MODE = v2 ]; then ms=${GOV_RATES##* }; else ms=${GOV_RATES%% *}; fi
    mr --limit 128M --report "$T/r.json" --timeline "$T/tl.csv" -- env PYTHONPATH="$PYLIB" "$PYTHON" "$PYCACHE" --every "$ms"
    gov_holds "$T/r.json" "python cache, 1M per $ms ms" 95 "pycache: added=600 .* mode=memrun"
    mr --limit 128M --report "$T/r.json" -- env PYTHONPATH="$PYLIB" "$PYTHON" "$PYCACHE" --every "$ms" --no-register
    expect_rc 137 "python cache registering nothing: OOM-killed"
    [ "$(jqr .exit.oom_killed "$T/r.json")" = true ] || fail "not an OOM kill: $(jq -c .exit "$T/r.json")"
}

# An unmodified program whose garbage only the cycle collector frees (gc disabled, cycles holding
# 1 MiB each): under python3 -m memlimit.run memrun's asks run gc.collect() and it survives;
# run plainly it is OOM-killed.
t_python_unmodified_run() {
    py_ready || return
    cat > "$T/cycles.py" <<'PY'
import gc
gc.disable()
for i in range(600):
    a = {"data": b"\x5a" * (1 << 20)}
    a["self"] = a          # a cycle: refcounting never frees it
    del a
    if i % 2 == 0:
        import time; time.sleep(0.004)
print("cycles: done")
PY
    mr --limit 128M --report "$T/r.json" -- env PYTHONPATH="$PYLIB" "$PYTHON" -m memlimit.run "$T/cycles.py"
    expect_rc 0 "unmodified program under memlimit.run"
    grep -q "cycles: done" "$T/out" || fail "memlimit.run: $(cat "$T/out" "$T/err")"
    [ "$(jqr .events.oom_kill "$T/r.json")" = 0 ] || fail "memlimit.run: oom_kill: $(jq -c .events "$T/r.json")"
    freed=$(jq '[.governor.asks[] | .freed] | add' "$T/r.json")
    [ "$freed" -ge $((300 * 1048576)) ] || fail "memlimit.run: asks freed only $freed: $(jq -c .governor "$T/r.json")"
    mr --limit 128M --report "$T/r.json" -- "$PYTHON" "$T/cycles.py"
    expect_rc 137 "the same program run plainly: OOM-killed"
}

# memrunctl set: an attached Python client sees the new limits (memlimit.limits(), on_limits).
t_python_live_limits() {
    py_ready || return
    cat > "$T/limits.py" <<'PY'
import sys, time, memlimit
seen = []
# printed before it is counted: the main thread's "seen" must not cut into the callback's line
memlimit.on_limits(lambda h, s: (print("limits", h, s, flush=True), seen.append((h, s))))
memlimit.init()
end = time.monotonic() + 20
while time.monotonic() < end and len(seen) < 3:
    time.sleep(0.05)
print("seen", len(seen), flush=True)
PY
    n=t-py-$$
    : >"$T/out"  # not an earlier test's lines: the redirection below is done in the background
    "$MEMRUN" -q --limit 64M --soft 60M -n $n -- env PYTHONPATH="$PYLIB" "$PYTHON" "$T/limits.py" >"$T/out" 2>"$T/err" &
    mpid=$!
    wait_line "$T/out" '^limits 67108864 62914560$' || fail "at start: $(cat "$T/out" "$T/err")"
    "$MEMRUNCTL" set $n --limit 96M --soft 90M >"$T/set" 2>&1 || fail "raise: $(cat "$T/set")"
    wait_line "$T/out" '^limits 100663296 94371840$' || fail "raise not heard: $(cat "$T/out" "$T/err")"
    "$MEMRUNCTL" set $n --limit 48M --soft 40M >"$T/set" 2>&1 || fail "lower: $(cat "$T/set")"
    wait_line "$T/out" '^limits 50331648 41943040$' || fail "lowering not heard: $(cat "$T/out" "$T/err")"
    wait $mpid || fail "limits.py: $(cat "$T/out" "$T/err")"
    grep -q '^seen 3$' "$T/out" || fail "one on_limits call per change, want 3: $(cat "$T/out")"
}
