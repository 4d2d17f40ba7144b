/* Entering a sandbox from the host side and becoming its level user (sandbox-enter.c), for
 * sandbox-spawn.c. */
#pragma once
#include <sys/types.h>

/* Joins the ipc, uts, net, pid and mount namespaces of the sandbox whose PID 1 is `pid`, and its
 * root (as nsenter --ipc --uts --net --pid --mount --root does). Only children land in the pid
 * namespace. Still root of the host's user namespace afterwards: see join_user_namespace. */
void enter_namespaces(long pid);
/* Joins the sandbox's user namespace (if it has one), last: from then on the caller is root of that
 * namespace only, and can no longer act on the host's side of the other namespaces. */
void join_user_namespace(void);
/* Installs the seccomp filter every player process runs under (see sandbox-enter.c). */
void restrict_syscalls(void);
/* Becomes the level user: supplementary groups from "G1,G2,..." (may be empty), gid, uid. */
void become_user(uid_t uid, gid_t gid, const char *groups);
