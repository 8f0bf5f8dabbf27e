# faults.sh: what memrun does when an output cannot be written. One rule for --report, --timeline
# and --metrics (memrun(1), OUTPUT FILES): memrun keeps supervising, says what it could not write
# at error level (so -q does not hide it), the exit status stays the command's, and nothing is left
# behind (no PATH.tmp.PID, no device replaced by a file). Sourced by run.sh.

# fault_said FILE PATTERN: stderr (from -q runs) says it, exactly once
fault_said() {
    n=$(grep -c -- "$2" "$1")
    [ "$n" = 1 ] || fail "want one '$2' in stderr, got $n: $(head -c 600 "$1")"
}

# A full filesystem: a tmpfs of 16k filled up, in a mount namespace of this test's own.
t_output_full_filesystem() {
    [ $NS_PROPAGATION = private ] || { skip "no private mount namespace here (a chroot): the tmpfs could reach the host"; return; }
    mkdir -p "$T/full"
    cat > "$T/full.sh" <<SH
$NS_PRIVATE
mount -t tmpfs -o size=16k memrun-test-full "$T/full" || exit 90
dd if=/dev/zero of="$T/full/fill" bs=4k count=8 2>/dev/null
"$MEMRUN" -q --limit 64M --report "$T/full/r.json" -- sh -c 'exit 3' 2>"$T/err.report"; echo "report \$?"
"$MEMRUN" -q --limit 64M --timeline "$T/full/tl.csv" -- sh -c 'sleep 0.3; exit 5' 2>"$T/err.timeline"; echo "timeline \$?"
"$MEMRUN" -q --limit 64M --metrics "$T/full/m.prom" -- sh -c 'sleep 2.5; exit 6' 2>"$T/err.metrics"; echo "metrics \$?"
ls -a "$T/full" | tr '\n' ' '; echo
SH
    timeout 60 unshare -m --propagation private sh "$T/full.sh" >"$T/out" 2>"$T/err"
    grep -q "^report 3$" "$T/out" || fail "full filesystem, --report: $(cat "$T/out" "$T/err")"
    grep -q "^timeline 5$" "$T/out" || fail "full filesystem, --timeline: $(cat "$T/out" "$T/err")"
    grep -q "^metrics 6$" "$T/out" || fail "full filesystem, --metrics: $(cat "$T/out" "$T/err")"
    fault_said "$T/err.report" "cannot write report $T/full/r.json: No space left on device; the report is lost"
    fault_said "$T/err.timeline" "cannot write timeline $T/full/tl.csv: No space left on device"
    fault_said "$T/err.timeline" "rows lost (No space left on device)"
    # metrics are tried every second (three times here) and said once
    fault_said "$T/err.metrics" "cannot write --metrics $T/full/m.prom: No space left on device"
    # nothing left behind: the fill, and the timeline memrun opened (empty), nothing else
    [ "$(tail -1 "$T/out")" = ". .. fill tl.csv " ] || fail "left in the full filesystem: $(tail -1 "$T/out")"
}

# A device that refuses every write, /dev/full: said, the status kept, the device still a device.
t_output_dev_full() {
    mr -q --limit 64M --report /dev/full -- sh -c 'exit 4'
    expect_rc 4 "--report /dev/full"
    fault_said "$T/err" "cannot write report /dev/full: No space left on device; the report is lost"
    [ -c /dev/full ] || fail "/dev/full is no longer a character device: $(ls -l /dev/full)"
    mr -q --limit 64M --timeline /dev/full -- sh -c 'sleep 0.3; exit 5'
    expect_rc 5 "--timeline /dev/full"
    fault_said "$T/err" "cannot write timeline /dev/full: No space left on device"
    [ -c /dev/full ] || fail "/dev/full is no longer a character device: $(ls -l /dev/full)"
    # a device that takes writes is written in place, not replaced: the report arrives through a FIFO
    mkfifo "$T/fifo"
    cat "$T/fifo" >"$T/fifo.out" &
    cpid=$!
    mr -q --limit 64M --report "$T/fifo" -- sh -c 'exit 9'
    wait $cpid
    expect_rc 9 "--report FIFO"
    [ -p "$T/fifo" ] || fail "the FIFO was replaced: $(ls -l "$T/fifo")"
    [ "$(jq -r .exit.code "$T/fifo.out")" = 9 ] || fail "report through the FIFO: $(head -c 300 "$T/fifo.out")"
}

# --metrics into a directory that does not exist: said once, and again when it works.
t_output_metrics_missing_dir() {
    "$MEMRUN" -q --limit 64M --metrics "$T/later/m.prom" -- sh -c "sleep 1.5; mkdir '$T/later'; sleep 2.5; exit 6" \
        >"$T/out" 2>"$T/err"
    rc=$?
    expect_rc 6 "--metrics into a missing directory"
    fault_said "$T/err" "cannot write --metrics $T/later/m.prom: No such file or directory; trying again every second"
    fault_said "$T/err" "writing --metrics $T/later/m.prom again"
    grep -q '^memrun_usage_bytes{' "$T/later/m.prom" || fail "metrics never written: $(ls -la "$T/later")"
    ls "$T/later" | grep -q tmp && fail "temporary files left: $(ls "$T/later")"
}

# --timeline - into a pipe its reader closed: EPIPE said, memrun goes on (no SIGPIPE death).
t_output_closed_pipe() {
    { "$MEMRUN" -q --limit 64M --timeline - -- sh -c 'sleep 0.5; exit 7' 2>"$T/err"; echo $? >"$T/rc"; } | head -c 1 >/dev/null
    rc=$(cat "$T/rc")
    expect_rc 7 "--timeline into a closed pipe"
    fault_said "$T/err" "cannot write timeline -: Broken pipe"
}
