/* registry: one locked file per live sandbox in a runtime directory, so the next memrun can tell a
 * sandbox whose supervisor died (lock free) from a live one, and clean only what memrun created. */
#pragma once
#include <limits.h>
#include <stddef.h>

#include "cgroup/cg.h"

struct registry {
        int fd;                  /* holds the flock for memrun's lifetime */
        char path[PATH_MAX];
};

/* MEMRUN_RUNTIME_DIR, else /run/memrun as root, else $XDG_RUNTIME_DIR/memrun, else /tmp/memrun-UID. */
int registry_dir(char *buf, size_t size);
/* Record the sandbox's cgroup paths before creating them; the record is locked until registry_drop. */
int registry_add(const char *dir, const struct cg_sandbox *s, struct registry *ret);
void registry_drop(struct registry *r);
/* Pure: parse a record; -EINVAL on anything but "mode N\nmem PATH\nuni PATH\n". */
int registry_parse(const char *text, int *ret_mode, char *mem, size_t mem_size, char *uni, size_t uni_size);
/* Remove the sandboxes of dead supervisors found in dir, and their pressure socket directories
 * ("pressure.*", control/psrv.h). Returns how many sandboxes were removed. */
int registry_sweep(const char *dir, const struct cg_host *h);
