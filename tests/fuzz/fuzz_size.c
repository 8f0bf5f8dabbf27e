/* fuzz_size: libFuzzer target for size_parse, pct_parse, duration_parse and size_format.
 * Builds with clang -fsanitize=fuzzer, or with any compiler plus driver.c. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "config/size.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *s = fuzz_text(data, size);
        if (!s)
                return 0;

        uint64_t v = 0, base = 0;
        if (size >= 8)
                memcpy(&base, data, sizeof base); /* a varying percentage base */
        int r = size_parse(s, base, &v);
        if (r != 0 && r != -EINVAL && r != -ERANGE && r != -EDOM)
                abort();
        if (r == 0) {
                /* Sizes are bounded by the kernel's signed page counters, or are "max". */
                if (v > (uint64_t)INT64_MAX && v != SIZE_MAX_VALUE && base <= (uint64_t)INT64_MAX)
                        abort();
                char buf[32];
                size_format(v, buf, sizeof buf);
                if (memchr(buf, '\0', sizeof buf) == NULL)
                        abort();
        }
        uint32_t ppm;
        r = pct_parse(s, &ppm);
        if (r == 0 && ppm > PCT_ONE)
                abort();
        if (r != 0 && r != -EINVAL && r != -ERANGE)
                abort();
        uint64_t usec;
        r = duration_parse(s, &usec);
        if (r == 0 && usec > (uint64_t)INT64_MAX)
                abort();
        if (r != 0 && r != -EINVAL && r != -ERANGE)
                abort();
        free(s);
        return 0;
}
