/* preload: --preload — inject libmemlimit's preload build into the command via LD_PRELOAD, when the
 * dynamic loader will honour it (not for static or setuid/setgid programs). */
#include "supervise/preload.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define PRELOAD_NAME "libmemlimit-preload.so"

int preload_find(const char *self_exe, const char *libdir, char *ret, size_t size)
{
        const char *env = getenv("MEMRUN_PRELOAD_LIB");
        char dir[PATH_MAX], cand[PATH_MAX];
        if (env && *env) {
                if (access(env, R_OK) < 0)
                        return -errno;
                snprintf(ret, size, "%s", env);
                return 0;
        }
        ssize_t n = readlink(self_exe, dir, sizeof dir - 1);
        if (n > 0) {
                dir[n] = '\0';
                char *slash = strrchr(dir, '/');
                if (slash) {
                        *slash = '\0';
                        /* the build tree (build/memrun beside build/libmemlimit-preload.so) */
                        int k = snprintf(cand, sizeof cand, "%s/%s", dir, PRELOAD_NAME);
                        if (k > 0 && (size_t)k < sizeof cand && access(cand, R_OK) == 0) {
                                snprintf(ret, size, "%s", cand);
                                return 0;
                        }
                        /* an install tree, whatever its prefix: PREFIX/bin/memrun, PREFIX/lib/memrun/ */
                        k = snprintf(cand, sizeof cand, "%s/../lib/memrun/%s", dir, PRELOAD_NAME);
                        if (k > 0 && (size_t)k < sizeof cand && access(cand, R_OK) == 0) {
                                snprintf(ret, size, "%s", cand);
                                return 0;
                        }
                }
        }
        int k = snprintf(cand, sizeof cand, "%s/%s", libdir, PRELOAD_NAME);
        if (k > 0 && (size_t)k < sizeof cand && access(cand, R_OK) == 0) {
                snprintf(ret, size, "%s", cand);
                return 0;
        }
        return -ENOENT;
}

int preload_elf_dynamic(int fd)
{
        Elf64_Ehdr eh;
        if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh)
                return -ENOEXEC;
        if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
                return -ENOEXEC;
        if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 4096)
                return -ENOEXEC; /* 32-bit or odd: let the loader decide */
        for (unsigned i = 0; i < eh.e_phnum; i++) {
                Elf64_Phdr ph;
                if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * sizeof ph)) != (ssize_t)sizeof ph)
                        return -EIO;
                if (ph.p_type == PT_INTERP)
                        return 1;
        }
        return 0;
}

/* The file execvp would run for argv0. */
static int resolve(const char *argv0, char *ret, size_t size)
{
        if (strchr(argv0, '/')) {
                snprintf(ret, size, "%s", argv0);
                return access(ret, X_OK) == 0 ? 0 : -errno;
        }
        const char *path = getenv("PATH");
        if (!path || !*path)
                path = "/usr/local/bin:/usr/bin:/bin";
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, ":");
                int k = snprintf(ret, size, "%.*s%s%s", (int)n, n ? p : ".", "/", argv0);
                if (k > 0 && (size_t)k < size && access(ret, X_OK) == 0)
                        return 0;
                p += n;
                if (*p == ':')
                        p++;
        }
        return -ENOENT;
}

int preload_value(const char *argv0, const char *lib, const char *existing, char *ret, size_t size)
{
        char file[PATH_MAX];
        struct stat st;
        if (resolve(argv0, file, sizeof file) < 0)
                return 0; /* exec will report it */
        _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return 0;
        if (st.st_mode & (S_ISUID | S_ISGID)) {
                log_warn("--preload: %s is setuid/setgid, and the loader ignores LD_PRELOAD for it: running it "
                         "without libmemlimit", file);
                return 0;
        }
        if (preload_elf_dynamic(fd) == 0) {
                log_warn("--preload: %s is statically linked, so nothing can be preloaded into it: running it "
                         "without libmemlimit", file);
                return 0;
        }
        int n = existing && *existing ? snprintf(ret, size, "%s:%s", existing, lib) : snprintf(ret, size, "%s", lib);
        if (n < 0 || (size_t)n >= size) {
                log_warn("--preload: LD_PRELOAD would be too long: running the command without libmemlimit");
                return 0;
        }
        return 1;
}
