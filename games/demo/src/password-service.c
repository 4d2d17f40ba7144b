/* A localhost service of the demo game, run inetd-style by wargate: the connection is stdin and
 * stdout, one process per connection, in the player's own sandbox.
 *   password-service EXPECTED ANSWER [PORT]
 * reads one line; if it is the contents of the file EXPECTED, prints the file ANSWER, else says no.
 * With PORT, only a connection to that port (wargate sets SERVICE_PORT) answers so; any other port
 * echoes back whatever it is sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *first_line(FILE *f) {
    char *line = NULL;
    size_t cap = 0;
    if (getline(&line, &cap, f) < 0) return NULL;
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(1); }
    char *line = first_line(f);
    fclose(f);
    return line ? line : strdup("");
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s EXPECTED ANSWER [PORT]\n", argv[0]); return 2; }
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *port = getenv("SERVICE_PORT");
    if (argc > 3 && (!port || strcmp(port, argv[3]) != 0)) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, n, stdout);
        return 0;
    }
    char *expected = read_file(argv[1]);
    char *given = first_line(stdin);
    if (given && strcmp(given, expected) == 0) {
        printf("Correct!\n%s\n", read_file(argv[2]));
        return 0;
    }
    printf("Wrong! Please enter the correct current password.\n");
    return 1;
}
