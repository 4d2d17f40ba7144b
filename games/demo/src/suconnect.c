/* suconnect: level16's setuid client (owned by level17). `suconnect PORT` connects to
 * 127.0.0.1:PORT, reads one line and, if it is the contents of EXPECTED (level16's password, a
 * file only level17 can read), answers with ANSWER (level17's password); otherwise it says no.
 * The player must have something listening there first, in the same sandbox: nc -l PORT. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define EXPECTED "/opt/demo/etc/level16.expected"
#define ANSWER "/etc/demo_pass/level17"

/* The first line of `path` without its newline, or NULL. */
static char *first_line_of(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); return NULL; }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    fclose(f);
    if (n < 0) return NULL;
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n"
                        "Connects to PORT on localhost, reads a line from it and, if that line is the\n"
                        "password of level16, sends back the password of level17.\n", argv[0]);
        return 2;
    }
    char *end;
    long port = strtol(argv[1], &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr, "%s: not a port: %s\n", argv[0], argv[1]);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("connect");
        return 1;
    }
    FILE *peer = fdopen(fd, "r+");
    setvbuf(peer, NULL, _IONBF, 0);
    char *given = NULL;
    size_t cap = 0;
    if (getline(&given, &cap, peer) < 0) {
        fprintf(stderr, "%s: the other side sent nothing\n", argv[0]);
        return 1;
    }
    given[strcspn(given, "\r\n")] = '\0';
    printf("Read: %s\n", given);
    char *expected = first_line_of(EXPECTED);
    char *answer = first_line_of(ANSWER);
    if (!expected || !answer) return 1;
    if (strcmp(given, expected) != 0) {
        fputs("That is not the password of level16.\n", peer);
        printf("ERROR: that is not the password of level16\n");
        return 1;
    }
    fprintf(peer, "%s\n", answer);
    printf("Password matches, sent the next one\n");
    return 0;
}
