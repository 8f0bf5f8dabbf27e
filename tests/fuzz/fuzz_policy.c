/* fuzz_policy: libFuzzer target for the INI policy parser, the cross-field checks and the printer.
 * Builds with clang -fsanitize=fuzzer, or with any compiler plus driver.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "config/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static FILE *sink;
        static struct policy p;
        char err[256];

        if (!sink)
                sink = fopen("/dev/null", "we");
        /* The parser takes a C string; NUL bytes in the input end it, as they would for a caller. */
        char *text = fuzz_text(data, size);
        if (!text)
                return 0;

        memset(err, 0x55, sizeof err);
        int r = policy_parse_string(text, "fuzz.ini", &p, err, sizeof err);
        if (memchr(err, '\0', sizeof err) == NULL)
                abort(); /* the message must always be terminated */
        if (r < 0 && strncmp(err, "fuzz.ini:", 9) != 0)
                abort(); /* every parse error names the file (and line) */
        if (r == 0) {
                if (policy_validate(&p, err, sizeof err) < 0 && err[0] == '\0')
                        abort(); /* a refusal always says why */
                if (sink)
                        policy_print(sink, &p);
        }
        /* A tiny error buffer must still be terminated and never overrun. */
        char small[8];
        memset(small, 0x55, sizeof small);
        (void)policy_parse_string(text, "fuzz.ini", &p, small, sizeof small);
        if (memchr(small, '\0', sizeof small) == NULL)
                abort();
        free(text);
        return 0;
}
