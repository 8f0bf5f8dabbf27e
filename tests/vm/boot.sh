# boot.sh: sourced by tests/vm/run.sh and tests/systemd/run.sh: boot a kernel and initramfs under
# qemu (TCG; nested KVM hangs here), the serial console cleaned and kept in $LOG, bounded by
# $TIMEOUT; exit with the status the guest printed as MEMRUN-VM-EXIT=N (124 timeout, 125 none).
# Usage: vm_boot KERNEL INITRD MEM SMP APPEND   (needs say, die, LOG, TIMEOUT)
vm_boot() {
    local kernel=$1 initrd=$2 mem=$3 smp=$4 append=$5 start rcs status
    mkdir -p "$(dirname "$LOG")" || die "cannot create directory for $LOG"
    start=$(date +%s)
    # Console: drop CRs and the firmware's terminal escapes (SeaBIOS disables line wrap), unbuffered.
    timeout -k 10 "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -m "$mem" -smp "$smp" \
        -nographic -no-reboot -kernel "$kernel" -initrd "$initrd" -nic none -append "$append" </dev/null 2>&1 |
        sed -u -e 's/\r//g' -e 's/\x1bc/\n/g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[A-Za-z]//g' | tee "$LOG"
    rcs=("${PIPESTATUS[@]}")
    say "VM ran for $(( $(date +%s) - start ))s"
    if [ "${rcs[0]}" = 124 ] || [ "${rcs[0]}" = 137 ]; then
        say "error: VM timed out after ${TIMEOUT}s (MEMRUN_VM_TIMEOUT); console log in $LOG"
        exit 124
    fi
    [ "${rcs[2]}" = 0 ] || die "could not write the log $LOG"
    status=$(sed -n 's/.*MEMRUN-VM-EXIT=\([0-9][0-9]*\).*/\1/p' "$LOG" | tail -n1)
    [ -n "$status" ] || die "no MEMRUN-VM-EXIT marker on the console (qemu exit ${rcs[0]}; kernel panic or init crash?); see $LOG"
    exit "$status"
}
