/* What sandbox-init.c and sandbox-build.c share to make a sandbox's root filesystem, network and
 * user namespace (sandbox-root.c). */
#pragma once
#include <sys/types.h>

/* A parameter from the environment: its value, or a clear error and exit 125 if unset or empty. */
const char *param(const char *name);
/* mount(2), or a clear error naming the target and exit 125. */
void do_mount(const char *source, const char *target, const char *type, unsigned long flags, const char *data);
/* Binds `source` on `target` read-only, nosuid, nodev (a second, remounting step: binds ignore flags). */
void bind_read_only(const char *source, const char *target);
/* Brings up lo in the caller's network namespace. */
void bring_up_loopback(void);
/* Writes the id maps of the user namespace of process `pid`: 0 is `root_id` on the host, every
 * other id from 1 to 65535 itself (src/sandbox/ids.ts). The host's root stays unmapped. */
void write_id_maps(pid_t pid, unsigned long root_id);
/* Makes the current directory (a mount point) the root, the old root detached, and goes there. */
void pivot_to_cwd(void);
