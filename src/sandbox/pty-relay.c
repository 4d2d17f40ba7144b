/*
 * pty-relay: starts a program in a sandbox on a terminal of the sandbox's own devpts instance, and
 * relays that terminal to the gateway over plain pipes.
 *
 * It is the gateway's child, as root, and stays in the host's pid namespace: the player cannot see,
 * signal or trace it. Like nsenter (which it replaces for terminal sessions, saving a process) it
 * joins the ipc, uts, net, pid and mount namespaces of the sandbox's PID 1 and its root, opens the
 * sandbox's /dev/pts/ptmx (so `tty` names /dev/pts/N inside), and forks the program into the
 * sandbox's pid namespace with the slave as its stdio. It passes on the program's exact wait
 * status: an exit code as its own exit code, a fatal signal by dying of the same signal (util-linux
 * `script` would turn that into exit code 128+N).
 *
 * It also does what setpriv did: the program runs as the level user, under the seccomp filter of
 * every player process (sandbox-enter.c), and it joins the sandbox's cgroup (WG_CGROUP_PROCS) first.
 *
 * The program is the level's shell, the leader of a new session whose controlling terminal is that
 * terminal, started as sshd starts it (sandbox-launch.c: WG_SHELL, WG_MODE, WG_CMD).
 *
 * usage: pty-relay NSPID COLS ROWS UID GID GROUPS
 *   fd 0: input for the terminal (end of input is ignored, as sshd does for a pty)
 *   fd 1: what the terminal shows
 *   fd 2: the relay's own errors
 *   fd 3: control pipe: lines "COLS ROWS" resize the terminal
 * SIGHUP hangs up the terminal (its session gets SIGHUP); the relay exits once the child has.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "helper-common.h"
#include "sandbox-enter.h"
#include "sandbox-launch.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

#define TTY_GID 5
#define BUF 65536

static void resize(int master, char *line) {
    unsigned cols, rows;
    if (sscanf(line, "%u %u", &cols, &rows) == 2 && cols > 0 && rows > 0 && cols <= 1000 && rows <= 1000) {
        struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
        ioctl(master, TIOCSWINSZ, &ws);
    }
}

int main(int argc, char **argv) {
    helper_name = "pty-relay";
    if (argc != 7) {
        fprintf(stderr, "usage: pty-relay NSPID COLS ROWS UID GID GROUPS\n");
        return 125;
    }
    long nspid = number(argv[1], 0x7fffffff);
    struct winsize ws = {.ws_col = (unsigned short)number(argv[2], 1000), .ws_row = (unsigned short)number(argv[3], 1000)};
    uid_t uid = (uid_t)number(argv[4], 0x7fffffff);
    gid_t gid = (gid_t)number(argv[5], 0x7fffffff);
    const char *groups = argv[6];

    /* No parent-death signal: if the gateway dies, the sandbox dies with it (its PID 1 loses its
     * pipe), the program with the sandbox, and the relay once it has reaped the program. Dying
     * first would leave the program to the host's init to reap, and the sandbox's teardown to wait
     * for that. */
    /* Re-raising a fatal signal below must never leave a core file on the host. */
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);

    join_cgroups_from_env();
    enter_namespaces(nspid);
    int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) fail("/dev/pts/ptmx");
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) != 0) fail("unlock pty");
    /* The slave straight from the master: no path lookup inside the player's filesystem. */
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    if (slave < 0) fail("open pty slave");
    /* As sshd does: the terminal belongs to the player (screen and tmux insist on it). */
    if (fchown(slave, uid, TTY_GID) != 0 || fchmod(slave, 0620) != 0) fail("chown pty");
    if (ioctl(master, TIOCSWINSZ, &ws) != 0) fail("size pty");
    fcntl(3, F_SETFD, FD_CLOEXEC);
    /* Last, once the terminal is the player's: from here on, root of the sandbox's user namespace only. */
    join_user_namespace();

    sigset_t handled;
    sigemptyset(&handled);
    sigaddset(&handled, SIGCHLD);
    sigaddset(&handled, SIGHUP);
    sigaddset(&handled, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &handled, NULL) != 0) fail("sigprocmask");
    int sigfd = signalfd(-1, &handled, SFD_CLOEXEC);
    if (sigfd < 0) fail("signalfd");

    pid_t child = fork();
    if (child < 0) fail("fork");
    if (child == 0) {
        sigprocmask(SIG_UNBLOCK, &handled, NULL);
        dup2(slave, 0);
        dup2(slave, 1);
        dup2(slave, 2);
        if (slave > 2) close(slave);
        /* Job control, and a hangup that reaches the player's processes, not host-side helpers. */
        take_terminal();
        restrict_syscalls();
        become_user(uid, gid, groups);
        launch_shell();
    }
    close(slave);
    signal(SIGPIPE, SIG_IGN);
    fcntl(master, F_SETFL, O_NONBLOCK);

    /* Player input not yet accepted by the terminal: reading stdin pauses while it is full. */
    static char in[BUF], out[BUF], ctl[256];
    size_t in_len = 0, ctl_len = 0;
    int in_open = 1, ctl_open = 1, out_open = 1, master_open = 1, status = 0;

    for (;;) {
        struct pollfd p[4] = {
            {.fd = in_open && in_len < sizeof in ? 0 : -1, .events = POLLIN},
            {.fd = master_open ? master : -1, .events = POLLIN | (in_len ? POLLOUT : 0)},
            {.fd = ctl_open ? 3 : -1, .events = POLLIN},
            {.fd = sigfd, .events = POLLIN},
        };
        if (poll(p, 4, -1) < 0) {
            if (errno == EINTR) continue;
            fail("poll");
        }
        if (p[0].revents) {
            ssize_t n = read(0, in + in_len, sizeof in - in_len);
            if (n > 0) in_len += (size_t)n;
            else if (n == 0 || errno != EINTR) in_open = 0;
        }
        if (p[1].revents & POLLOUT && in_len) {
            ssize_t n = write(master, in, in_len);
            if (n > 0) {
                memmove(in, in + n, in_len - (size_t)n);
                in_len -= (size_t)n;
            }
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(master, out, sizeof out);
            if (n > 0) {
                if (out_open && write_all(1, out, (size_t)n) != 0) out_open = 0;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                /* EIO: no process has the terminal open any more. */
                master_open = 0;
            }
        }
        if (p[2].revents) {
            ssize_t n = read(3, ctl + ctl_len, sizeof ctl - 1 - ctl_len);
            if (n <= 0) {
                ctl_open = 0;
            } else {
                ctl_len += (size_t)n;
                ctl[ctl_len] = 0;
                char *nl;
                while ((nl = strchr(ctl, '\n')) != NULL) {
                    *nl = 0;
                    resize(master, ctl);
                    ctl_len -= (size_t)(nl + 1 - ctl);
                    memmove(ctl, nl + 1, ctl_len + 1);
                }
                if (ctl_len == sizeof ctl - 1) ctl_len = 0; /* an overlong line is dropped */
            }
        }
        if (p[3].revents) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof si) != sizeof si) continue;
            if (si.ssi_signo != SIGCHLD) {
                /* Hang up: closing the master sends SIGHUP to the terminal's session. */
                if (master_open) close(master);
                master_open = 0;
                continue;
            }
            if (waitpid(child, &status, WNOHANG) == child) break;
        }
    }

    /* The program is gone: pass on what it wrote last, without waiting for its background jobs. */
    while (master_open && out_open) {
        ssize_t n = read(master, out, sizeof out);
        if (n <= 0 || write_all(1, out, (size_t)n) != 0) break;
    }

    pass_on_status(status);
}
