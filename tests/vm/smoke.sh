#!/bin/sh
# smoke.sh: owns the in-VM sanity check of the test kernel (cgroup2 memory controller, PSI, cgroup files, real OOM kill).
fail=0
ok()  { echo "ok:   $*"; }
bad() { echo "FAIL: $*"; fail=1; }
CG=/sys/fs/cgroup

echo "kernel: $(uname -r)"
echo "cgroup.controllers: $(cat $CG/cgroup.controllers)"
grep -qw memory $CG/cgroup.controllers && ok "memory controller available" || bad "no memory controller"
if cat /proc/pressure/memory >/dev/null 2>&1; then
    ok "PSI on: $(head -n1 /proc/pressure/memory)"
else
    bad "/proc/pressure/memory not readable (PSI off?)"
fi
[ -c /dev/kmsg ] && ok "/dev/kmsg present" || bad "/dev/kmsg missing"

echo +memory > $CG/cgroup.subtree_control || bad "cannot enable +memory in subtree_control"
mkdir $CG/t || bad "cannot mkdir $CG/t"
for f in memory.max memory.high memory.swap.max memory.oom.group memory.peak memory.reclaim \
         memory.events memory.pressure cgroup.kill cgroup.events; do
    [ -e $CG/t/$f ] && ok "exists: $f" || bad "missing: $f"
done

# Real OOM kill: tmpfs (shmem) pages are charged to the writer's memcg and,
# with no swap, cannot be reclaimed, so writing 64 MiB under a 32 MiB limit OOMs.
echo 32M > $CG/t/memory.max
[ -e $CG/t/memory.swap.max ] && echo 0 > $CG/t/memory.swap.max
mkdir -p /tmp/oomfs && mount -t tmpfs -o size=128m tmpfs /tmp/oomfs
sh -c "echo \$\$ > $CG/t/cgroup.procs && exec dd if=/dev/zero of=/tmp/oomfs/fill bs=1M count=64 2>/dev/null"
rc=$?
echo "writer exit status: $rc (137 = SIGKILL)"
echo "memory.events:"; sed 's/^/  /' $CG/t/memory.events
echo "memory.peak: $(cat $CG/t/memory.peak)"
kills=$(awk '$1 == "oom_kill" {print $2}' $CG/t/memory.events)
[ "${kills:-0}" -ge 1 ] && ok "OOM kill happened (oom_kill $kills)" || bad "no OOM kill recorded"
dmesg 2>/dev/null | grep -i 'killed process' | tail -n1 | sed 's/^/  dmesg: /'
umount /tmp/oomfs
rmdir $CG/t || bad "cannot rmdir $CG/t"

[ $fail = 0 ] && echo "SMOKE: PASS" || echo "SMOKE: FAIL"
exit $fail
