/*
 * sandbox-spawn: starts a program inside a sandbox as a level user.
 *
 * It is the gateway's child, as root, in the host's pid namespace. Like nsenter and setpriv in one
 * (which it replaces) it joins the sandbox's cgroup (WG_CGROUP_PROCS) and its ipc, uts, net, pid and
 * mount namespaces and root, forks the program into the sandbox's pid namespace, and there the
 * program joins the sandbox's user namespace, takes the seccomp filter of every player process
 * (sandbox-enter.c) and the level's ids.
 *
 * On a terminal (--pty), sandbox-spawn then exits: the program is reparented to the sandbox's PID 1
 * (through a first child in the sandbox's pid namespace that exits at once), which reaps it and
 * tells the gateway its exact status (sandbox-init.c), and the gateway itself holds the pty's
 * master: no process of ours stays beside an idle player's shell. Without a terminal, the program's
 * pipes are sandbox-spawn's own stdio, which the gateway sees end with sandbox-spawn: it stays,
 * waits, and passes on the program's exact status (exit code, or death by the same signal).
 *
 * The program is the level's shell, started as sshd starts it (sandbox-launch.c): WG_SHELL, WG_MODE
 * (login or exec) and WG_CMD in the environment say which and how.
 *
 * usage: sandbox-spawn NSPID UID GID GROUPS [--pty COLS ROWS]
 *   GROUPS: supplementary gids, comma-separated (may be empty).
 *   fd 0, 1, 2: the program's stdin, stdout and stderr (without --pty; with it, ignored)
 * With --pty:
 *   fd 3: the report pipe: the program writes its pid in the sandbox's pid namespace there first,
 *         "PID\n"; sandbox-spawn's own errors go there too
 *   fd 4: the master of a pty of the sandbox's own devpts instance, opened by the gateway; the
 *         program gets its slave as controlling terminal, in a session of its own, with job control.
 * usage: sandbox-spawn --resize COLS ROWS   (fd 3: a pty master: sets its terminal's size, for the
 *   gateway, which cannot ioctl; the program on it gets SIGWINCH)
 * Errors before the fork: one line on stderr (fd 3 with --pty), exit status 125.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper-common.h"
#include "sandbox-enter.h"
#include "sandbox-launch.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

#define REPORT_FD 3
#define MASTER_FD 4
#define TTY_GID 5

/* The slave of the master at fd 4, sized, unlocked and handed to the player as sshd does. */
static int open_slave(uid_t uid, unsigned cols, unsigned rows) {
    struct stat st;
    int ptn;
    /* The gateway opened it in the sandbox's devpts; make sure it is a pty master at all. */
    if (fstat(MASTER_FD, &st) != 0 || !S_ISCHR(st.st_mode) || ioctl(MASTER_FD, TIOCGPTN, &ptn) != 0) {
        errno = ENOTTY;
        fail("fd 4 is not a pty master");
    }
    int unlock = 0;
    if (ioctl(MASTER_FD, TIOCSPTLCK, &unlock) != 0) fail("unlock pty");
    /* The slave straight from the master: no path lookup inside the player's filesystem. */
    int slave = ioctl(MASTER_FD, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) fail("open pty slave");
    /* As sshd does: the terminal belongs to the player (screen and tmux insist on it). */
    if (fchown(slave, uid, TTY_GID) != 0 || fchmod(slave, 0620) != 0) fail("chown pty");
    struct winsize ws = {.ws_col = (unsigned short)cols, .ws_row = (unsigned short)rows};
    if (ioctl(MASTER_FD, TIOCSWINSZ, &ws) != 0) fail("size pty");
    return slave;
}

/* In the sandbox's pid namespace: the rest of the way to the level's shell. Never returns. */
static void become_program(uid_t uid, gid_t gid, const char *groups, int slave) {
    if (slave >= 0) {
        close(MASTER_FD);
        for (int fd = 0; fd < 3; fd++)
            if (dup2(slave, fd) < 0) fail("dup2");
        if (slave > 2) close(slave);
        /* Job control, and a hangup that reaches the player's processes. */
        take_terminal();
    }
    restrict_syscalls();
    become_user(uid, gid, groups);
    launch_shell();
}

/* Ends the caller as the program ended: its exit code, or death by the same signal (no core file). */
static void pass_on_status(int status) {
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        signal(sig, SIG_DFL);
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_UNBLOCK, &all, NULL);
        raise(sig);
        _exit(128 + sig);
    }
    _exit(WEXITSTATUS(status));
}

static int wait_for(pid_t child) {
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR) fail("wait");
    return status;
}

int main(int argc, char **argv) {
    helper_name = "sandbox-spawn";
    if (argc == 4 && strcmp(argv[1], "--resize") == 0) {
        struct winsize ws = {.ws_col = (unsigned short)number(argv[2], 1000), .ws_row = (unsigned short)number(argv[3], 1000)};
        return ioctl(REPORT_FD, TIOCSWINSZ, &ws) == 0 ? 0 : 125;
    }
    int pty = argc == 8 && strcmp(argv[5], "--pty") == 0;
    if (argc != 5 && !pty) {
        fputs("usage: sandbox-spawn NSPID UID GID GROUPS [--pty COLS ROWS]\n", stderr);
        return 125;
    }
    if (pty) {
        helper_error_fd = REPORT_FD;
        if (fcntl(REPORT_FD, F_SETFD, FD_CLOEXEC) != 0 || fcntl(MASTER_FD, F_SETFD, FD_CLOEXEC) != 0) fail("fd 3 and 4");
    }
    long nspid = number(argv[1], 0x7fffffff);
    uid_t uid = (uid_t)number(argv[2], 0x7fffffff);
    gid_t gid = (gid_t)number(argv[3], 0x7fffffff);
    const char *groups = argv[4];

    join_cgroups_from_env();
    enter_namespaces(nspid);
    int slave = pty ? open_slave(uid, (unsigned)number(argv[6], 1000), (unsigned)number(argv[7], 1000)) : -1;
    /* Last, once the terminal is the player's: from here on, root of the sandbox's user namespace only. */
    join_user_namespace();

    pid_t child = fork();
    if (child < 0) fail("fork");
    if (!pty) {
        /* Without a terminal: its pipes are this process's stdio, which the gateway sees end with
         * this process, so it stays, waits and ends as the program did. */
        if (child == 0) become_program(uid, gid, groups, -1);
        pass_on_status(wait_for(child));
    }
    /* With one, twice: an orphan goes to the reaper of its dying parent's pid namespace. The first
     * child is in the sandbox's, so when it exits at once the program is the sandbox's PID 1's to
     * reap, never the host's init's. */
    if (child > 0) {
        int status = wait_for(child);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
    }
    pid_t grandchild = fork();
    if (grandchild < 0) fail("fork");
    if (grandchild > 0) _exit(0); /* sandbox-init's PID 1 takes it from here */
    /* The program's pid in the sandbox's pid namespace, for the gateway to watch. */
    char pid[24];
    int len = snprintf(pid, sizeof pid, "%d\n", getpid());
    if (write_all(REPORT_FD, pid, (unsigned long)len) != 0) _exit(125);
    close(REPORT_FD);
    helper_error_fd = STDERR_FILENO;
    become_program(uid, gid, groups, slave);
}
