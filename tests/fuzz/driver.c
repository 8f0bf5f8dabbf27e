/* driver: a small stand-in for libFuzzer's main, for compilers without -fsanitize=fuzzer. Runs every
 * file of the corpus directories given, then random mutations of them for -max_total_time=N seconds
 * (or -runs=N inputs). On a crash the input is written to ./crash-driver (or -artifact_prefix=P). */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DRIVER_MAX_INPUT 4096
#define MAX_CORPUS 4096

static uint8_t *corpus[MAX_CORPUS];
static size_t corpus_len[MAX_CORPUS];
static size_t n_corpus;
static uint8_t cur[DRIVER_MAX_INPUT];
static size_t cur_len;
static char crash_path[4096] = "crash-driver";

static void save_crash(void)
{
        static volatile sig_atomic_t saved;
        if (saved)
                return;
        saved = 1;
        int fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
                ssize_t w = write(fd, cur, cur_len);
                (void)w;
                close(fd);
        }
        static const char msg[] = "driver: crashing input saved\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
}

static void on_fatal(int sig)
{
        save_crash();
        signal(sig, SIG_DFL);
        raise(sig);
}

/* Called by ASan/UBSan before they end the process, when the driver is built with them. */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static void add(const uint8_t *d, size_t n)
{
        if (n_corpus >= MAX_CORPUS)
                return;
        if (n > DRIVER_MAX_INPUT)
                n = DRIVER_MAX_INPUT;
        uint8_t *c = malloc(n ? n : 1);
        if (!c)
                return;
        memcpy(c, d, n);
        corpus[n_corpus] = c;
        corpus_len[n_corpus++] = n;
}

static void run(const uint8_t *d, size_t n)
{
        memcpy(cur, d, n);
        cur_len = n;
        LLVMFuzzerTestOneInput(cur, cur_len);
}

static void load_file(const char *path)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return;
        uint8_t buf[DRIVER_MAX_INPUT];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        add(buf, n);
        run(buf, n);
}

static void load(const char *path)
{
        struct stat st;
        if (stat(path, &st) < 0) {
                fprintf(stderr, "driver: %s: not found\n", path);
                return;
        }
        if (!S_ISDIR(st.st_mode)) {
                load_file(path);
                return;
        }
        DIR *d = opendir(path);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char p[8192];
                snprintf(p, sizeof p, "%s/%s", path, de->d_name);
                load_file(p);
        }
        closedir(d);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

/* Bytes the parsers care about, to reach past the first check more often. */
static const char *const tokens[] = { "[", "]", "=", "%", ";", "#", ",", ":", "\n", " ", ".", "\r\n",
                                      "[memory]", "[level.moderate]", "[level.high]", "[level.critical]",
                                      "[recovery]", "[monitor]", "[stall]", "limit", "soft", "swap", "usage",
                                      "psi_some", "psi_full", "predict", "repeat", "actions", "hysteresis",
                                      "dwell", "psi_window", "interval_min", "interval_max", "hook_timeout",
                                      "enabled", "duration", "action", "step", "trim", "collect", "shed",
                                      "reclaim", "signal:", "exec:", "raise", "kill", "max", "ms", "s", "min",
                                      "h", "us", "K", "M", "G", "T", "KiB", "99999999999999999999", "0.5",
                                      "100%", "RTMIN+", "SIG", "\xef\xbb\xbf" };

static size_t mutate(uint8_t *d, size_t n)
{
        unsigned k = 1 + (unsigned)(rnd() % 4);
        for (unsigned i = 0; i < k; i++) {
                switch (rnd() % 7) {
                case 0: /* flip a bit */
                        if (n)
                                d[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
                        break;
                case 1: /* random byte */
                        if (n)
                                d[rnd() % n] = (uint8_t)rnd();
                        break;
                case 2: { /* delete a range */
                        if (!n)
                                break;
                        size_t at = rnd() % n, len = 1 + rnd() % (n - at);
                        memmove(d + at, d + at + len, n - at - len);
                        n -= len;
                        break;
                }
                case 3: { /* insert a token */
                        const char *t = tokens[rnd() % (sizeof tokens / sizeof tokens[0])];
                        size_t len = strlen(t), at = n ? rnd() % (n + 1) : 0;
                        if (n + len > DRIVER_MAX_INPUT)
                                break;
                        memmove(d + at + len, d + at, n - at);
                        memcpy(d + at, t, len);
                        n += len;
                        break;
                }
                case 4: { /* duplicate a range (long lines, repeated keys) */
                        if (!n)
                                break;
                        size_t at = rnd() % n, len = 1 + rnd() % (n - at);
                        if (n + len > DRIVER_MAX_INPUT)
                                break;
                        memmove(d + at + len, d + at, n - at);
                        n += len;
                        break;
                }
                case 5: { /* splice with another corpus entry */
                        if (!n_corpus)
                                break;
                        size_t j = rnd() % n_corpus, at = n ? rnd() % n : 0;
                        size_t len = corpus_len[j] < DRIVER_MAX_INPUT - at ? corpus_len[j] : DRIVER_MAX_INPUT - at;
                        memcpy(d + at, corpus[j], len);
                        if (at + len > n)
                                n = at + len;
                        break;
                }
                default: /* truncate */
                        if (n)
                                n = rnd() % n;
                }
        }
        return n;
}

int main(int argc, char **argv)
{
        long seconds = 10, runs = -1;
        for (int i = 1; i < argc; i++) {
                if (strncmp(argv[i], "-max_total_time=", 16) == 0)
                        seconds = strtol(argv[i] + 16, NULL, 10);
                else if (strncmp(argv[i], "-runs=", 6) == 0)
                        runs = strtol(argv[i] + 6, NULL, 10);
                else if (strncmp(argv[i], "-seed=", 6) == 0)
                        rng = strtoull(argv[i] + 6, NULL, 10) | 1;
                else if (strncmp(argv[i], "-artifact_prefix=", 17) == 0)
                        snprintf(crash_path, sizeof crash_path, "%scrash-driver", argv[i] + 17);
                else if (argv[i][0] == '-')
                        ; /* other libFuzzer flags: ignored */
                else
                        continue;
                argv[i] = NULL;
        }
        signal(SIGSEGV, on_fatal);
        signal(SIGABRT, on_fatal);
        signal(SIGBUS, on_fatal);
        signal(SIGFPE, on_fatal);
        if (__sanitizer_set_death_callback)
                __sanitizer_set_death_callback(save_crash);

        for (int i = 1; i < argc; i++)
                if (argv[i])
                        load(argv[i]);
        if (!n_corpus)
                add((const uint8_t *)"", 0);
        fprintf(stderr, "driver: %zu corpus inputs ran\n", n_corpus);

        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        long done = 0;
        static uint8_t buf[DRIVER_MAX_INPUT];
        for (;; done++) {
                if (runs >= 0 && done >= runs)
                        break;
                if ((done & 255) == 0) {
                        clock_gettime(CLOCK_MONOTONIC, &t);
                        if (t.tv_sec - t0.tv_sec >= seconds)
                                break;
                }
                size_t j = rnd() % n_corpus, n = corpus_len[j];
                memcpy(buf, corpus[j], n);
                n = mutate(buf, n);
                run(buf, n);
                if (rnd() % 64 == 0)
                        add(buf, n); /* keep some mutants to mutate further */
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        fprintf(stderr, "driver: Done %ld runs in %ld second(s)\n", done, (long)(t.tv_sec - t0.tv_sec));
        return 0;
}
