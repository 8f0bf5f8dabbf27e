/* unit.h: shared helpers for the cmocka unit tests: temp trees, file I/O, fixture lookup. */
#pragma once
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* snprintf that fails the test instead of truncating (and keeps -Wformat-truncation quiet). */
#define xsnprintf(buf, size, ...)                                                    \
        do {                                                                         \
                int xsn_ = snprintf(buf, size, __VA_ARGS__);                         \
                if (xsn_ < 0 || (size_t)xsn_ >= (size_t)(size))                      \
                        fail_msg("path too long at %s:%d", __FILE__, __LINE__);      \
        } while (0)

/* Directory holding the real samples: $MEMRUN_FIXTURES, else tests/unit/fixtures beside this source
 * (the Makefile compiles from the top directory), else relative to the binary in build/{,asan/}tests. */
static inline const char *fixtures_dir(void)
{
        static char dir[PATH_MAX];
        const char *env = getenv("MEMRUN_FIXTURES");
        if (env && *env)
                return env;
        if (dir[0])
                return dir;
        snprintf(dir, sizeof dir, "%s", __FILE__);
        char *slash = strrchr(dir, '/');
        if (slash) {
                snprintf(slash + 1, sizeof dir - (size_t)(slash + 1 - dir), "fixtures");
                if (access(dir, F_OK) == 0)
                        return dir;
        }
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
                exe[n] = '\0';
                for (int up = 0; up < 4; up++) {
                        char *s = strrchr(exe, '/');
                        if (!s)
                                break;
                        *s = '\0';
                        int k = snprintf(dir, sizeof dir, "%s/tests/unit/fixtures", exe);
                        if (k > 0 && (size_t)k < sizeof dir && access(dir, F_OK) == 0)
                                return dir;
                }
        }
        snprintf(dir, sizeof dir, "tests/unit/fixtures");
        return dir;
}

/* Read a whole (small) file into a malloc'ed NUL-terminated string; fails the test if missing. */
static inline char *slurp(const char *path)
{
        FILE *f = fopen(path, "re");
        if (!f)
                fail_msg("cannot open %s: %s", path, strerror(errno));
        char *buf = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&buf, &size);
        assert_non_null(m);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
                fwrite(chunk, 1, n, m);
        fclose(f);
        fclose(m);
        return buf;
}

static inline char *fixture(const char *rel)
{
        char path[PATH_MAX];
        xsnprintf(path, sizeof path, "%s/%s", fixtures_dir(), rel);
        return slurp(path);
}

/* Create or truncate dir/rel (parents must exist) with the given content. */
static inline void put_file(const char *dir, const char *rel, const char *content)
{
        char path[PATH_MAX];
        xsnprintf(path, sizeof path, "%s/%s", dir, rel);
        FILE *f = fopen(path, "we");
        if (!f)
                fail_msg("cannot create %s: %s", path, strerror(errno));
        fputs(content, f);
        assert_int_equal(fclose(f), 0);
}

static inline void put_fixture(const char *dir, const char *rel, const char *fixture_rel)
{
        char *text = fixture(fixture_rel);
        put_file(dir, rel, text);
        free(text);
}

static inline char *get_file(const char *dir, const char *rel)
{
        char path[PATH_MAX];
        xsnprintf(path, sizeof path, "%s/%s", dir, rel);
        return slurp(path);
}

static inline bool path_exists(const char *dir, const char *rel)
{
        char path[PATH_MAX];
        xsnprintf(path, sizeof path, "%s/%s", dir, rel);
        return access(path, F_OK) == 0;
}

static inline void make_dirs(const char *dir, const char *rel)
{
        char path[PATH_MAX];
        int n = snprintf(path, sizeof path, "%s/%s", dir, rel);
        assert_true(n > 0 && (size_t)n < sizeof path);
        for (char *p = path + strlen(dir) + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(path, 0755) < 0 && errno != EEXIST)
                        fail_msg("mkdir %s: %s", path, strerror(errno));
                *p = '/';
        }
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                fail_msg("mkdir %s: %s", path, strerror(errno));
}

static inline char *make_tmpdir(void)
{
        const char *t = getenv("TMPDIR");
        char tmpl[PATH_MAX];
        xsnprintf(tmpl, sizeof tmpl, "%s/memrun-unit.XXXXXX", t && *t ? t : "/tmp");
        char *d = mkdtemp(tmpl);
        if (!d)
                fail_msg("mkdtemp: %s", strerror(errno));
        return strdup(d);
}

static inline void rm_rf_at(int dfd, const char *name)
{
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                (void)unlinkat(dfd, name, 0);
                return;
        }
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        rm_rf_at(dirfd(d), de->d_name);
        closedir(d);
        (void)unlinkat(dfd, name, AT_REMOVEDIR);
}

/* Remove a temp tree made by make_tmpdir (refuses anything else) and free its name. */
static inline void remove_tmpdir(char *dir)
{
        if (!dir)
                return;
        if (strstr(dir, "/memrun-unit.") && strncmp(dir, "/sys", 4) != 0)
                rm_rf_at(AT_FDCWD, dir);
        free(dir);
}

/* A test that documents expected behaviour the code under test does not have yet (see the report of
 * the session that wrote it). While the bug is there the test is skipped with a "KNOWN BUG" line, so
 * `make unit` stays green; MEMRUN_UNIT_STRICT=1 turns it into a failure. Once the code is fixed the
 * check holds and the test simply passes, guarding the fix. */
/* Send stderr to /dev/null (warnings expected on purpose); returns what stderr_restore needs. */
static inline int stderr_mute(void)
{
        fflush(stderr);
        int saved = dup(STDERR_FILENO);
        int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        dup2(fd, STDERR_FILENO);
        close(fd);
        return saved;
}

static inline void stderr_restore(int saved)
{
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
}

