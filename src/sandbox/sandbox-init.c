/*
 * sandbox-init: creates one sandbox and stays as its holder.
 *
 * It replaces a chain of util-linux tools (sh joining the cgroup, setpriv --pdeathsig, unshare
 * --fork --kill-child, a shell script as PID 1, cat reading the lifeline): the same steps, in two
 * small processes instead of four, with nothing left to exec.
 *
 * The holder (the gateway's child, host namespaces, invisible to the player):
 *   1. writes its pid into each cgroup.procs file of WG_CGROUP_PROCS, so everything below is
 *      limited and accounted before it exists;
 *   2. dies with the gateway (parent-death signal SIGKILL);
 *   3. forks PID 1 of a new pid namespace, then serves TCP inside the sandbox's network namespace
 *      for the gateway (sandbox-net.c: forwarding, the in-sandbox SSH port) until PID 1 exits; by
 *      then the kernel has killed every process of the namespace, so the holder's exit means the
 *      sandbox is gone. If the holder dies, PID 1 dies too (its own parent-death signal).
 * PID 1 (root in fresh mount, uts, ipc and net namespaces, then in a user namespace of its own):
 *   builds the root filesystem: a tmpfs capped in size and inodes -> overlay(WG_LOWER) on it ->
 *   the host's /usr bound read-only, nosuid, nodev (unless WG_HOST_USR is 0: the game's base
 *   brings its own system) -> a fresh /proc, its kernel interfaces masked
 *   or read-only -> its own devpts and /dev/shm
 *   -> hostname -> lo up -> pivot_root, the host's root detached -> its user namespace, whose ids
 *   the holder maps (WG_ROOT_ID). Then it prints "ready HOSTPID"
 *   and reads fd 0, a pipe whose only writer is the gateway, until end of file: when the gateway
 *   closes it (session end) or dies, PID 1 exits and the kernel kills the rest. Meanwhile it is the
 *   parent of the player programs (see serve_lifeline): it reaps them and every orphan, and tells
 *   the gateway the exit status of each program it watches. Every mount lives in PID 1's private
 *   mount namespace and vanishes with it: nothing is ever mounted on the host.
 *
 * Parameters come in the environment, so the command line a player can read from /proc/1/cmdline
 * holds no host path: WG_CGROUP_PROCS (cgroup.procs files, ':'-separated), WG_MNT (an empty host
 * directory to build on), WG_HOST (hostname), WG_SIZE and WG_INODES (tmpfs caps), WG_LOWER
 * (overlay lowerdir, top first), WG_RELAY_SOCK (the gateway's unix socket for relayed connections),
 * WG_ROOT_ID (the host id of root inside), WG_HOST_USR ("1": bind the host's /usr; "0": do not).
 * fd 3: the holder's control pipe. Errors: one line on stderr, exit status 125.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper-common.h"
#include "sandbox-net.h"
#include "sandbox-root.h"

/* Kernel interfaces a player has no business with, as Docker masks them: files hidden behind
 * /dev/null, directories behind an empty read-only directory, the rest read-only. Paths this kernel
 * lacks are skipped. (Paths relative to the new root, before pivot_root.) */
static const char *const MASKED[] = {"proc/kcore", "proc/kallsyms", "proc/keys", "proc/latency_stats", "proc/timer_list",
                                     "proc/timer_stats", "proc/sched_debug", "proc/kmsg", "proc/interrupts",
                                     "proc/asound", "proc/acpi", "proc/scsi"};
static const char *const READ_ONLY[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger"};

/* `empty`: an empty directory of the writable tmpfs, bound read-only over each masked directory
 * (a bind adds no filesystem: every tmpfs of its own would cost kernel memory per sandbox). */
static void mask_kernel_interfaces(const char *empty) {
    struct stat st;
    for (size_t i = 0; i < sizeof MASKED / sizeof *MASKED; i++) {
        if (lstat(MASKED[i], &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            do_mount(empty, MASKED[i], NULL, MS_BIND, NULL);
            do_mount(NULL, MASKED[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        } else {
            do_mount("dev/null", MASKED[i], NULL, MS_BIND, NULL);
        }
    }
    for (size_t i = 0; i < sizeof READ_ONLY / sizeof *READ_ONLY; i++) {
        if (lstat(READ_ONLY[i], &st) != 0) continue;
        do_mount(READ_ONLY[i], READ_ONLY[i], NULL, MS_BIND | MS_REC, NULL);
        do_mount(NULL, READ_ONLY[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    }
}

/*
 * The user namespace: root inside is WG_ROOT_ID on the host (src/sandbox/ids.ts), an id nothing else
 * uses; every other id up to 65535 is itself, so the level users' files, setuid programs and
 * terminals keep their owners. The host's root is not mapped: its
 * files show as nobody, and its setuid-root programs cannot raise anyone to it. The mount, network,
 * uts and ipc namespaces belong to the host's user namespace, so root inside could not mount,
 * configure the network or rename the host even if a player became it.
 */
static unsigned long root_id;

/* Sync between PID 1 and the holder: PID 1 has made its user namespace / the holder has mapped it. */
static int made_userns[2], mapped_userns[2];

/*
 * PID 1's second job, after building the sandbox: the parent of every player program. sandbox-spawn
 * forks each program into the sandbox and exits, so the program is reparented here. PID 1 reaps it
 * (and every orphan: nothing stays a zombie) and, for the programs the gateway watches, writes their
 * exact status to the gateway: "exited PID code N" or "exited PID signal N" (pids in the sandbox's
 * pid namespace; "signal N core" when it dumped core). The gateway's lifeline (fd 0) carries
 * "watch PID" and "kill PID SIGNAL" lines; at its end of file PID 1 exits, and the kernel kills the
 * rest of the sandbox. A program may end before its watch arrives: the latest statuses of unwatched
 * programs are kept for that.
 */
#define MAX_WATCHED 256
#define RECENT 256

static pid_t watched[MAX_WATCHED];
static struct { pid_t pid; int status; } recent[RECENT];
static unsigned recent_next;

static void report(pid_t pid, int status) {
    char line[64];
    int len;
    if (WIFSIGNALED(status)) len = snprintf(line, sizeof line, "exited %d signal %d%s\n", pid, WTERMSIG(status), WCOREDUMP(status) ? " core" : "");
    else len = snprintf(line, sizeof line, "exited %d code %d\n", pid, WEXITSTATUS(status));
    /* One write of a short line: atomic on the pipe the holder writes its answers to as well. */
    if (write(STDOUT_FILENO, line, (size_t)len) < 0) { /* the gateway is gone: so is the sandbox, soon */ }
}

static int watched_slot(pid_t pid) {
    for (int i = 0; i < MAX_WATCHED; i++)
        if (watched[i] == pid) return i;
    return -1;
}

static void reap(void) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int slot = watched_slot(pid);
        if (slot >= 0) {
            watched[slot] = 0;
            report(pid, status);
        } else {
            recent[recent_next % RECENT].pid = pid;
            recent[recent_next % RECENT].status = status;
            recent_next++;
        }
    }
}

static void watch(pid_t pid) {
    reap();
    for (unsigned i = 0; i < RECENT; i++) {
        if (recent[i].pid == pid) {
            recent[i].pid = 0;
            return report(pid, recent[i].status);
        }
    }
    /* Not one of PID 1's children (any more): its status is lost, the gateway must not wait. */
    if (kill(pid, 0) != 0 || watched_slot(0) < 0) return report(pid, 255 << 8); /* as an exit code of 255 */
    watched[watched_slot(0)] = pid;
}

static void command(char *line) {
    char verb[8];
    int pid, sig;
    if (sscanf(line, "watch %d", &pid) == 1 && pid > 1) return watch(pid);
    /* Only to a watched program: never PID 1 itself, never a pid the gateway did not start. */
    if (sscanf(line, "%7s %d %d", verb, &pid, &sig) == 3 && strcmp(verb, "kill") == 0 && pid > 1 && sig > 0 && sig < 65 && watched_slot(pid) >= 0) kill(pid, sig);
}

static void serve_lifeline(int sigfd) {
    char buf[4096];
    size_t len = 0;
    for (;;) {
        struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            _exit(125);
        }
        if (p[1].revents) {
            struct signalfd_siginfo si;
            while (read(sigfd, &si, sizeof si) == sizeof si) {}
            reap();
        }
        if (p[0].revents) {
            ssize_t n = read(STDIN_FILENO, buf + len, sizeof buf - 1 - len);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) _exit(0);
            if (n < 0) continue;
            len += (size_t)n;
            buf[len] = 0;
            char *start = buf, *nl;
            while ((nl = strchr(start, '\n')) != NULL) {
                *nl = 0;
                command(start);
                start = nl + 1;
            }
            len -= (size_t)(start - buf);
            memmove(buf, start, len);
            if (len == sizeof buf - 1) len = 0; /* an overlong line is dropped */
        }
    }
}

/* PID 1: never returns. */
static void run_init(void) {
    const char *mnt = param("WG_MNT"), *host = param("WG_HOST"), *size = param("WG_SIZE"), *inodes = param("WG_INODES"),
               *lower = param("WG_LOWER"), *host_usr = param("WG_HOST_USR");
    char data[8192];

    close(CONTROL_FD); /* the holder's, not PID 1's */
    if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET) != 0) fail("unshare");
    do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);

    /* Read before the sandbox's own /proc hides the host's pid numbers. */
    char self[24] = {0};
    if (readlink("/proc/self", self, sizeof self - 1) < 0) fail("/proc/self");

    snprintf(data, sizeof data, "size=%s,nr_inodes=%s,mode=0755", size, inodes);
    do_mount("wargate-rw", mnt, "tmpfs", MS_NOSUID | MS_NODEV, data);
    if (chdir(mnt) != 0) fail(mnt);
    /* Besides the overlay's upper and work directories, the writable tmpfs holds /dev/shm and the
     * empty directory that masks kernel interfaces, both bound in below: one filesystem, one size
     * cap for everything a player can write, and less kernel memory than a tmpfs each. */
    if (mkdir("upper", 0755) != 0 || mkdir("work", 0755) != 0 || mkdir("root", 0755) != 0 || mkdir("shm", 0755) != 0 ||
        mkdir("empty", 0555) != 0)
        fail("mkdir");
    /* The root directory inside is the upper one's: the sandbox's root owns it, and /dev/shm. */
    if (chown("upper", (uid_t)root_id, (gid_t)root_id) != 0 || chown("shm", (uid_t)root_id, (gid_t)root_id) != 0 ||
        chmod("shm", 01777) != 0)
        fail("chown upper");
    /* Each layer bound in under a short name, and every overlay path relative: the options that
     * /proc/self/mountinfo shows inside name no host path (l0:l1, upper, work). */
    size_t used = (size_t)snprintf(data, sizeof data, "lowerdir=");
    char *layers = strdup(lower), *save = NULL, name[16];
    int n = 0;
    for (char *layer = strtok_r(layers, ":", &save); layer; layer = strtok_r(NULL, ":", &save), n++) {
        snprintf(name, sizeof name, "l%d", n);
        if (mkdir(name, 0755) != 0) fail("mkdir layer");
        do_mount(layer, name, NULL, MS_BIND, NULL);
        used += (size_t)snprintf(data + used, sizeof data - used, "%s%s", n ? ":" : "", name);
    }
    free(layers);
    snprintf(data + used, sizeof data - used, ",upperdir=upper,workdir=work");
    do_mount("wargate-root", "root", "overlay", 0, data);
    if (chdir("root") != 0) fail("root");

    /* Host programs, read-only. nosuid: setuid-root programs of the host (su, mount, ...) are
     * inert; the game's own setuid binaries live in the game layer and keep working. A game on a
     * directory or image base has its own /usr in its layers: nothing of the host's is bound. */
    if (strcmp(host_usr, "1") == 0) bind_read_only("/usr", "usr");
    else if (strcmp(host_usr, "0") != 0) {
        fprintf(stderr, "%s: WG_HOST_USR must be 0 or 1\n", helper_name);
        exit(125);
    }
    do_mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mask_kernel_interfaces("../empty");
    /* /dev comes from the base layer; the sandbox adds a devpts instance of its own, so a player
     * can never open another player's terminal. */
    do_mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
    do_mount("../shm", "dev/shm", NULL, MS_BIND, NULL);
    do_mount(NULL, "dev/shm", NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV, NULL);

    if (sethostname(host, strlen(host)) != 0) fail("hostname");
    bring_up_loopback();

    /* The host's root is detached: nothing of it stays reachable. */
    pivot_to_cwd();

    /* The OOM killer, when the sandbox's cgroup runs out of memory, picks a player's process, never
     * PID 1. Some hosts refuse; then the score stays as it is. */
    int adj = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (adj >= 0) {
        if (write(adj, "-1000", 5) < 0) { /* best effort */ }
        close(adj);
    }
    /* Last, when nothing is left that needs the host's root: the user namespace (WG_ROOT_ID). */
    if (unshare(CLONE_NEWUSER) != 0) fail("unshare user");
    char sync = 'u';
    if (write(made_userns[1], &sync, 1) != 1 || read(mapped_userns[0], &sync, 1) != 1) fail("user namespace ids");
    close(made_userns[1]);
    close(mapped_userns[0]);
    /* PID 1 shows as root inside, not as the unmapped host root (nobody). */
    if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) fail("root of the user namespace");

    /* The gateway opens terminals as /proc/PID1/cwd/ptmx: the sandbox's own devpts instance. */
    if (chdir("/dev/pts") != 0) fail("/dev/pts");

    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &chld, NULL) != 0) fail("sigprocmask");
    int sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd < 0) fail("signalfd");

    snprintf(data, sizeof data, "ready %s\n", self);
    if (write(STDOUT_FILENO, data, strlen(data)) < 0) exit(125);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDERR_FILENO);
        close(null);
    }
    serve_lifeline(sigfd);
}

int main(int argc, char **argv) {
    (void)argc;
    helper_name = "sandbox-init";
    root_id = (unsigned long)number(param("WG_ROOT_ID"), 0xfffffffeL);
    param("WG_CGROUP_PROCS");
    join_cgroups_from_env();
    pid_t gateway = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail("pdeathsig");
    if (getppid() != gateway) return 125; /* the gateway is already gone */
    prctl(PR_SET_NAME, "wargate-sandbox");

    if (unshare(CLONE_NEWPID) != 0) fail("unshare pid");
    if (pipe2(made_userns, O_CLOEXEC) != 0 || pipe2(mapped_userns, O_CLOEXEC) != 0) fail("pipe");
    pid_t init = fork();
    if (init < 0) fail("fork");
    if (init == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail("pdeathsig");
        prctl(PR_SET_NAME, "init");
        /* What ps shows inside: "init", whatever the holder was called (no host path). */
        size_t room = strlen(argv[0]);
        memset(argv[0], 0, room);
        memcpy(argv[0], "init", room < 4 ? room : 4);
        close(made_userns[0]);
        close(mapped_userns[1]);
        run_init();
    }
    close(made_userns[1]);
    close(mapped_userns[0]);
    /* PID 1 asks for its ids once it has made its user namespace (no answer if it failed before). */
    char sync;
    if (read(made_userns[0], &sync, 1) == 1) {
        write_id_maps(init, root_id);
        if (write(mapped_userns[1], &sync, 1) != 1) fail("user namespace ids");
    }
    close(made_userns[0]);
    close(mapped_userns[1]);
    /* The lifeline is PID 1's alone; the holder keeps stdout for its answers (sandbox-net.c). */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDERR_FILENO);
        close(null);
    }
    return serve_network(init, param("WG_RELAY_SOCK"));
}
