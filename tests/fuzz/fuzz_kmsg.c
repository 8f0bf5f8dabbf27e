/* fuzz_kmsg: libFuzzer target for the /dev/kmsg OOM parsers (kmsg_parse_oom, kmsg_parse_killed): kernel
 * log text is not ours, and a comm or a cgroup name can hold anything. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kernel/kmsg.h"

static void check(int r, const struct oom_victim *v, const struct oom_victim *before)
{
        if (r == 0) {
                /* A named victim has a pid and a NUL-terminated comm. */
                if (v->pid <= 0 || memchr(v->comm, '\0', sizeof v->comm) == NULL ||
                    memchr(v->task_memcg, '\0', sizeof v->task_memcg) == NULL ||
                    memchr(v->memcg, '\0', sizeof v->memcg) == NULL)
                        abort();
        } else if (r >= 0 || memcmp(v, before, sizeof *v) != 0) {
                abort(); /* errors are -errno and leave the output alone */
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *s = fuzz_text(data, size);
        if (!s)
                return 0;
        static struct oom_victim v, before;
        memset(&v, 0xa5, sizeof v);
        v.comm[sizeof v.comm - 1] = v.task_memcg[sizeof v.task_memcg - 1] = v.memcg[sizeof v.memcg - 1] = '\0';
        before = v;
        check(kmsg_parse_oom(s, &v), &v, &before);
        v = before;
        check(kmsg_parse_killed(s, &v), &v, &before);
        free(s);
        return 0;
}
