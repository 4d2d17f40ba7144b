/* The last step of every player process (sandbox-launch.h). It replaces a bash launcher script and
 * util-linux setsid: nothing of the sandbox's own filesystem is needed but the level's shell, so a
 * game's base (a directory or an image) may lack bash and util-linux. */
#define _GNU_SOURCE
#include "sandbox-launch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "helper-common.h"

void take_terminal(void) {
    if (setsid() < 0) fail("setsid");
    if (ioctl(STDIN_FILENO, TIOCSCTTY, 0) != 0) fail("controlling terminal");
}

/* A copy of an environment variable's value, removed from the environment ("" if unset). */
static char *take(const char *name) {
    const char *value = getenv(name);
    char *copy = strdup(value ? value : "");
    if (!copy) fail("strdup");
    unsetenv(name);
    return copy;
}

/* WG_RLIMIT_CPU=N: N seconds of CPU for the shell and each process it starts (SIGXCPU at N, SIGKILL
 * a second later). Lowering a limit needs no privilege, and the level user cannot raise it again. */
static void limit_cpu(void) {
    char *value = take("WG_RLIMIT_CPU"), *end;
    if (!*value) {
        free(value);
        return;
    }
    unsigned long seconds = strtoul(value, &end, 10);
    if (*end || seconds == 0) {
        fprintf(stderr, "%s: WG_RLIMIT_CPU must be a number of seconds\n", helper_name);
        exit(125);
    }
    struct rlimit limit = {.rlim_cur = seconds, .rlim_max = seconds + 1};
    if (setrlimit(RLIMIT_CPU, &limit) != 0) fail("RLIMIT_CPU");
    free(value);
}

void launch_shell(void) {
    limit_cpu();
    char *shell = take("WG_SHELL"), *mode = take("WG_MODE"), *cmd = take("WG_CMD");
    if (*shell != '/' || (strcmp(mode, "login") != 0 && strcmp(mode, "exec") != 0)) {
        fprintf(stderr, "%s: WG_SHELL must be an absolute path and WG_MODE login or exec\n", helper_name);
        exit(125);
    }
    setenv("SHELL", shell, 1);
    /* As sshd: a home that cannot be entered leaves the player in /. */
    const char *home = getenv("HOME");
    const char *cwd = home && *home && chdir(home) == 0 ? home : "/";
    if (cwd[0] == '/' && cwd[1] == 0 && chdir("/") != 0) fail("/");
    setenv("PWD", cwd, 1);
    unsetenv("OLDPWD");

    const char *name = strrchr(shell, '/') + 1;
    if (strcmp(mode, "login") == 0) {
        /* A login shell, as sshd starts one: argv[0] is "-" and the shell's name. */
        size_t len = strlen(name) + 2;
        char *dashed = malloc(len);
        if (!dashed) fail("malloc");
        snprintf(dashed, len, "-%s", name);
        char *argv[] = {dashed, NULL};
        execv(shell, argv);
    } else {
        char *argv[] = {shell, "-c", cmd, NULL};
        execv(shell, argv);
    }
    fprintf(stderr, "%s: %s\n", shell, strerror(errno));
    exit(127);
}
