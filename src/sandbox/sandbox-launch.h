/* The last step of every player process, after the helper has become the level user
 * (sandbox-launch.c), for sandbox-spawn.c. */
#pragma once

/* For a terminal session: makes the caller the leader of a new session with its stdin (a terminal)
 * as the controlling terminal, as util-linux `setsid --ctty` does. */
void take_terminal(void);
/* Does what sshd does once it is the user: SHELL becomes WG_SHELL, the working directory $HOME (or
 * / if it cannot be entered), and the shell is executed as "-NAME" for a login (WG_MODE=login) or
 * as "SHELL -c WG_CMD" (WG_MODE=exec). WG_SHELL, WG_MODE, WG_CMD and OLDPWD are removed from the
 * environment, PWD is set. Never returns: on failure, a line on stderr and exit status 127. */
void launch_shell(void) __attribute__((noreturn));
