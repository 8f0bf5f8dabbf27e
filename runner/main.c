/* main: memrun's command line to a plan (options, policy, name, roots), and the plan to the
 * supervisor, whose exit status is memrun's. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config/policy.h"
#include "log.h"
#include "options.h"
#include "supervise/supervisor.h"

#ifndef MEMRUN_VERSION
#define MEMRUN_VERSION "0.0.0"
#endif

static uint64_t physical_ram(void)
{
        long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
        return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
}

static const char *env_or(const char *name, const char *def)
{
        const char *v = getenv(name);
        return v && *v ? v : def;
}

/* Static storage, like the rest of the big state: nothing of it is allocated. */
static struct plan plan;

int main(int argc, char **argv)
{
        struct options *o = &plan.o;

        (void)log_detect_journal();
        if (options_parse(argc, argv, physical_ram(), o) < 0)
                return EXIT_MEMRUN;
        if (o->help) {
                options_usage();
                return 0;
        }
        if (o->version) {
                printf("memrun %s\n", MEMRUN_VERSION);
                return 0;
        }
        log_set_verbosity(o->verbosity);

        const char *policy_file = o->check_policy ? o->check_policy : o->policy;
        char err[1024];
        if (policy_file) {
                if (policy_parse_file(policy_file, &plan.policy, err, sizeof err) < 0) {
                        log_error("%s", err);
                        return EXIT_MEMRUN;
                }
        } else {
                policy_default(&plan.policy);
        }
        if (options_apply_policy(o, &plan.policy) < 0)
                return EXIT_MEMRUN;
        if (policy_validate(&plan.policy, err, sizeof err) < 0) {
                log_error("%s%s%s", policy_file ? policy_file : "", policy_file ? ": " : "", err);
                return EXIT_MEMRUN;
        }
        if (o->check_policy) {
                policy_print(stdout, &plan.policy);
                return 0;
        }
        if (o->name)
                snprintf(plan.name, sizeof plan.name, "%s", o->name);
        else
                snprintf(plan.name, sizeof plan.name, "memrun-%d", (int)getpid());
        plan.cgroup_root = env_or("MEMRUN_CGROUP_ROOT", "/sys/fs/cgroup");
        plan.proc_root = env_or("MEMRUN_PROC_ROOT", "/proc");
        plan.dev_root = env_or("MEMRUN_DEV_ROOT", "/dev");
        return supervisor_run(&plan);
}
