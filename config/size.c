/* size: strict parsers for sizes ("2.5G", "512KiB", "50%", "max"), percentages and durations. */
#include "size.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef unsigned __int128 u128;

/* Parse "123" or "123.456" at *p; value scaled by 10^FRAC_DIGITS. */
#define FRAC_DIGITS 18
static const u128 FRAC_ONE = (u128)1000000000000000000ull;

static int parse_decimal(const char **p, u128 *ret_scaled)
{
        const char *s = *p;
        u128 ip = 0, fp = 0;
        unsigned nint = 0, nfrac = 0;

        for (; *s >= '0' && *s <= '9'; s++, nint++) {
                if (nint >= 20)
                        return -ERANGE;
                ip = ip * 10 + (unsigned)(*s - '0');
        }
        if (*s == '.') {
                s++;
                for (; *s >= '0' && *s <= '9'; s++, nfrac++) {
                        if (nfrac < FRAC_DIGITS)
                                fp = fp * 10 + (unsigned)(*s - '0');
                }
                if (nfrac == 0)
                        return -EINVAL;
        }
        if (nint == 0)
                return -EINVAL;
        for (unsigned i = nfrac < FRAC_DIGITS ? nfrac : FRAC_DIGITS; i < FRAC_DIGITS; i++)
                fp *= 10;
        *ret_scaled = ip * FRAC_ONE + fp;
        *p = s;
        return 0;
}

/* A decimal number at the start of s: its value scaled by FRAC_ONE, and what follows it. */
static int parse_number(const char *s, u128 *ret_scaled, const char **ret_suffix)
{
        if (!s)
                return -EINVAL;
        const char *p = s;
        int r = parse_decimal(&p, ret_scaled);
        if (r < 0)
                return r;
        *ret_suffix = p;
        return 0;
}

static const struct unit {
        const char *name;
        unsigned shift;
} units[] = {
        { "", 0 },    { "b", 0 },    { "k", 10 },   { "kb", 10 }, { "kib", 10 }, { "m", 20 },
        { "mb", 20 }, { "mib", 20 }, { "g", 30 },   { "gb", 30 }, { "gib", 30 }, { "t", 40 },
        { "tb", 40 }, { "tib", 40 },
};

int size_parse(const char *s, uint64_t pct_base, uint64_t *ret)
{
        u128 scaled;
        int r;

        if (!s)
                return -EINVAL;
        if (strcasecmp(s, "max") == 0 || strcasecmp(s, "infinity") == 0) {
                *ret = SIZE_MAX_VALUE;
                return 0;
        }
        const char *p;
        r = parse_number(s, &scaled, &p);
        if (r < 0)
                return r;
        if (strcmp(p, "%") == 0) {
                if (pct_base == 0)
                        return -EDOM;
                if (scaled > (u128)100 * FRAC_ONE)
                        return -ERANGE;
                *ret = (uint64_t)(scaled * pct_base / ((u128)100 * FRAC_ONE));
                return 0;
        }
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
                if (strcasecmp(p, units[i].name) != 0)
                        continue;
                u128 v = (scaled << units[i].shift) / FRAC_ONE;
                /* Cgroup limits are signed 64-bit page counters: anything above is not a size. */
                if (v > (u128)INT64_MAX)
                        return -ERANGE;
                *ret = (uint64_t)v;
                return 0;
        }
        return -EINVAL;
}

int pct_parse(const char *s, uint32_t *ret_ppm)
{
        u128 scaled;
        const char *p;
        int r = parse_number(s, &scaled, &p);
        if (r < 0)
                return r;
        if (strcmp(p, "%") != 0)
                return -EINVAL;
        if (scaled > (u128)100 * FRAC_ONE)
                return -ERANGE;
        *ret_ppm = (uint32_t)(scaled * 10000 / FRAC_ONE);
        return 0;
}

int duration_parse(const char *s, uint64_t *ret_usec)
{
        static const struct {
                const char *name;
                uint64_t usec;
        } dunits[] = {
                { "us", 1 }, { "ms", 1000 }, { "s", 1000000 }, { "m", 60000000 }, { "min", 60000000 },
                { "h", 3600000000ull },
        };
        u128 scaled;
        const char *p;
        int r = parse_number(s, &scaled, &p);
        if (r < 0)
                return r;
        for (size_t i = 0; i < sizeof dunits / sizeof dunits[0]; i++) {
                if (strcmp(p, dunits[i].name) != 0)
                        continue;
                u128 v = scaled * dunits[i].usec / FRAC_ONE;
                if (v > (u128)INT64_MAX)
                        return -ERANGE;
                *ret_usec = (uint64_t)v;
                return 0;
        }
        return -EINVAL;
}

const char *size_format(uint64_t v, char *buf, unsigned long size)
{
        static const char suffix[] = "KMGTPE";
        if (v == SIZE_MAX_VALUE) {
                snprintf(buf, size, "max");
                return buf;
        }
        if (v < 1024) {
                snprintf(buf, size, "%luB", (unsigned long)v);
                return buf;
        }
        double d = (double)v;
        int i = -1;
        while (d >= 1024 && i < 5) {
                d /= 1024;
                i++;
        }
        if (d == (double)(uint64_t)d)
                snprintf(buf, size, "%.0f%c", d, suffix[i]);
        else
                snprintf(buf, size, "%.1f%c", d, suffix[i]);
        return buf;
}
