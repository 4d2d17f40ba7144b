/* What wargate's C helpers share (helper-common.h). */
#define _GNU_SOURCE
#include "helper-common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *helper_name = "wargate";
int helper_error_fd = STDERR_FILENO;

void fail(const char *what) {
    dprintf(helper_error_fd, "%s: %s: %s\n", helper_name, what, strerror(errno));
    exit(125);
}

long number(const char *text, long max) {
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno || *end || end == text || n < 0 || n > max) {
        dprintf(helper_error_fd, "%s: bad number \"%s\"\n", helper_name, text);
        exit(125);
    }
    return n;
}

int write_all(int fd, const char *buf, unsigned long len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        buf += n;
        len -= (unsigned long)n;
    }
    return 0;
}

void join_cgroups_from_env(void) {
    const char *files = getenv("WG_CGROUP_PROCS");
    if (!files || !*files) return;
    char pid[24], *list = strdup(files), *save = NULL;
    snprintf(pid, sizeof pid, "%d\n", getpid());
    for (char *f = strtok_r(list, ":", &save); f; f = strtok_r(NULL, ":", &save)) {
        int fd = open(f, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write_all(fd, pid, strlen(pid)) != 0) fail(f);
        close(fd);
    }
    free(list);
    unsetenv("WG_CGROUP_PROCS");
}
