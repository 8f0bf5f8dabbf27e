/* fuzz_sandbox: libFuzzer target for the [sandbox] value parsers (syscall_filter, syscall_action,
 * architectures, keep_caps, --user) and the [sandbox] section through the whole policy parser.
 * Every parse either succeeds with a consistent result or fails with a reason quoting the input. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "config/policy.h"
#include "config/sandbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct sandbox_filter f;
        static struct sandbox_spec spec;
        static struct policy p;
        char why[768], u[SANDBOX_NAME_MAX], g[SANDBOX_NAME_MAX];
        char *s = fuzz_text(data, size);
        if (!s)
                return 0;

        int r = sandbox_filter_parse(s, &f, why, sizeof why);
        if (r == 0 && (f.n > SANDBOX_MAX_SYSCALLS || f.n_terms > SANDBOX_MAX_TERMS || f.n == 0))
                abort();
        if (r != 0 && (r != -EINVAL || !why[0]))
                abort();
        enum sandbox_action a;
        int e = 0;
        r = sandbox_action_parse(s, &a, &e, why, sizeof why);
        if (r == 0 && a == SANDBOX_ERRNO && (e < 1 || e > 4095))
                abort();
        if (r != 0 && (r != -EINVAL || !why[0]))
                abort();
        memset(&spec, 0, sizeof spec);
        r = sandbox_archs_parse(s, &spec, why, sizeof why);
        if (r == 0 && (spec.n_archs == 0 || spec.n_archs > SANDBOX_MAX_ARCHS))
                abort();
        uint64_t caps;
        r = sandbox_caps_parse(s, &caps, why, sizeof why);
        if (r == 0 && sandbox_cap_last() < 63 && (caps >> (sandbox_cap_last() + 1)))
                abort();
        if (sandbox_user_parse(s, u, sizeof u, g, sizeof g) == 0 && (!u[0] || strlen(u) >= sizeof u))
                abort();

        /* The same text as the value of each [sandbox] key. */
        static const char *const keys[] = { "syscall_filter", "syscall_action", "architectures", "keep_caps",
                                            "user", "group", "enabled" };
        size_t n = strcspn(s, "\n\r");
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
                char text[1024];
                snprintf(text, sizeof text, "[sandbox]\n%s = %.*s\n", keys[i], (int)(n < 900 ? n : 900), s);
                char err[512];
                r = policy_parse_string(text, "fuzz.ini", &p, err, sizeof err);
                if (r != 0 && (r != -EINVAL || strncmp(err, "fuzz.ini:", 9) != 0))
                        abort();
        }
        free(s);
        return 0;
}
