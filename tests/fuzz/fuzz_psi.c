/* fuzz_psi: libFuzzer target for psi_parse (memory.pressure text), with invariants on what it accepts. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kernel/psi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *s = fuzz_text(data, size);
        if (!s)
                return 0;
        struct psi p;
        memset(&p, 0xa5, sizeof p);
        struct psi before = p;
        int r = psi_parse(s, &p);
        if (r == 0) {
                /* Averages are shares of time: never above 100%. */
                if (p.some.avg10 > 1000000 || p.some.avg60 > 1000000 || p.some.avg300 > 1000000)
                        abort();
                if (p.has_full && (p.full.avg10 > 1000000 || p.full.avg60 > 1000000 || p.full.avg300 > 1000000))
                        abort();
        } else if (r != -EINVAL || memcmp(&p, &before, sizeof p) != 0) {
                abort(); /* errors are -EINVAL and leave the output alone */
        }
        free(s);
        return 0;
}
