/* sdscope: ask systemd (over D-Bus, libsystemd opened on demand) for a transient scope with
 * Delegate=yes holding memrun, when memrun's own cgroup is not delegated. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* The user manager (user_manager) or the system manager starts memrun-PID.scope (its name in
 * unit) holding memrun; returns once memrun is in it. -errno when there is no manager to ask, it
 * refused, or the move did not happen; the reason is logged at debug level. */
int sdscope_enter(bool user_manager, const char *description, const char *proc_root, char *unit, size_t unit_size);
