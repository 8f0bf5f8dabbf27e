/* sdscope: a delegated cgroup from the service manager, when memrun's own is not delegated
 * (memrun(1) "Where the sandbox goes"). memrun asks systemd over D-Bus for a transient scope with
 * Delegate=yes holding memrun itself, as `systemd-run --scope -p Delegate=yes` would, and waits
 * until it is in it: the user manager for an unprivileged user, the system manager for root.
 * libsystemd is opened only here, with dlopen: a run that needs no scope never loads it. */
#include "systemd/sdscope.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "kernel/proc.h"
#include "util.h"

struct sdbus_api {
        int (*open_user)(sd_bus **);
        int (*open_system)(sd_bus **);
        int (*call_method)(sd_bus *, const char *, const char *, const char *, const char *, sd_bus_error *,
                           sd_bus_message **, const char *, ...);
        sd_bus *(*flush_close_unref)(sd_bus *);
        sd_bus_message *(*message_unref)(sd_bus_message *);
        void (*error_free)(sd_bus_error *);
};

static int load(struct sdbus_api *a, void **ret_handle)
{
        void *h = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
        if (!h)
                return -ENOENT;
        *(void **)&a->open_user = dlsym(h, "sd_bus_open_user");
        *(void **)&a->open_system = dlsym(h, "sd_bus_open_system");
        *(void **)&a->call_method = dlsym(h, "sd_bus_call_method");
        *(void **)&a->flush_close_unref = dlsym(h, "sd_bus_flush_close_unref");
        *(void **)&a->message_unref = dlsym(h, "sd_bus_message_unref");
        *(void **)&a->error_free = dlsym(h, "sd_bus_error_free");
        if (!a->open_user || !a->open_system || !a->call_method || !a->flush_close_unref || !a->message_unref ||
            !a->error_free) {
                dlclose(h);
                return -ENOSYS;
        }
        *ret_handle = h;
        return 0;
}

/* Is this process in the scope now? 1 yes, 0 not yet, -errno. */
static int in_scope(int proc_fd, const char *unit)
{
        char buf[4096], want[300];
        ssize_t n = proc_self_read(proc_fd, "cgroup", buf, sizeof buf);
        if (n < 0)
                return (int)n;
        snprintf(want, sizeof want, "/%s\n", unit);
        char *p = strstr(buf, want);
        return p != NULL;
}

int sdscope_enter(bool user_manager, const char *description, const char *proc_root, char *unit, size_t unit_size)
{
        struct sdbus_api a;
        void *h = NULL;
        sd_bus *bus = NULL;
        sd_bus_error err = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r;

        snprintf(unit, unit_size, "memrun-%d.scope", (int)getpid());
        r = load(&a, &h);
        if (r < 0)
                return log_debug_errno(r, "no libsystemd.so.0 to ask systemd with (%m)");
        r = user_manager ? a.open_user(&bus) : a.open_system(&bus);
        if (r < 0) {
                log_debug_errno(r, "cannot reach the %s manager's bus: %m", user_manager ? "user" : "system");
                goto out;
        }
        log_debug("asking the %s manager for %s (Delegate=yes) to hold memrun", user_manager ? "user" : "system", unit);
        r = a.call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                          "org.freedesktop.systemd1.Manager", "StartTransientUnit", &err, &reply, "ssa(sv)a(sa(sv))",
                          unit, "fail", 4, "PIDs", "au", 1, (uint32_t)getpid(), "Delegate", "b", 1, "Description", "s",
                          description, "CollectMode", "s", "inactive-or-failed", 0);
        if (r < 0) {
                if (err.message)
                        log_debug_errno(r, "StartTransientUnit(%s): %s", unit, err.message);
                else
                        log_debug_errno(r, "StartTransientUnit(%s): %m", unit);
                goto out;
        }
        /* The job moves us; wait (bounded) until /proc/self/cgroup says so. */
        int proc_fd = proc_open_root(proc_root);
        r = proc_fd < 0 ? proc_fd : -ETIMEDOUT;
        for (int i = 0; proc_fd >= 0 && i < 500; i++) {
                int k = in_scope(proc_fd, unit);
                if (k != 0) {
                        r = k < 0 ? k : 0;
                        break;
                }
                struct timespec ts = usec_to_timespec(10 * USEC_PER_MSEC);
                nanosleep(&ts, NULL);
        }
        if (proc_fd >= 0)
                close(proc_fd);
        if (r < 0)
                log_debug_errno(r, "systemd started %s but memrun is not in it: %m", unit);
out:
        a.error_free(&err);
        if (reply)
                a.message_unref(reply);
        if (bus)
                a.flush_close_unref(bus);
        dlclose(h);
        return r;
}
