/* uppercase-shell: a login shell that shouts. Each line read is uppercased, then run with
 * /bin/sh -c; with -c COMMAND (how `ssh user@host -- COMMAND` runs), the uppercased COMMAND runs
 * once. So `ls` becomes `LS`, which no one has installed. Installed setuid to the next level: the
 * real uid is raised to the effective one first, as sh would otherwise drop it.
 * The way out is what uppercasing cannot change: `$0` is the name sh was started as, "sh". */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void shout(char *s) {
    for (; *s; s++) *s = (char)toupper((unsigned char)*s);
}

int main(int argc, char *argv[]) {
    uid_t euid = geteuid();
    if (setreuid(euid, euid) != 0) {
        perror("setreuid");
        return 1;
    }
    if (argc >= 3 && strcmp(argv[1], "-c") == 0) {
        shout(argv[2]);
        execl("/bin/sh", "sh", "-c", argv[2], (char *)NULL);
        perror("/bin/sh");
        return 127;
    }
    int interactive = isatty(STDIN_FILENO);
    if (interactive) fputs("WELCOME TO THE UPPERCASE SHELL\n", stdout);
    char line[4096];
    for (;;) {
        if (interactive) fputs(">> ", stdout);
        fflush(stdout);
        if (fgets(line, sizeof line, stdin) == NULL) break;
        line[strcspn(line, "\n")] = '\0';
        shout(line);
        /* system() runs sh -c LINE with SIGINT ignored here, so Ctrl-C ends the command, not the shell. */
        if (system(line) == -1) perror("system");
    }
    if (interactive) fputs("\n", stdout);
    return 0;
}
