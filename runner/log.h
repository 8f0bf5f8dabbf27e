/* log: the supervisor's stderr messages, with verbosity and a remembered last error for tests. */
#pragma once
#include <stdbool.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG, _LOG_LEVEL_MAX };

/* -1 quiet (errors only), 0 normal, 1 verbose. */
void log_set_verbosity(int v);
void log_set_prefix(const char *prefix);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* stderr is the journal (JOURNAL_STREAM names its device and inode, systemd.exec(5)): prefix each
 * line with its sd-daemon priority ("<3>" error ... "<7>" debug). Returns whether it is. */
bool log_detect_journal(void);
/* The "<N>" for level when writing to the journal, else "". For lines printed outside log_msg. */
const char *log_journal_prefix(enum log_level level);
/* The text of the last LOG_ERR message, for unit tests. */
const char *log_last_error(void);

/* systemd's convention: log with errno set from r (a -errno), so "%m" in fmt names the error; errno
 * is restored afterwards. Returns r, for "return log_error_errno(r, ...)". */
int log_msg_errno(enum log_level level, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_error_errno(r, ...) log_msg_errno(LOG_ERR, (r), __VA_ARGS__)
#define log_warn_errno(r, ...) log_msg_errno(LOG_WARN, (r), __VA_ARGS__)
#define log_debug_errno(r, ...) log_msg_errno(LOG_DEBUG, (r), __VA_ARGS__)
