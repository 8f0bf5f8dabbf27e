/* hints: what memrun exports beside its own variables so that each language runtime sizes itself to
 * the budget instead of to the machine (or to its own small-container default), each only when the
 * user has not set it, all off with --no-hints. Pure: the environment comes in through a getter.
 *   GOMEMLIMIT              the soft limit, in bytes: Go's collector works harder as the heap nears it;
 *   NODE_OPTIONS            + --max-old-space-size=MiB, 3/4 of the soft limit: V8's old space is most
 *                           of a Node process; the rest (new space, code, buffers, native) fits in the
 *                           quarter left (Node's own advice: 3/4 of the machine's memory);
 *   JAVA_TOOL_OPTIONS       + -Xmx: the soft limit less room for what is not heap (metaspace, code
 *                           cache, thread stacks, GC structures): a quarter, at least 64 MiB; and
 *                           -XX:SoftMaxHeapSize, 9/10 of it, the heap ZGC (and Shenandoah) aim under
 *                           (the others ignore it). HotSpot's own default under a small container
 *                           limit is half of it (MinRAMPercentage), 1/4 above 256 MiB;
 *   DOTNET_GCHeapHardLimit  3/4 of the soft limit, in hex as .NET reads it: its own container default
 *                           is 3/4 of the hard limit, which lies above the soft one.
 * MEMRUN_HINTS lists the names set (comma-separated), so a client can tell memrun's hint from the
 * user's. With no soft limit (max) nothing is hinted. */
#pragma once
#include <stdint.h>

#define HINTS_MAX 4
#define HINT_VALUE_MAX 1024

struct hints {
        unsigned n;
        struct hint {
                const char *name;
                char value[HINT_VALUE_MAX];
        } v[HINTS_MAX];
        char names[96]; /* MEMRUN_HINTS: "GOMEMLIMIT,NODE_OPTIONS" */
};

/* The hints for a soft limit; get(name) is the environment the command would get otherwise. */
void hints_build(uint64_t soft, const char *(*get)(const char *name), struct hints *ret);
