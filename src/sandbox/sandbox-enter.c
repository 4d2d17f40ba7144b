/* Entering a sandbox from the host side and becoming its level user (sandbox-enter.h). */
#define _GNU_SOURCE
#include "sandbox-enter.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

#include "helper-common.h"
#include "seccomp-filter.h" /* generated at build: WG_SECCOMP_FILTER */

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
 * The filter every player process runs under (the policy is src/sandbox/seccomp-policy.c). It was
 * compiled to BPF at build time by libseccomp, so the helpers need no library at run time and stay
 * small. Installed without no_new_privs, which would make every setuid program of the game inert
 * (the levels need them): that takes CAP_SYS_ADMIN, which the caller still has (it drops its ids
 * only afterwards).
 */
void restrict_syscalls(void) {
    static struct sock_filter filter[] = WG_SECCOMP_FILTER;
    struct sock_fprog program = {.len = (unsigned short)(sizeof filter / sizeof *filter), .filter = filter};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) != 0) fail("seccomp filter");
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
