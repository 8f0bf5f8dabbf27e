/* jattach: HotSpot's dynamic attach mechanism on Linux, as the JDK's own VirtualMachine and jattach
 * speak it, reached through /proc/PID/root and /proc/PID/cwd so that a JVM in another mount or pid
 * namespace is found too. The JVM listens on TMPDIR/.java_pidNSPID (a unix stream socket) once its
 * Attach Listener runs; it starts that thread when it gets SIGQUIT and sees an .attach_pidNSPID file
 * owned by its own effective uid in its working directory or /tmp. A request is "1\0" (the protocol
 * version), the operation ("jcmd\0"), then three arguments, each NUL-terminated (jcmd's one is the
 * diagnostic command line); the answer is the result code on the first line, then the output, then
 * EOF. Blocking: meant for a child process of memrun that runs as the JVM's own uid and is bounded
 * by alarm(2) (supervise/jvm.c). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define JATTACH_START_WAIT_MS 10000  /* for the Attach Listener to come up after SIGQUIT (a throttled
                                      * JVM is slow to start a thread) */

/* Is the JVM's attach socket there, a socket owned by uid (the JVM's effective uid), the listener
 * already running? Paths are resolved inside the JVM's root (openat2 RESOLVE_IN_ROOT). */
bool jattach_listening(pid_t pid, pid_t nspid, uid_t uid);
/* Start the listener: the trigger file, SIGQUIT through pidfd (pid_signal: the JVM opened and
 * checked by the caller, never a reused pid), wait for the socket, remove the trigger. 0, or
 * -ETIMEDOUT (no listener came: -XX:+DisableAttachMechanism, or a JVM too busy), or -errno. The
 * caller has checked that the JVM catches SIGQUIT (without a handler, -Xrs, SIGQUIT would end it). */
int jattach_start(pid_t pid, pid_t nspid, int pidfd, int wait_ms);
/* Run one jcmd command line ("GC.run", "VM.set_flag SoftMaxHeapSize 1234") on the socket owned by
 * this process's euid, whose listener (SO_PEERCRED) must be pid itself: 0 with the JVM's
 * result code in *ret_code (0: done; nonzero: the command failed or is unknown to this JVM, its
 * text in out), or -errno (-ENOENT, -ECONNREFUSED, -EPIPE, -EBADMSG: no result code; -EPERM: not
 * the JVM's socket or listener). out gets the output,
 * NUL-terminated, cut at size. */
int jattach_jcmd(pid_t pid, pid_t nspid, const char *command, int *ret_code, char *out, size_t size);
/* Pure: the request bytes for a jcmd command line into buf; their count, or -ENAMETOOLONG. */
int jattach_request(const char *command, char *buf, size_t size);
/* Pure: the result code at the head of an answer; -EBADMSG when it does not start with one. */
int jattach_result(const char *answer, int *ret_code);
