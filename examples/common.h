/* common: the command-line number parser and the sleep the example programs share. */
#pragma once
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* "123", "64K", "16M", "2G" (base 1024); anything else: a message naming prog, exit 2. */
static inline unsigned long long example_size_arg(const char *prog, const char *s)
{
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || *s == '-')
                goto bad;
        switch (*end) {
        case 'K': case 'k': v <<= 10; end++; break;
        case 'M': case 'm': v <<= 20; end++; break;
        case 'G': case 'g': v <<= 30; end++; break;
        }
        if (*end == '\0')
                return v;
bad:
        fprintf(stderr, "%s: bad number '%s'\n", prog, s);
        exit(2);
}

/* Sleep ms milliseconds, whole (a signal that interrupts it does not cut it short). */
static inline void example_sleep_ms(long long ms)
{
        if (ms <= 0)
                return;
        struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}
