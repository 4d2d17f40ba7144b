/* What sandbox-init.c and sandbox-build.c share (sandbox-root.h). */
#define _GNU_SOURCE
#include "sandbox-root.h"

#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helper-common.h"

const char *param(const char *name) {
    const char *value = getenv(name);
    if (!value || !*value) {
        fprintf(stderr, "%s: %s is not set\n", helper_name, name);
        exit(125);
    }
    return value;
}

void do_mount(const char *source, const char *target, const char *type, unsigned long flags, const char *data) {
    if (mount(source, target, type, flags, data) != 0) fail(target);
}

void bind_read_only(const char *source, const char *target) {
    do_mount(source, target, NULL, MS_BIND, NULL);
    do_mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
}

void bring_up_loopback(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) fail("socket");
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) fail("lo");
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) fail("lo up");
    close(s);
}

void write_id_maps(pid_t pid, unsigned long root_id) {
    char path[64], map[64];
    int len = snprintf(map, sizeof map, "0 %lu 1\n1 1 65535\n", root_id);
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "/proc/%d/%s", pid, i == 0 ? "uid_map" : "gid_map");
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, map, (size_t)len) != len) fail(path);
        close(fd);
    }
}

void pivot_to_cwd(void) {
    /* pivot_root(".", ".") stacks the old root on the new one; detaching it leaves nothing of the
     * host reachable, without a directory to park it on (pivot_root(2), NOTES). */
    if (syscall(SYS_pivot_root, ".", ".") != 0) fail("pivot_root");
    if (umount2(".", MNT_DETACH) != 0) fail("umount old root");
    if (chdir("/") != 0) fail("/");
}
