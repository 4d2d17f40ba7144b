/* run-as: runs a command with the privileges of this file's owner (it is installed setuid).
 * The real uid is raised to the effective one first: bash and dash drop a setuid euid otherwise. */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char *argv[]) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s COMMAND [ARG...]\nRuns COMMAND as another user. Try: %s id\n", argv[0], argv[0]);
        return 1;
    }
    uid_t euid = geteuid();
    if (setreuid(euid, euid) != 0) {
        perror("setreuid");
        return 1;
    }
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    return 127;
}
