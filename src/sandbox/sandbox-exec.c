/*
 * sandbox-exec: starts a program inside a sandbox without a terminal, its stdin, stdout and stderr
 * the pipes it was given. nsenter and setpriv in one, plus the seccomp filter of every player
 * process: it joins the sandbox's cgroup (WG_CGROUP_PROCS) and namespaces from the host side, forks
 * the program into the sandbox's pid namespace as the level user, waits for it and passes on its
 * exact status (exit code, or death by the same signal). Signals for the program go to the program
 * (the gateway finds it as this process's only child).
 *
 * The program is the level's shell, started as sshd starts it (sandbox-launch.c): WG_SHELL, WG_MODE
 * (login or exec) and WG_CMD in the environment say which and how.
 *
 * usage: sandbox-exec NSPID UID GID GROUPS
 *   GROUPS: supplementary gids, comma-separated (may be empty).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper-common.h"
#include "sandbox-enter.h"
#include "sandbox-launch.h"

int main(int argc, char **argv) {
    helper_name = "sandbox-exec";
    if (argc != 5) {
        fprintf(stderr, "usage: sandbox-exec NSPID UID GID GROUPS\n");
        return 125;
    }
    long nspid = number(argv[1], 0x7fffffff);
    uid_t uid = (uid_t)number(argv[2], 0x7fffffff);
    gid_t gid = (gid_t)number(argv[3], 0x7fffffff);

    join_cgroups_from_env();
    enter_namespaces(nspid);
    join_user_namespace();
    pid_t child = fork();
    if (child < 0) fail("fork");
    if (child == 0) {
        restrict_syscalls();
        become_user(uid, gid, argv[4]);
        launch_shell();
    }
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR) fail("wait");
    pass_on_status(status);
}
