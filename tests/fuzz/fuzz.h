/* fuzz.h: what every fuzz target shares: the entry point's prototype, and the input as a C string
 * (parsers read text; the fuzzer's bytes carry no NUL at the end). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A malloc'd, NUL-terminated copy of the input (free it), or NULL when out of memory. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
        char *s = malloc(size + 1);
        if (s) {
                memcpy(s, data, size);
                s[size] = '\0';
        }
        return s;
}
