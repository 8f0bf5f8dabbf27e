/* hints: GOMEMLIMIT, NODE_OPTIONS, JAVA_TOOL_OPTIONS and DOTNET_GCHeapHardLimit sized to the soft
 * limit (hints.h says how each number is derived, and why). Pure. */
#include "supervise/hints.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config/size.h"

#define MiB (UINT64_C(1) << 20)

static bool has_any(const char *s, const char *const *words)
{
        for (; s && *words; words++)
                if (strstr(s, *words))
                        return true;
        return false;
}

/* Add name=value (value made by the caller), and name to the list. */
static struct hint *add(struct hints *h, const char *name)
{
        struct hint *v = &h->v[h->n++];
        v->name = name;
        size_t l = strlen(h->names);
        snprintf(h->names + l, sizeof h->names - l, "%s%s", l ? "," : "", name);
        return v;
}

/* The hint: the variable's current value, then " " and extra (or extra alone). */
static void append(struct hint *v, const char *cur, const char *extra)
{
        snprintf(v->value, sizeof v->value, "%s%s%s", cur && *cur ? cur : "", cur && *cur ? " " : "", extra);
}

void hints_build(uint64_t soft, const char *(*get)(const char *name), struct hints *ret)
{
        *ret = (struct hints){ .n = 0 };
        if (soft == SIZE_MAX_VALUE || soft == 0)
                return;
        const char *cur;
        if (!get("GOMEMLIMIT"))
                snprintf(add(ret, "GOMEMLIMIT")->value, HINT_VALUE_MAX, "%llu", (unsigned long long)soft);

        cur = get("NODE_OPTIONS");
        uint64_t old_space = soft / 4 * 3 / MiB;
        if (!has_any(cur, (const char *const[]){ "max-old-space-size", "max_old_space_size", NULL }) &&
            (!cur || strlen(cur) + 40 < HINT_VALUE_MAX))
        {
                char extra[64];
                snprintf(extra, sizeof extra, "--max-old-space-size=%llu",
                         (unsigned long long)(old_space < 16 ? 16 : old_space));
                append(add(ret, "NODE_OPTIONS"), cur, extra);
        }

        cur = get("JAVA_TOOL_OPTIONS");
        uint64_t room = soft / 4 > 64 * MiB ? soft / 4 : 64 * MiB;
        uint64_t heap = soft > room + 16 * MiB ? (soft - room) / MiB : 16;
        if (!has_any(cur, (const char *const[]){ "-Xmx", "MaxHeapSize", "MaxRAM", NULL }) &&
            (!cur || strlen(cur) + 64 < HINT_VALUE_MAX))
        {
                char extra[96];
                snprintf(extra, sizeof extra, "-Xmx%llum -XX:SoftMaxHeapSize=%llum", (unsigned long long)heap,
                         (unsigned long long)(heap * 9 / 10));
                append(add(ret, "JAVA_TOOL_OPTIONS"), cur, extra);
        }

        if (!get("DOTNET_GCHeapHardLimit") && !get("DOTNET_GCHeapHardLimitPercent") &&
            !get("COMPlus_GCHeapHardLimit"))
                snprintf(add(ret, "DOTNET_GCHeapHardLimit")->value, HINT_VALUE_MAX, "0x%llx",
                         (unsigned long long)(soft / 4 * 3));
}
