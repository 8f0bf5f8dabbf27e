#!/bin/sh
# suite.sh: owns staging and running the cgroup v2 VM suites: make install's tree, the host suite
# and the scenarios, the examples and test helpers, and the host tools they use (jq, setpriv,
# util-linux's unshare), then one boot for the host suite and one for the scenarios.
# Usage (from the top directory, after make all): B=build tests/vm/suite.sh
set -eu
B=${B:-build}
root=$PWD/$B/vm-root
B=$B tests/vm/stage.sh "$root"
cp -r tests/host tests/scenarios "$root/tests/"
cp "$(command -v jq)" "$(command -v setpriv)" "$(command -v unshare)" "$root/usr/bin/"
in_vm="env MEMRUN=/usr/bin/memrun EXAMPLES=/usr/libexec/memrun HELPERS=/usr/libexec/memrun"
# shellcheck disable=SC2086  # $in_vm is words on purpose
MEMRUN_VM_LOG=$B/vm.log tests/vm/run.sh "$root" -- $in_vm PRELOAD_SO=/usr/lib/memrun/libmemlimit-preload.so \
    CONFIGS=/usr/share/memrun sh /tests/host/run.sh
# shellcheck disable=SC2086
MEMRUN_VM_LOG=$B/vm-scenarios.log tests/vm/run.sh "$root" -- $in_vm sh /tests/scenarios/run.sh
