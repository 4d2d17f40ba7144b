/*
 * The holder's network service: TCP inside a sandbox's network namespace, for a gateway that lives
 * outside it. The holder is already resident for every sandbox, so an idle sandbox costs no extra
 * process; each open connection costs one small relay process, gone when the connection closes.
 *
 * Requests come as lines on the control pipe (fd 3), answers go out as lines on stdout:
 *   listen TOKEN ADDR PORT   bind ADDR:PORT (numeric; PORT 0: any) inside, accept connections
 *                            -> "listening TOKEN PORT" | "failed TOKEN REASON"
 *   unlisten TOKEN           stop listening
 *   connect TOKEN ADDR PORT  connect to ADDR:PORT from inside (the answer comes on the relay socket)
 * Every connection, accepted or connected, reaches the gateway as a connection to its unix socket
 * (WG_RELAY_SOCK, a host path: joining only the network namespace leaves the holder the host's
 * filesystem) that starts with one header line, then carries the connection's bytes both ways:
 *   "TOKEN PEER_ADDR PEER_PORT" for an accepted connection,
 *   "TOKEN ok" or "TOKEN error REASON" for a connect request.
 * Sockets keep the namespace they were created in: the holder joins the sandbox's namespace to
 * create a socket and returns to the host's at once, so it never stays where a player could reach.
 */
#define _GNU_SOURCE
#include "sandbox-net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LISTENERS 32
#define MAX_RELAYS 256
#define TOKEN_MAX 64
#define LINE_MAX_LEN 512
#define BUF 65536
#define CONNECT_TIMEOUT_S 10

struct listener {
    int fd;
    char token[TOKEN_MAX + 1];
};

static struct listener listeners[MAX_LISTENERS];
static pid_t relays[MAX_RELAYS];
static int host_net = -1, sandbox_net = -1;
static pid_t init_pid;
static const char *relay_sock;

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...) {
    char line[LINE_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof line && write(STDOUT_FILENO, line, (size_t)n) < 0) { /* the gateway is gone */ }
}

/* An address as the sockets API wants it; 0 if ADDR is not a numeric IPv4 or IPv6 address. */
static socklen_t parse_address(const char *addr, const char *port_text, struct sockaddr_storage *out) {
    char *end;
    long port = strtol(port_text, &end, 10);
    if (*end || port < 0 || port > 65535) return 0;
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return sizeof *v4;
    }
    if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        return sizeof *v6;
    }
    return 0;
}

/* A socket in the sandbox's network namespace; -1 with errno set on failure. */
static int sandbox_socket(int family) {
    if (sandbox_net < 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/net", init_pid);
        if ((sandbox_net = open(path, O_RDONLY | O_CLOEXEC)) < 0) return -1;
    }
    if (setns(sandbox_net, CLONE_NEWNET) != 0) return -1;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int saved = errno;
    if (setns(host_net, CLONE_NEWNET) != 0) _exit(125); /* never stay inside */
    errno = saved;
    return fd;
}

/* Moves data both ways between two sockets until both directions have ended, passing on each
 * end of stream as a half-close (shutdown) so request/response protocols work. */
static void relay(int a, int b) {
    struct direction {
        int from, to, eof;
        size_t off, len;
        char buf[BUF];
    };
    static struct direction dirs[2];
    dirs[0] = (struct direction){.from = a, .to = b};
    dirs[1] = (struct direction){.from = b, .to = a};
    fcntl(a, F_SETFL, O_NONBLOCK);
    fcntl(b, F_SETFL, O_NONBLOCK);
    for (;;) {
        struct pollfd p[2] = {{.fd = a}, {.fd = b}};
        int active = 0;
        for (int i = 0; i < 2; i++) {
            struct direction *d = &dirs[i];
            if (d->len > 0) p[d->to == a ? 0 : 1].events |= POLLOUT, active = 1;
            else if (!d->eof) p[d->from == a ? 0 : 1].events |= POLLIN, active = 1;
        }
        if (!active) return;
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        for (int i = 0; i < 2; i++) {
            struct direction *d = &dirs[i];
            short from_ev = p[d->from == a ? 0 : 1].revents, to_ev = p[d->to == a ? 0 : 1].revents;
            if (d->len == 0 && !d->eof && (from_ev & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t n = recv(d->from, d->buf, BUF, 0);
                if (n > 0) d->off = 0, d->len = (size_t)n;
                else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                    d->eof = 1;
                    shutdown(d->to, SHUT_WR);
                }
            } else if (d->len > 0 && (to_ev & (POLLOUT | POLLERR | POLLHUP))) {
                ssize_t n = send(d->to, d->buf + d->off, d->len, MSG_NOSIGNAL);
                if (n > 0) d->off += (size_t)n, d->len -= (size_t)n;
                else if (errno != EAGAIN && errno != EINTR) return; /* the other side is gone */
            }
        }
    }
}

/* A connection to the gateway's relay socket, announced with its header line; -1 on failure. */
static int gateway_connection(const char *header) {
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(relay_sock) >= sizeof sun.sun_path) return -1;
    strcpy(sun.sun_path, relay_sock);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) return -1;
    if (send(fd, header, strlen(header), MSG_NOSIGNAL) != (ssize_t)strlen(header)) return -1;
    return fd;
}

/* Forks a relay process: `work` runs in it with `fd` and the request's words, then it exits. The
 * child keeps only what it needs: not the control pipe, the listeners or the holder's stdout. */
static void spawn_relay(int fd, void (*work)(int, char **), char **words) {
    int slot = -1;
    for (int i = 0; i < MAX_RELAYS; i++)
        if (relays[i] == 0) { slot = i; break; }
    if (slot < 0) {
        if (fd >= 0) close(fd); /* too many at once: this connection is refused */
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        if (fd >= 0) close(fd);
        return;
    }
    if (pid > 0) {
        relays[slot] = pid;
        if (fd >= 0) close(fd);
        return;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int i = 0; i < MAX_LISTENERS; i++)
        if (listeners[i].fd > 0 && listeners[i].fd != fd) close(listeners[i].fd);
    close(CONTROL_FD);
    close(STDOUT_FILENO);
    work(fd, words);
    _exit(0);
}

static void relay_accepted(int conn, char **words) {
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    char addr[INET6_ADDRSTRLEN] = "0.0.0.0", header[LINE_MAX_LEN];
    int port = 0;
    if (getpeername(conn, (struct sockaddr *)&peer, &len) == 0) {
        if (peer.ss_family == AF_INET) {
            struct sockaddr_in *v4 = (struct sockaddr_in *)&peer;
            inet_ntop(AF_INET, &v4->sin_addr, addr, sizeof addr);
            port = ntohs(v4->sin_port);
        } else if (peer.ss_family == AF_INET6) {
            struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&peer;
            inet_ntop(AF_INET6, &v6->sin6_addr, addr, sizeof addr);
            port = ntohs(v6->sin6_port);
        }
    }
    snprintf(header, sizeof header, "%s %s %d\n", words[0], addr, port);
    int gw = gateway_connection(header);
    if (gw >= 0) relay(conn, gw);
}

/* words: TOKEN ADDR PORT */
static void relay_connect(int unused, char **words) {
    (void)unused;
    char header[LINE_MAX_LEN];
    struct sockaddr_storage to;
    socklen_t len = parse_address(words[1], words[2], &to);
    int conn = len ? sandbox_socket(to.ss_family) : -1;
    if (!len) errno = EINVAL;
    if (conn >= 0) {
        struct timeval timeout = {.tv_sec = CONNECT_TIMEOUT_S};
        setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        if (connect(conn, (struct sockaddr *)&to, len) != 0) {
            int saved = errno;
            close(conn);
            conn = -1;
            errno = saved;
        }
    }
    if (conn < 0) snprintf(header, sizeof header, "%s error %s\n", words[0], strerror(errno));
    else snprintf(header, sizeof header, "%s ok\n", words[0]);
    int gw = gateway_connection(header);
    if (gw >= 0 && conn >= 0) relay(conn, gw);
}

static void do_listen(char **words) {
    struct sockaddr_storage at;
    socklen_t len = parse_address(words[1], words[2], &at);
    int slot = -1;
    for (int i = 0; i < MAX_LISTENERS; i++)
        if (listeners[i].fd <= 0) { slot = i; break; }
    if (!len) return reply("failed %s bad address\n", words[0]);
    if (slot < 0) return reply("failed %s too many listeners\n", words[0]);
    int fd = sandbox_socket(at.ss_family), on = 1;
    if (fd < 0) return reply("failed %s %s\n", words[0], strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (at.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, (struct sockaddr *)&at, len) != 0 || listen(fd, 64) != 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0 ||
        getsockname(fd, (struct sockaddr *)&at, &len) != 0) {
        reply("failed %s %s\n", words[0], strerror(errno));
        close(fd);
        return;
    }
    listeners[slot].fd = fd;
    snprintf(listeners[slot].token, sizeof listeners[slot].token, "%s", words[0]);
    int port = at.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&at)->sin_port) : ntohs(((struct sockaddr_in6 *)&at)->sin6_port);
    reply("listening %s %d\n", words[0], port);
}

static int valid_token(const char *t) {
    size_t n = strlen(t);
    if (n == 0 || n > TOKEN_MAX) return 0;
    for (; *t; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || (*t >= '0' && *t <= '9') || *t == '-')) return 0;
    return 1;
}

static void handle_line(char *line) {
    char *words[5] = {0}, *save = NULL;
    int n = 0;
    for (char *w = strtok_r(line, " ", &save); w && n < 5; w = strtok_r(NULL, " ", &save)) words[n++] = w;
    if (n < 2 || !valid_token(words[1])) return;
    if (n == 4 && strcmp(words[0], "listen") == 0) do_listen(words + 1);
    else if (n == 4 && strcmp(words[0], "connect") == 0) spawn_relay(-1, relay_connect, words + 1);
    else if (n == 2 && strcmp(words[0], "unlisten") == 0) {
        for (int i = 0; i < MAX_LISTENERS; i++)
            if (listeners[i].fd > 0 && strcmp(listeners[i].token, words[1]) == 0) close(listeners[i].fd), listeners[i].fd = 0;
    }
}

/* Reaps relays; returns 1 (and PID 1's wait status) once PID 1 has exited. */
static int reap(int *init_status) {
    int status, done = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == init_pid) *init_status = status, done = 1;
        for (int i = 0; i < MAX_RELAYS; i++)
            if (relays[i] == pid) relays[i] = 0;
    }
    return done;
}

int serve_network(pid_t init, const char *relay_socket) {
    init_pid = init;
    relay_sock = relay_socket;
    host_net = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    int sigfd = signalfd(-1, &chld, SFD_CLOEXEC);
    int control_open = fcntl(CONTROL_FD, F_GETFD) >= 0 && host_net >= 0;
    char pending[LINE_MAX_LEN];
    size_t have = 0;
    int init_status = 0;

    while (!reap(&init_status)) {
        struct pollfd p[2 + MAX_LISTENERS];
        int n = 0;
        p[n++] = (struct pollfd){.fd = sigfd, .events = POLLIN};
        p[n++] = (struct pollfd){.fd = control_open ? CONTROL_FD : -1, .events = POLLIN};
        for (int i = 0; i < MAX_LISTENERS; i++) p[n++] = (struct pollfd){.fd = listeners[i].fd > 0 ? listeners[i].fd : -1, .events = POLLIN};
        if (poll(p, (nfds_t)n, -1) < 0) continue;
        if (p[0].revents) {
            struct signalfd_siginfo info;
            if (read(sigfd, &info, sizeof info) < 0) { /* reaped below either way */ }
        }
        if (p[1].revents) {
            ssize_t got = read(CONTROL_FD, pending + have, sizeof pending - 1 - have);
            if (got <= 0) control_open = 0; /* the gateway stopped asking: PID 1's lifeline decides the rest */
            else have += (size_t)got;
            char *nl;
            while ((nl = memchr(pending, '\n', have))) {
                *nl = 0;
                handle_line(pending);
                have -= (size_t)(nl + 1 - pending);
                memmove(pending, nl + 1, have);
            }
            if (have == sizeof pending - 1) have = 0; /* an overlong line is dropped */
        }
        for (int i = 0; i < MAX_LISTENERS; i++) {
            if (!p[2 + i].revents || listeners[i].fd <= 0) continue;
            int conn = accept4(listeners[i].fd, NULL, NULL, SOCK_CLOEXEC);
            char *words[] = {listeners[i].token};
            if (conn >= 0) spawn_relay(conn, relay_accepted, words);
        }
    }
    /* The sandbox is gone: so are its open connections. */
    for (int i = 0; i < MAX_RELAYS; i++)
        if (relays[i] > 0) kill(relays[i], SIGKILL), waitpid(relays[i], NULL, 0);
    return WIFEXITED(init_status) ? WEXITSTATUS(init_status) : 128 + WTERMSIG(init_status);
}
