/* fuzz_ctl: libFuzzer target for the control protocol's text: a status reply (ctl_status_parse,
 * then written in every form) and a set request (ctl_parse_set), as a hostile peer could send them.
 * The forms share one field table: what parse reads, format writes back so that it reads the same. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "control/ctl.h"

/* Every form of a status that parsed; the text form read back gives the same text. */
static void forms(const struct ctl_status *st)
{
        static char text[CTL_REPLY_MAX * 4], again[CTL_REPLY_MAX * 4], json[CTL_JSON_MAX];
        static struct ctl_status back;
        int n = ctl_status_format(st, text, sizeof text);
        if (n < 0 || ctl_status_prometheus(st, again, sizeof again) < 0 || ctl_status_json(st, json, sizeof json) < 0)
                abort();
        /* a reply without a pid is parsed (unknown keys are skipped) but formats as pid=0, which is
         * not one */
        if (st->pid == 0)
                return;
        if (ctl_status_parse(text, &back) != 0 || ctl_status_format(&back, again, sizeof again) != n ||
            memcmp(text, again, (size_t)n) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct ctl_status st;
        char *s = fuzz_text(data, size);
        if (!s)
                return 0;
        int r = ctl_status_parse(s, &st);
        if (r != 0 && r != -EINVAL)
                abort();
        if (r == 0)
                forms(&st);
        uint64_t l, so;
        bool hl, hs;
        r = ctl_parse_set(s, &l, &hl, &so, &hs);
        if (r == 0 && ((!hl && !hs) || (hl && l == 0) || (hs && so == 0)))
                abort();
        free(s);
        return 0;
}
