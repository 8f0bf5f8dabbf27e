/* log: the supervisor's stderr messages, with verbosity and a remembered last error for tests. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int verbosity;
static bool journal;
static const char *prefix = "memrun";
static char last_error[1024];

void log_set_verbosity(int v) { verbosity = v; }
void log_set_prefix(const char *p) { prefix = p; }
const char *log_last_error(void) { return last_error; }

bool log_detect_journal(void)
{
        const char *js = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
                  (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
        return journal;
}

const char *log_journal_prefix(enum log_level level)
{
        /* sd-daemon.h: SD_ERR <3>, SD_WARNING <4>, SD_INFO <6>, SD_DEBUG <7> */
        static const char *const p[_LOG_LEVEL_MAX] = { "<3>", "<4>", "<6>", "<7>" };
        return journal && (unsigned)level < _LOG_LEVEL_MAX ? p[level] : "";
}

static void log_va(enum log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void log_va(enum log_level level, const char *fmt, va_list ap)
{
        /* Errors always print; warnings unless -q; info is the summary level; debug needs -v. */
        static const int need[_LOG_LEVEL_MAX] = { -1, 0, 0, 1 };
        va_list aq;

        if (level == LOG_ERR) {
                va_copy(aq, ap);
                vsnprintf(last_error, sizeof last_error, fmt, aq);
                va_end(aq);
        }
        if (verbosity < need[level])
                return;
        char buf[2048];
        vsnprintf(buf, sizeof buf, fmt, ap);
        fprintf(stderr, "%s%s: %s%s\n", log_journal_prefix(level), prefix, level == LOG_WARN ? "warning: " : "", buf);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        log_va(level, fmt, ap);
        va_end(ap);
}

int log_msg_errno(enum log_level level, int r, const char *fmt, ...)
{
        int saved = errno;
        va_list ap;
        errno = r < 0 ? -r : r;
        va_start(ap, fmt);
        log_va(level, fmt, ap);
        va_end(ap);
        errno = saved;
        return r;
}
