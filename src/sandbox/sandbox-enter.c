/* Entering a sandbox from the host side and becoming its level user (sandbox-enter.h). */
#define _GNU_SOURCE
#include "sandbox-enter.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper-common.h"

#define MAX_GROUPS 64

/* The sandbox's user namespace and ours, opened while /proc still shows both (see below). */
static int their_user_ns = -1;
static int same_user_ns;

void enter_namespaces(long pid) {
    static const char *const kinds[] = {"ipc", "uts", "net", "pid", "mnt"};
    int fds[5];
    char path[64];
    /* Open everything first: after joining the mount namespace, /proc is the sandbox's, where
     * neither PID nor this process (outside its pid namespace) can be found. */
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "/proc/%ld/ns/%s", pid, kinds[i]);
        if ((fds[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0) fail(path);
    }
    snprintf(path, sizeof path, "/proc/%ld/ns/user", pid);
    struct stat theirs, ours;
    if ((their_user_ns = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(their_user_ns, &theirs) != 0) fail(path);
    if (stat("/proc/self/ns/user", &ours) != 0) fail("/proc/self/ns/user");
    same_user_ns = theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev;
    snprintf(path, sizeof path, "/proc/%ld/root", pid);
    int root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) fail(path);
    for (int i = 0; i < 5; i++) {
        if (setns(fds[i], 0) != 0) fail(kinds[i]);
        close(fds[i]);
    }
    if (fchdir(root) != 0 || chroot(".") != 0 || chdir("/") != 0) fail("chroot");
    close(root);
}

void join_user_namespace(void) {
    if (their_user_ns < 0) {
        errno = EBADF;
        fail("user namespace (enter_namespaces first)");
    }
    if (!same_user_ns && setns(their_user_ns, CLONE_NEWUSER) != 0) fail("user namespace");
    close(their_user_ns);
    their_user_ns = -1;
}

/*
 * The filter every player process runs under, as Docker's default profile does for the same
 * calls: they fail with EPERM (ENOSYS for clone3, so that libc falls back to clone, whose flags a
 * filter can see). Denied: kernel keyrings, bpf, perf_event_open, userfaultfd, io_uring, every
 * mount and namespace call (and clone with a namespace flag), module and kexec loading, the kernel
 * log, handle-based opens, and the terminal injection ioctls TIOCSTI and TIOCLINUX. Allowed, on
 * purpose: ptrace (players debug their own programs) and personality (setarch -R). The filter
 * covers the 32-bit ABIs too: wargames run 32-bit binaries.
 */
void restrict_syscalls(void) {
    static const int denied[] = {
        SCMP_SYS(keyctl), SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(bpf), SCMP_SYS(perf_event_open),
        SCMP_SYS(userfaultfd), SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register),
        SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(pivot_root), SCMP_SYS(unshare), SCMP_SYS(setns),
        SCMP_SYS(move_mount), SCMP_SYS(open_tree), SCMP_SYS(fsopen), SCMP_SYS(fsconfig), SCMP_SYS(fsmount),
        SCMP_SYS(fspick), SCMP_SYS(mount_setattr), SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load),
        SCMP_SYS(init_module), SCMP_SYS(finit_module), SCMP_SYS(delete_module), SCMP_SYS(acct),
        SCMP_SYS(swapon), SCMP_SYS(swapoff), SCMP_SYS(reboot), SCMP_SYS(syslog), SCMP_SYS(open_by_handle_at),
        SCMP_SYS(name_to_handle_at), SCMP_SYS(quotactl), SCMP_SYS(iopl), SCMP_SYS(ioperm), SCMP_SYS(lookup_dcookie),
    };
    static const unsigned long namespace_flags[] = {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWPID,
                                                    CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP, CLONE_NEWTIME};
    static const unsigned long injections[] = {TIOCSTI, TIOCLINUX};
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) fail("seccomp_init");
    /* libseccomp sets no_new_privs by default, which would make every setuid program of the game
     * inert: the levels need them. Installing the filter without it takes CAP_SYS_ADMIN, which the
     * caller still has (it drops its ids only afterwards). */
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
    if (rc != 0) goto broken;
    rc = seccomp_arch_add(ctx, SCMP_ARCH_X86);
    if (rc != 0 && rc != -EEXIST) goto broken;
    rc = seccomp_arch_add(ctx, SCMP_ARCH_X32);
    if (rc != 0 && rc != -EEXIST) goto broken;
    for (size_t i = 0; i < sizeof denied / sizeof *denied; i++) {
        /* A call some ABI lacks (iopl on x32, say) is simply not there to deny. */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), denied[i], 0);
        if (rc != 0 && rc != -EDOM && rc != -EINVAL) goto broken;
    }
    for (size_t i = 0; i < sizeof namespace_flags / sizeof *namespace_flags; i++) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, namespace_flags[i], namespace_flags[i]));
        if (rc != 0) goto broken;
    }
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) != 0) goto broken;
    for (size_t i = 0; i < sizeof injections / sizeof *injections; i++) {
        /* The kernel reads the request as 32 bits: so does the comparison. */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, injections[i]));
        if (rc != 0) goto broken;
    }
    if ((rc = seccomp_load(ctx)) != 0) goto broken;
    seccomp_release(ctx);
    return;
broken:
    errno = -rc;
    fail("seccomp filter");
}

void become_user(uid_t uid, gid_t gid, const char *groups) {
    gid_t list[MAX_GROUPS];
    size_t n = 0;
    char *copy = strdup(groups), *save = NULL;
    for (char *g = strtok_r(copy, ",", &save); g && n < MAX_GROUPS; g = strtok_r(NULL, ",", &save))
        list[n++] = (gid_t)number(g, 0x7fffffff);
    free(copy);
    /* First become the root of the sandbox's user namespace: having joined it from the host's, the
     * caller still has the host's root ids, which are not mapped there, and the kernel drops
     * capabilities on a change of ids only when leaving that namespace's own root. */
    if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) fail("root of the user namespace");
    if (setgroups(n, list) != 0) fail("setgroups");
    if (setresgid(gid, gid, gid) != 0) fail("setresgid");
    if (setresuid(uid, uid, uid) != 0) fail("setresuid");
    /* No way back: changing ids again must fail now that capabilities are gone. */
    if (uid != 0 && setuid(0) == 0) {
        errno = EPERM;
        fail("dropping root");
    }
}

void pass_on_status(int status) {
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        /* Dying of the same signal must never leave a core file on the host. */
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        signal(sig, SIG_DFL);
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_UNBLOCK, &all, NULL);
        raise(sig);
        exit(128 + sig);
    }
    exit(WEXITSTATUS(status));
}
