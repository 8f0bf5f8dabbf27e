/* size: strict parsers for sizes ("2.5G", "512KiB", "50%", "max"), percentages and durations. */
#pragma once
#include <stdint.h>

#define SIZE_MAX_VALUE UINT64_MAX   /* "max": no limit */
#define PCT_ONE 1000000u            /* percentages are kept in parts per million */

/* Parse a size. "N%" is relative to pct_base (pass 0 to refuse percentages).
 * Returns 0, -EINVAL (malformed), -ERANGE (too large), -EDOM (percent not allowed). */
int size_parse(const char *s, uint64_t pct_base, uint64_t *ret);
/* "90%", "92.5%": 0..100%, in parts per million. */
int pct_parse(const char *s, uint32_t *ret_ppm);
/* "250ms", "2s", "1.5m", "1h", "100us": microseconds. A bare number is refused. */
int duration_parse(const char *s, uint64_t *ret_usec);
/* Human form for messages: "256M", "2.5G", "max". */
const char *size_format(uint64_t v, char *buf, unsigned long size);

/* ppm parts per million of total (PCT_ONE = all of it), without overflow. */
static inline uint64_t size_share(uint64_t total, uint32_t ppm)
{
        return (uint64_t)((unsigned __int128)total * ppm / PCT_ONE);
}
