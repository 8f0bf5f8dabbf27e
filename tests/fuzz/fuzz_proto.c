/* fuzz_proto: libFuzzer target for memlimit_msg_check (every message memrun receives from a client
 * passes through it) and for the supervisor's peer check on /proc/<pid>/cgroup text. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "limiter/memlimit_proto.h"
#include "cgroup/cg.h"
#include "control/lsrv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct memlimit_msg m;
        memset(&m, 0, sizeof m);
        memcpy(&m, data, size < sizeof m ? size : sizeof m);
        int r = memlimit_msg_check(&m, size);
        if (r != 0 && r != -EINVAL && r != -EPROTO)
                abort();
        if (r == 0 && size != MEMLIMIT_MSG_SIZE)
                abort(); /* only whole messages are valid */

        char *text = fuzz_text(data, size);
        if (!text)
                return 0;
        for (int mode = 0; mode < _CG_MODE_MAX; mode++) {
                int in = cg_cgroup_inside(text, (enum cg_mode)mode, "/sandbox/memrun-1");
                if (in != 0 && in != 1 && in != -ENOENT && in != -EINVAL && in != -ESTALE)
                        abort();
        }
        free(text);
        return 0;
}
