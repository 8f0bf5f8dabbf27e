#!/bin/sh
# apt-sources.sh: owns finding this host's apt sources for Debian 12, whatever their files are called
# (sources.list, *.list, *.sources: a system made by mmdebstrap has sources.list.d/0000debian.sources).
# Prints the files whose entries name the bookworm suite, one per line, for mmdebstrap's MIRROR
# arguments; prints nothing when there are none (mmdebstrap then uses Debian's default mirror).
# Third-party sources (another suite name) are left out: the image must not depend on them.
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    grep -Eq '^[[:space:]]*(deb|Suites:)([[:space:]].*)?[[:space:]]bookworm([[:space:]]|-[a-z]+([[:space:]]|$)|$)' "$f" &&
        echo "$f"
done
exit 0
