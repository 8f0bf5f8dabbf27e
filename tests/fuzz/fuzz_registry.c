/* fuzz_registry: libFuzzer target for registry_parse (a sandbox record in the runtime directory, which
 * another memrun wrote -- or anyone who could write there) and cg_parse_self (/proc/self/cgroup). */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "cgroup/cg.h"
#include "cgroup/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *s = fuzz_text(data, size);
        if (!s)
                return 0;
        static char mem[PATH_MAX], uni[PATH_MAX];
        int mode = -1;
        if (registry_parse(s, &mode, mem, sizeof mem, uni, sizeof uni) == 0) {
                /* A record names an absolute memory-hierarchy path, NUL-terminated within the buffer. */
                if (!memchr(mem, '\0', sizeof mem) || !memchr(uni, '\0', sizeof uni) || mem[0] != '/')
                        abort();
        }
        for (int m = 0; m < _CG_MODE_MAX; m++) {
                if (cg_parse_self(s, (enum cg_mode)m, mem, sizeof mem, uni, sizeof uni) == 0 &&
                    (!memchr(mem, '\0', sizeof mem) || !memchr(uni, '\0', sizeof uni)))
                        abort();
        }
        free(s);
        return 0;
}
