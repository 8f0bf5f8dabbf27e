/* preload: --preload — inject libmemlimit's preload build into the command via LD_PRELOAD, when the
 * dynamic loader will honour it (not for static or setuid/setgid programs). */
#pragma once
#include <stddef.h>

/* Find the preload library: $MEMRUN_PRELOAD_LIB, beside the memrun binary, or in libdir. */
int preload_find(const char *self_exe, const char *libdir, char *ret, size_t size);
/* The LD_PRELOAD value for command argv0 (searched in PATH like execvp): the existing LD_PRELOAD
 * kept, ours added. Returns 1 and fills ret; 0 (after a warning) when it would not take effect. */
int preload_value(const char *argv0, const char *lib, const char *existing, char *ret, size_t size);
/* Pure: 1 dynamic ELF (has PT_INTERP), 0 static ELF, -ENOEXEC not ELF (scripts: the interpreter
 * decides), -errno on read errors. */
int preload_elf_dynamic(int fd);
