/* The holder's network service (sandbox-net.c), for sandbox-init.c. */
#pragma once
#include <sys/types.h>

/* The control pipe from the gateway: the holder reads requests from it; PID 1 closes it. */
#define CONTROL_FD 3

/* Serves listen/connect requests for the sandbox whose PID 1 is `init` until PID 1 exits, relaying
 * connections to the gateway's unix socket `relay_socket`; returns an exit status for PID 1's end. */
int serve_network(pid_t init, const char *relay_socket);
