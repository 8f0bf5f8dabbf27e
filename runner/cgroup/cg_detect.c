/* cg_detect: which cgroup layout the host has, where memrun sits in it, and where a sandbox may go. */
#include <errno.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup/cg.h"
#include "log.h"
#include "util.h"

const char *cg_mode_name(enum cg_mode m)
{
        static const char *const names[_CG_MODE_MAX] = { "v2", "hybrid", "v1" };
        return m < _CG_MODE_MAX ? names[m] : "?";
}

static bool file_exists_at(int dfd, const char *path)
{
        return faccessat(dfd, path, F_OK, 0) == 0;
}

int cg_detect(int root_fd, enum cg_mode *ret)
{
        if (file_exists_at(root_fd, "cgroup.controllers"))
                *ret = CG_V2;
        else if (file_exists_at(root_fd, "memory/memory.limit_in_bytes"))
                *ret = file_exists_at(root_fd, "unified/cgroup.procs") ? CG_HYBRID : CG_V1;
        else
                return -ENOENT;
        return 0;
}

static int copy_path(char *dst, size_t size, const char *src, size_t len)
{
        if (len == 0 || src[0] != '/' || len >= size)
                return -EINVAL;
        memcpy(dst, src, len);
        dst[len] = '\0';
        /* The kernel appends this to paths of cgroups removed under us; such a cgroup is no home. */
        if (strstr(dst, " (deleted)"))
                return -ESTALE;
        return 0;
}

/* Lines are "ID:CONTROLLERS:PATH"; the unified entry is "0::PATH". */
int cg_parse_self(const char *text, enum cg_mode mode, char *ret_mem, size_t mem_size, char *ret_uni,
                  size_t uni_size)
{
        bool have_mem = false, have_uni = false;
        int r;

        for (const char *line = text; line && *line;) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t)(eol - line) : strlen(line);
                const char *c1 = memchr(line, ':', len);
                const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
                if (!c2)
                        return -EINVAL;
                const char *ctl = c1 + 1;
                size_t ctl_len = (size_t)(c2 - ctl);
                const char *path = c2 + 1;
                size_t path_len = len - (size_t)(path - line);

                if (ctl_len == 0 && c1 - line == 1 && line[0] == '0') {
                        r = copy_path(ret_uni, uni_size, path, path_len);
                        if (r < 0)
                                return r;
                        have_uni = true;
                } else {
                        /* "memory" alone or inside a comma list like "cpu,memory" */
                        char list[256];
                        if (ctl_len < sizeof list) {
                                memcpy(list, ctl, ctl_len);
                                list[ctl_len] = '\0';
                                char *save = NULL;
                                for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
                                        if (strcmp(t, "memory") == 0) {
                                                r = copy_path(ret_mem, mem_size, path, path_len);
                                                if (r < 0)
                                                        return r;
                                                have_mem = true;
                                        }
                        }
                }
                line = eol ? eol + 1 : NULL;
        }
        switch (mode) {
        case CG_V2:
                if (!have_uni)
                        return -ENOENT;
                if (strlen(ret_uni) >= mem_size)
                        return -EINVAL;
                strcpy(ret_mem, ret_uni);
                return 0;
        case CG_HYBRID:
                if (!have_mem)
                        return -ENOENT;
                if (!have_uni)
                        ret_uni[0] = '\0';
                return 0;
        case CG_V1:
                if (!have_mem)
                        return -ENOENT;
                ret_uni[0] = '\0';
                return 0;
        default:
                return -EINVAL;
        }
}

int cg_cgroup_inside(const char *text, enum cg_mode mode, const char *sandbox)
{
        char mem[PATH_MAX], uni[PATH_MAX];
        size_t slen, plen;
        int r;

        if (!text || !sandbox || sandbox[0] != '/' || mode >= _CG_MODE_MAX)
                return -EINVAL;
        r = cg_parse_self(text, mode, mem, sizeof mem, uni, sizeof uni);
        if (r < 0)
                return r;
        slen = strlen(sandbox);
        while (slen > 1 && sandbox[slen - 1] == '/')
                slen--;
        if (slen == 1)
                return 1; /* the root holds everything */
        plen = strlen(mem);
        if (plen < slen || memcmp(mem, sandbox, slen) != 0)
                return 0;
        return plen == slen || mem[slen] == '/';
}

/* One space-separated field of a mountinfo line, its octal escapes (\040 ...) decoded. */
static const char *mi_field(const char *p, const char *end, char *out, size_t size, bool decode)
{
        size_t o = 0;
        while (p < end && *p == ' ')
                p++;
        if (p >= end)
                return NULL;
        for (; p < end && *p != ' '; p++) {
                char c = *p;
                if (decode && c == '\\' && end - p >= 4 && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
                    p[3] >= '0' && p[3] <= '7') {
                        c = (char)((p[1] - '0') << 6 | (p[2] - '0') << 3 | (p[3] - '0'));
                        p += 3;
                }
                if (o + 1 >= size)
                        return NULL;
                out[o++] = c;
        }
        out[o] = '\0';
        return p;
}

int cg_mounts_parse(const char *text, struct cg_mount *ret, unsigned max, unsigned *ret_n)
{
        static const struct {
                const char *name;
                unsigned long flag;
        } opts[] = {
                { "nosuid", MS_NOSUID },     { "nodev", MS_NODEV },         { "noexec", MS_NOEXEC },
                { "noatime", MS_NOATIME },   { "nodiratime", MS_NODIRATIME }, { "relatime", MS_RELATIME },
                { "strictatime", MS_STRICTATIME },
        };
        unsigned n = 0;
        char f[PATH_MAX];

        for (const char *line = text; line && *line;) {
                const char *eol = strchr(line, '\n');
                const char *end = eol ? eol : line + strlen(line);
                const char *p = line, *sep = NULL;
                struct cg_mount m = { .flags = 0 };

                /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER */
                for (int i = 0; i < 4 && p; i++)
                        p = mi_field(p, end, f, sizeof f, false);
                if (p)
                        p = mi_field(p, end, m.path, sizeof m.path, true);
                if (p)
                        p = mi_field(p, end, f, sizeof f, false);
                if (!p || m.path[0] != '/')
                        return -EINVAL;
                for (char *o = f, *save = NULL, *t; (t = strtok_r(o, ",", &save)); o = NULL) {
                        if (strcmp(t, "ro") == 0)
                                m.read_only = true;
                        for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
                                if (strcmp(t, opts[i].name) == 0)
                                        m.flags |= opts[i].flag;
                }
                for (const char *q = p; q && q + 3 <= end; q++)
                        if (q[0] == ' ' && q[1] == '-' && (q + 2 == end || q[2] == ' ')) {
                                sep = q + 2;
                                break;
                        }
                if (!sep || !mi_field(sep, end, f, sizeof f, false))
                        return -EINVAL;
                if (strcmp(f, "cgroup") == 0 || strcmp(f, "cgroup2") == 0) {
                        if (n < max)
                                ret[n] = m;
                        n++;
                }
                line = eol ? eol + 1 : NULL;
        }
        *ret_n = n;
        return n > max ? -E2BIG : 0;
}

int cg_open_dir(int root_fd, const char *path)
{
        const char *rel = path[0] == '/' ? path + 1 : path;
        int fd = openat(root_fd, *rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

void cg_host_close(struct cg_host *h)
{
        close_fd(&h->mem_root_fd);
        close_fd(&h->uni_root_fd);
}

int cg_host_open(const char *root, const char *proc_root, struct cg_host *ret)
{
        struct cg_host h = { .mem_root_fd = -1, .uni_root_fd = -1 };
        char buf[8192], path[PATH_MAX];
        int r;

        snprintf(h.root, sizeof h.root, "%s", root);
        _cleanup_close_ int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0) {
                log_error("no cgroup filesystem at %s (%m): mount one there (mount -t cgroup2 none %s) "
                          "or run memrun where /sys/fs/cgroup is available", root, root);
                return -ENOENT;
        }
        r = cg_detect(root_fd, &h.mode);
        if (r < 0) {
                log_error("%s is not a cgroup filesystem with a memory controller (neither cgroup v2 nor a v1 "
                          "'memory' hierarchy found): mount cgroup2 on %s", root, root);
                return r;
        }
        if (h.mode == CG_V2) {
                h.mem_root_fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
                h.uni_root_fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
        } else {
                h.mem_root_fd = openat(root_fd, "memory", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (h.mode == CG_HYBRID)
                        h.uni_root_fd = openat(root_fd, "unified", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (h.mem_root_fd < 0 || (h.mode != CG_V1 && h.uni_root_fd < 0)) {
                r = -errno;
                log_error_errno(r, "cannot open the cgroup hierarchies under %s: %m", root);
                cg_host_close(&h);
                return r;
        }

        snprintf(path, sizeof path, "%s/self/cgroup", proc_root);
        _cleanup_close_ int pfd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = pfd < 0 ? -errno : read_fd(pfd, buf, sizeof buf);
        if (n < 0) {
                log_error_errno((int)n, "cannot read %s: %m", path);
                cg_host_close(&h);
                return (int)n;
        }
        r = cg_parse_self(buf, h.mode, h.own_mem, sizeof h.own_mem, h.own_uni, sizeof h.own_uni);
        if (r < 0) {
                log_error_errno(r, "%s does not name memrun's %s cgroup (%m): is %s the host's cgroup filesystem?", path,
                          h.mode == CG_V2 ? "unified" : "memory", root);
                cg_host_close(&h);
                return r;
        }
        if (h.mode == CG_HYBRID && h.own_uni[0] == '\0')
                h.mode = CG_V1;

        if (h.mode == CG_V2) {
                n = read_at(h.mem_root_fd, "cgroup.controllers", buf, sizeof buf);
                if (n < 0 || !strstr(buf, "memory")) {
                        log_error("the cgroup v2 hierarchy at %s has no memory controller (cgroup.controllers: "
                                  "'%.*s'): it is bound to a v1 hierarchy or disabled (cgroup_disable=memory)",
                                  root, (int)strcspn(n < 0 ? "" : buf, "\n"), n < 0 ? "" : buf);
                        cg_host_close(&h);
                        return -EOPNOTSUPP;
                }
        }
        *ret = h;
        return 0;
}

static bool word_in(const char *list, const char *word)
{
        size_t wl = strlen(word);
        for (const char *p = list; (p = strstr(p, word)); p += wl)
                if ((p == list || p[-1] == ' ') && (p[wl] == '\0' || p[wl] == ' ' || p[wl] == '\n'))
                        return true;
        return false;
}

int cg_place_facts_read(const struct cg_host *h, const char *explicit_parent, struct cg_place_facts *ret)
{
        struct cg_place_facts f = {
                .mode = h->mode,
                .explicit_parent = explicit_parent,
                .own = h->own_mem,
                .root_user = geteuid() == 0,
                .systemd = access("/run/systemd/system", F_OK) == 0,
        };
        char buf[4096];

        if (h->mode == CG_V2) {
                _cleanup_close_ int fd = cg_open_dir(h->mem_root_fd, h->own_mem);
                if (fd >= 0) {
                        ssize_t n = read_at(fd, "cgroup.controllers", buf, sizeof buf);
                        f.own_memory_ok = n >= 0 && word_in(buf, "memory") &&
                                          faccessat(fd, "cgroup.subtree_control", W_OK, 0) == 0 &&
                                          faccessat(fd, "cgroup.procs", W_OK, 0) == 0;
                        n = read_at(fd, "cgroup.procs", buf, sizeof buf);
                        if (n >= 0) {
                                char self[32];
                                snprintf(self, sizeof self, "%d\n", (int)getpid());
                                f.own_alone = strcmp(buf, self) == 0;
                        }
                }
        }
        *ret = f;
        return 0;
}

bool cg_place_wants_scope(const struct cg_place_facts *f)
{
        return f->mode == CG_V2 && !f->explicit_parent && f->systemd && strcmp(f->own, "/") != 0 &&
               !(f->own_memory_ok && f->own_alone);
}

int cg_place(const struct cg_place_facts *f, struct cg_placement *ret)
{
        struct cg_placement p = {};

        if (f->explicit_parent) {
                snprintf(p.parent, sizeof p.parent, "%s", f->explicit_parent);
        } else if (f->mode != CG_V2) {
                /* v1 has no "no internal processes" rule: nest beneath our own memory cgroup. */
                snprintf(p.parent, sizeof p.parent, "%s", f->own);
        } else if (strcmp(f->own, "/") == 0) {
                snprintf(p.parent, sizeof p.parent, "/");
        } else if (f->own_memory_ok && f->own_alone) {
                snprintf(p.parent, sizeof p.parent, "%s", f->own);
                p.split_supervisor = true;
        } else if (f->root_user && !f->systemd) {
                snprintf(p.parent, sizeof p.parent, "/memrun");
                p.memrun_subtree = true;
        } else {
                log_error("no cgroup memrun may use: its own cgroup %s %s, and %s. Run it in a delegated cgroup, "
                          "e.g. 'systemd-run --user --scope -p Delegate=yes memrun ...' (or Delegate=yes in the "
                          "service unit), or pass --cgroup PATH naming a cgroup you may write to",
                          f->own, !f->own_memory_ok ? "is not delegated to it (cannot enable +memory there)"
                                                    : "holds other processes",
                          f->root_user ? "systemd manages the hierarchy" : "memrun is not root");
                return -EPERM;
        }
        *ret = p;
        return 0;
}
