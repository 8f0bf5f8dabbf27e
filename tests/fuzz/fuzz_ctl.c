/* fuzz_ctl: libFuzzer target for the control protocol's text: a status reply (ctl_status_parse,
 * then formatted again) and a set request (ctl_parse_set), as a hostile peer could send them. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "control/ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct ctl_status st;
        char *s = fuzz_text(data, size);
        if (!s)
                return 0;
        int r = ctl_status_parse(s, &st);
        if (r != 0 && r != -EINVAL)
                abort();
        if (r == 0) {
                static char buf[CTL_REPLY_MAX * 4];
                if (ctl_status_format(&st, buf, sizeof buf) < 0 || ctl_status_prometheus(&st, buf, sizeof buf) < 0)
                        abort();
        }
        uint64_t l, so;
        bool hl, hs;
        r = ctl_parse_set(s, &l, &hl, &so, &hs);
        if (r == 0 && ((!hl && !hs) || (hl && l == 0) || (hs && so == 0)))
                abort();
        free(s);
        return 0;
}
