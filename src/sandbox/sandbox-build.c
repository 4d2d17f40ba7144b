/*
 * sandbox-build: runs one build step of a game layer (game.yaml `build:`) in a build sandbox of its
 * own and passes on its status. The layer being built is the overlay's upper directory, on disk:
 * whatever the step writes, chowns, chmods or deletes (overlay whiteouts) becomes part of the layer.
 *
 * The parent (the builder's child, host namespaces): dies with the builder (parent-death signal),
 * forks PID 1 of a new pid namespace, maps its user namespace, and waits for it, at most WG_TIMEOUT
 * seconds: then it kills PID 1, which takes every process of the namespace with it, and waits
 * until it is reaped, so nothing of the step outlives this program.
 * PID 1 (root in fresh mount, uts, ipc and net namespaces): overlay(upper WG_UPPER, lower WG_LOWER)
 * -> the host's /usr bound read-only (if WG_HOST_USR is 1) -> a fresh /proc -> /dev/shm -> the game
 * folder bound read-only at /build -> hostname -> lo up (the only interface) -> pivot_root, the
 * host's root detached -> a user namespace of its own (root inside = WG_ROOT_ID on the host, as in
 * a player's sandbox, so nothing the step runs is the host's root) -> forks the step under the
 * players' seccomp filter, with stdout and stderr on one stream, and exits as the step exits.
 * Every mount lives in PID 1's private mount namespace: nothing is ever mounted on the host.
 *
 * usage: sandbox-build -- PROGRAM [ARG...]   (PROGRAM: a path inside the build sandbox)
 * Parameters in the environment (removed before the step runs): WG_LAYERS (the directory the
 * overlay paths are relative to), WG_UPPER, WG_WORK (overlay workdir, on the upper's filesystem),
 * WG_LOWER (':'-separated, top first), WG_MNT (an empty directory to mount the root on),
 * WG_BUILD_DIR (the game folder), WG_HOST_USR ("1" or "0"), WG_HOST (hostname), WG_ROOT_ID,
 * WG_TIMEOUT (seconds). Exit: the step's exit code, 128+N for a death by signal N, 124 when the
 * time limit killed it, 125 for an error of its own (one line on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper-common.h"
#include "sandbox-enter.h"
#include "sandbox-root.h"

#define TIMED_OUT 124

static const char *layers, *upper, *work, *lower, *mnt, *build_dir, *host_usr, *host;
static unsigned long root_id;
static long timeout_seconds;

/* Sync between PID 1 and the parent: PID 1 has made its user namespace / the parent has mapped it. */
static int made_userns[2], mapped_userns[2];

static void read_params(void) {
    layers = strdup(param("WG_LAYERS"));
    upper = strdup(param("WG_UPPER"));
    work = strdup(param("WG_WORK"));
    lower = strdup(param("WG_LOWER"));
    mnt = strdup(param("WG_MNT"));
    build_dir = strdup(param("WG_BUILD_DIR"));
    host_usr = strdup(param("WG_HOST_USR"));
    host = strdup(param("WG_HOST"));
    root_id = (unsigned long)number(param("WG_ROOT_ID"), 0xfffffffeL);
    timeout_seconds = number(param("WG_TIMEOUT"), 86400);
    if (strcmp(host_usr, "0") != 0 && strcmp(host_usr, "1") != 0) {
        fprintf(stderr, "%s: WG_HOST_USR must be 0 or 1\n", helper_name);
        exit(125);
    }
    /* The step sees the environment it was given, without wargate's parameters. */
    static const char *const names[] = {"WG_LAYERS", "WG_UPPER", "WG_WORK", "WG_LOWER", "WG_MNT", "WG_BUILD_DIR",
                                        "WG_HOST_USR", "WG_HOST", "WG_ROOT_ID", "WG_TIMEOUT"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) unsetenv(names[i]);
}

/* The status this program ends with for a step's wait status. */
static int exit_code(int status) {
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* PID 1: never returns. */
static void run_init(char **argv) {
    char data[4096];
    if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET) != 0) fail("unshare");
    do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    if (chdir(layers) != 0) fail(layers);
    /* Without redirects, an index or metadata-only copies, the upper directory stands alone as a
     * lower layer later (a renamed directory is copied whole; no file refers to a lower one). */
    int len = snprintf(data, sizeof data, "lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off,index=off,metacopy=off", lower, upper, work);
    if (len < 0 || (size_t)len >= sizeof data) {
        fprintf(stderr, "%s: overlay options too long\n", helper_name);
        exit(125);
    }
    do_mount("wargate-build", mnt, "overlay", 0, data);
    if (chdir(mnt) != 0) fail(mnt);
    /* As in a player's sandbox: the host's programs, read-only, their setuid bits inert. */
    if (strcmp(host_usr, "1") == 0) bind_read_only("/usr", "usr");
    do_mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    struct stat st;
    /* Shared memory of the step's own, never part of the layer. */
    if (lstat("dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) do_mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777");
    /* The mount point comes from a lower layer the builder adds for the build only: /build is in no layer. */
    bind_read_only(build_dir, "build");
    if (sethostname(host, strlen(host)) != 0) fail("hostname");
    bring_up_loopback();
    pivot_to_cwd();

    if (unshare(CLONE_NEWUSER) != 0) fail("unshare user");
    char sync = 'u';
    if (write(made_userns[1], &sync, 1) != 1 || read(mapped_userns[0], &sync, 1) != 1) fail("user namespace ids");
    close(made_userns[1]);
    close(mapped_userns[0]);
    if (setgroups(0, NULL) != 0 || setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) fail("root of the user namespace");

    pid_t step = fork();
    if (step < 0) fail("fork");
    if (step == 0) {
        /* One stream for the step's output, in the order it was written. */
        if (dup2(STDOUT_FILENO, STDERR_FILENO) < 0) fail("dup2");
        setsid();
        restrict_syscalls();
        execv(argv[0], argv);
        fprintf(stderr, "%s: %s: %s\n", helper_name, argv[0], strerror(errno));
        _exit(127);
    }
    /* Reap whatever lands here until the step itself ends; its end ends the namespace. */
    for (;;) {
        int status;
        pid_t pid = wait(&status);
        if (pid == step) _exit(exit_code(status));
        if (pid < 0 && errno != EINTR) fail("wait");
    }
}

static volatile sig_atomic_t timed_out;
static pid_t init_pid;
/* PID 1's death kills every process of its namespace; the wait in main returns once all are gone. */
static void on_alarm(int sig) {
    (void)sig;
    timed_out = 1;
    kill(init_pid, SIGKILL);
}

int main(int argc, char **argv) {
    helper_name = "sandbox-build";
    if (argc < 3 || strcmp(argv[1], "--") != 0) {
        fprintf(stderr, "usage: sandbox-build -- PROGRAM [ARG...]\n");
        return 125;
    }
    read_params();
    pid_t builder = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail("pdeathsig");
    if (getppid() != builder) return 125; /* the builder is already gone */

    if (unshare(CLONE_NEWPID) != 0) fail("unshare pid");
    if (pipe2(made_userns, O_CLOEXEC) != 0 || pipe2(mapped_userns, O_CLOEXEC) != 0) fail("pipe");
    pid_t init = fork();
    if (init < 0) fail("fork");
    if (init == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail("pdeathsig");
        close(made_userns[0]);
        close(mapped_userns[1]);
        run_init(argv + 2);
    }
    close(made_userns[1]);
    close(mapped_userns[0]);
    char sync;
    if (read(made_userns[0], &sync, 1) == 1) {
        write_id_maps(init, root_id);
        if (write(mapped_userns[1], &sync, 1) != 1) fail("user namespace ids");
    }
    close(made_userns[0]);
    close(mapped_userns[1]);

    init_pid = init;
    struct sigaction alarm_action = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &alarm_action, NULL);
    alarm((unsigned)timeout_seconds);
    int status;
    while (waitpid(init, &status, 0) != init)
        if (errno != EINTR) fail("wait");
    if (timed_out) {
        fprintf(stderr, "%s: the step ran longer than %ld s and was killed\n", helper_name, timeout_seconds);
        return TIMED_OUT;
    }
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}
