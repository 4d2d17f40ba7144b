/* What wargate's C helpers share: error exits, number parsing, joining a sandbox's cgroup. */
#pragma once

/* Prints "NAME: WHAT: strerror(errno)" (on helper_error_fd) and exits with status 125 (as nsenter does). */
void fail(const char *what) __attribute__((noreturn));
/* A decimal number in [0, max], or a clear error and exit 125. */
long number(const char *text, long max);
/* Writes all of buf to a blocking fd; -1 once the reader is gone. */
int write_all(int fd, const char *buf, unsigned long len);
/* Writes the caller's pid into each cgroup.procs file of the ':'-separated list in the environment
 * variable WG_CGROUP_PROCS (if set), so the caller and all it forks are limited from now on. */
void join_cgroups_from_env(void);
/* The program name used in error messages, and where they go (stderr unless main says otherwise). */
extern const char *helper_name;
extern int helper_error_fd;
