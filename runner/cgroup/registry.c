/* registry: one locked file per live sandbox in a runtime directory, so the next memrun can tell a
 * sandbox whose supervisor died (lock free) from a live one, and clean only what memrun created. */
#include "cgroup/registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int registry_dir(char *buf, size_t size)
{
        const char *env = getenv("MEMRUN_RUNTIME_DIR");
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        if (env && *env)
                snprintf(buf, size, "%s", env);
        else if (geteuid() == 0)
                snprintf(buf, size, "/run/memrun");
        else if (xdg && *xdg)
                snprintf(buf, size, "%s/memrun", xdg);
        else
                snprintf(buf, size, "/tmp/memrun-%u", (unsigned)geteuid());
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                return -errno;
        struct stat st;
        if (stat(buf, &st) < 0)
                return -errno;
        /* A directory someone else owns could feed us paths to remove. */
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
                return -EPERM;
        return 0;
}

int registry_add(const char *dir, const struct cg_sandbox *s, struct registry *ret)
{
        char tmp[PATH_MAX], text[3 * PATH_MAX];
        int n = snprintf(text, sizeof text, "mode %d\nmem %s\nuni %s\n", (int)s->mode, s->path, s->uni_path);
        if (n < 0 || (size_t)n >= sizeof text)
                return -ENAMETOOLONG;
        snprintf(tmp, sizeof tmp, "%s/.new.%d", dir, (int)getpid());
        snprintf(ret->path, sizeof ret->path, "%s/sandbox.%d", dir, (int)getpid());

        int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        /* Lock before the record becomes visible under its final name, so a sweep never sees it unlocked. */
        if (flock(fd, LOCK_EX) < 0 || write(fd, text, (size_t)n) != n || rename(tmp, ret->path) < 0) {
                int e = errno ? errno : EIO;
                unlink(tmp);
                close(fd);
                return -e;
        }
        ret->fd = fd;
        return 0;
}

void registry_drop(struct registry *r)
{
        if (r->fd < 0)
                return;
        unlink(r->path);
        close_fd(&r->fd);
}

static int parse_path_line(const char *line, const char *key, char *out, size_t size, bool empty_ok)
{
        size_t kl = strlen(key);
        if (strncmp(line, key, kl) != 0 || line[kl] != ' ')
                return -EINVAL;
        const char *v = line + kl + 1;
        size_t len = strcspn(v, "\n");
        if (v[len] != '\n' || len >= size)
                return -EINVAL;
        if (len == 0 && empty_ok) {
                out[0] = '\0';
                return 0;
        }
        if (len < 2 || v[0] != '/')
                return -EINVAL;
        memcpy(out, v, len);
        out[len] = '\0';
        if (strstr(out, "/..") || strstr(out, "//") || out[len - 1] == '/')
                return -EINVAL;
        return 0;
}

int registry_parse(const char *text, int *ret_mode, char *mem, size_t mem_size, char *uni, size_t uni_size)
{
        if (strncmp(text, "mode ", 5) != 0 || text[5] < '0' || text[5] >= '0' + _CG_MODE_MAX || text[6] != '\n')
                return -EINVAL;
        const char *l2 = text + 7;
        if (parse_path_line(l2, "mem", mem, mem_size, false) < 0)
                return -EINVAL;
        const char *l3 = strchr(l2, '\n') + 1;
        if (parse_path_line(l3, "uni", uni, uni_size, true) < 0)
                return -EINVAL;
        if (strchr(l3, '\n')[1] != '\0')
                return -EINVAL;
        *ret_mode = text[5] - '0';
        return 0;
}

/* A pressure socket's directory (control/psrv.c: "pressure.NAME.XXXXXX" holding the socket
 * "pressure") whose memrun died: its flock is free. Remove the socket and the directory, nothing else
 * (a dropped user may own it; anything it put there keeps the directory). */
#define PRESSURE_DIR_MAKING_SEC 60 /* a ".pressure.*" directory older than this was never finished */
static void sweep_pressure_dir(DIR *d, const char *dir, const char *name)
{
        _cleanup_close_ int fd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
                return; /* a live memrun holds it */
        if (unlinkat(fd, "pressure", 0) < 0 && errno != ENOENT)
                log_debug("cannot remove %s/%s/pressure: %m", dir, name);
        if (unlinkat(dirfd(d), name, AT_REMOVEDIR) < 0)
                log_debug("cannot remove stale pressure socket directory %s/%s: %m", dir, name);
        else
                log_debug("removed stale pressure socket directory %s/%s (its memrun is gone)", dir, name);
}

int registry_sweep(const char *dir, const struct cg_host *h)
{
        DIR *d = opendir(dir);
        int removed = 0;
        if (!d)
                return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                char path[PATH_MAX], text[3 * PATH_MAX + 64], mem[PATH_MAX], uni[PATH_MAX];
                int mode;
                if (strncmp(de->d_name, "pressure.", 9) == 0) {
                        sweep_pressure_dir(d, dir, de->d_name);
                        continue;
                }
                /* one being made (mkdtemp, flock, rename): its memrun died in between if it is old */
                struct stat st;
                if (strncmp(de->d_name, ".pressure.", 10) == 0 &&
                    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
                    time(NULL) - st.st_mtime > PRESSURE_DIR_MAKING_SEC) {
                        sweep_pressure_dir(d, dir, de->d_name);
                        continue;
                }
                if (strncmp(de->d_name, "sandbox.", 8) != 0)
                        continue;
                snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
                        continue; /* a live memrun holds it */
                ssize_t n = read_fd(fd, text, sizeof text);
                if (n < 0 || registry_parse(text, &mode, mem, sizeof mem, uni, sizeof uni) < 0) {
                        log_warn("ignoring malformed sandbox record %s", path);
                        continue;
                }
                if ((enum cg_mode)mode != h->mode) {
                        continue; /* recorded under another layout: not ours to judge now */
                }
                int r = cg_remove_stale(h->mem_root_fd, mem);
                if (r == 0 && mode == CG_HYBRID && uni[0] && h->uni_root_fd >= 0)
                        r = cg_remove_stale(h->uni_root_fd, uni);
                if (r < 0) {
                        log_warn_errno(r, "cannot remove stale sandbox %s: %m", mem);
                        continue;
                }
                log_debug("removed stale sandbox %s (its memrun is gone)", mem);
                unlink(path);
                removed++;
        }
        closedir(d);
        return removed;
}
