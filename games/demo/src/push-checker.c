/* push-checker: the server side of level19's repository, run by its pre-receive hook as the
 * pushing player, setuid level20. It reads the refs the push would update (stdin: OLD NEW REF) and
 * for refs/heads/main looks at key.txt of the pushed commit; if it says the right words, it tells
 * the pusher level20's password. It refuses every push: the repository stays as it was.
 * git reads the pushed objects from a quarantine directory only the pusher can read, so git runs
 * with the pusher's own ids; only reading the password uses level20's. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WANTED "May I come in?"
#define ANSWER "/etc/demo_pass/level20"
#define MAX_KEY 4096

/* key.txt of commit `rev`, as the real user, into buf (NUL-terminated); -1 if there is none. */
static int read_key(const char *rev, char *buf, size_t size) {
    char spec[256];
    if (snprintf(spec, sizeof spec, "%s:key.txt", rev) >= (int)sizeof spec) return -1;
    int out[2];
    if (pipe(out) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        uid_t uid = getuid();
        gid_t gid = getgid();
        if (setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) _exit(127);
        dup2(out[1], STDOUT_FILENO);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, STDERR_FILENO);
        close(out[0]);
        close(out[1]);
        execl("/usr/bin/git", "git", "cat-file", "blob", spec, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    size_t len = 0;
    ssize_t n;
    while (len < size - 1 && (n = read(out[0], buf + len, size - 1 - len)) > 0) len += (size_t)n;
    close(out[0]);
    buf[len] = '\0';
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int main(void) {
    char old[128], new[128], ref[1024];
    while (scanf("%127s %127s %1023s", old, new, ref) == 3) {
        if (strcmp(ref, "refs/heads/main") != 0) {
            fprintf(stderr, "Only main is checked here, not %s.\n", ref);
            continue;
        }
        char key[MAX_KEY];
        if (strspn(new, "0") == strlen(new) || read_key(new, key, sizeof key) != 0) {
            fprintf(stderr, "Your commit has no key.txt.\n");
            continue;
        }
        key[strcspn(key, "\r\n")] = '\0';
        if (strcmp(key, WANTED) != 0) {
            fprintf(stderr, "key.txt does not say the right words.\n");
            continue;
        }
        FILE *f = fopen(ANSWER, "r");
        char pw[256] = "";
        if (!f || !fgets(pw, sizeof pw, f)) {
            perror(ANSWER);
            return 1;
        }
        fclose(f);
        pw[strcspn(pw, "\r\n")] = '\0';
        fprintf(stderr, "Well said. The password for level20 is %s\n", pw);
    }
    fprintf(stderr, "This repository keeps what it has: the push is refused.\n");
    return 1;
}
