/* cachefill: fills the kernel's dentry cache (reclaimable slab, charged to this cgroup) by looking up
 * many names that do not exist, then holds still: a sandbox full of memory the kernel can reclaim.
 * usage: cachefill [--count N] [--dir DIR] [--hold SECONDS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
        long count = 300000, hold = 0;
        const char *dir = "/sys"; /* sysfs (kernfs) keeps negative dentries; tmpfs does not */
        for (int i = 1; i < argc; i++) {
                if (i + 1 < argc && strcmp(argv[i], "--count") == 0)
                        count = strtol(argv[++i], NULL, 10);
                else if (i + 1 < argc && strcmp(argv[i], "--dir") == 0)
                        dir = argv[++i];
                else if (i + 1 < argc && strcmp(argv[i], "--hold") == 0)
                        hold = strtol(argv[++i], NULL, 10);
                else {
                        fprintf(stderr, "usage: cachefill [--count N] [--dir DIR] [--hold SECONDS]\n");
                        return 2;
                }
        }
        char path[4096];
        struct stat st;
        for (long i = 0; i < count; i++) {
                snprintf(path, sizeof path, "%s/cachefill-%d-%ld-padding-to-leave-the-inline-name", dir, (int)getpid(), i);
                (void)stat(path, &st);
        }
        printf("cachefill: looked up %ld names\n", count);
        fflush(stdout);
        if (hold > 0)
                sleep((unsigned)hold);
        return 0;
}
