/* supervise: the one event loop while the command runs: signals (forward, reap) and memory events. */
#pragma once
#include <sys/types.h>

#include "cg.h"

/* Run until the main child has been reaped; its wait status goes to *ret_status. 0 or -errno. */
int supervise(struct cg_sandbox *sb, int sigfd, pid_t child, int *ret_status);
/* Reap every exited child without blocking; records the main child's status if it is among them. */
void supervise_reap(pid_t child, int *status, int *reaped);
