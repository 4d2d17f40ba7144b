// The last step of every process started in a sandbox, after nsenter and setpriv: it runs as the
// level user, goes home and execs the login shell (argv[0] "-bash", as sshd does) or `$SHELL -c CMD`.
// It execs away, so it costs nothing once the player's program runs.

/** Reads WG_MODE (login|exec), WG_SHELL and WG_CMD from the environment and removes them. */
export const LAUNCH_SCRIPT = [
  'export SHELL="$WG_SHELL"',
  'mode=$WG_MODE cmd=$WG_CMD',
  'unset WG_SHELL WG_MODE WG_CMD WG_LAUNCH',
  'cd -- "$HOME" 2>/dev/null || cd /',
  'if [ "$mode" = login ]; then exec -a "-${SHELL##*/}" "$SHELL"; fi',
  'exec "$SHELL" -c "$cmd"',
].join('\n');

const RUN_LAUNCH = `eval "$WG_LAUNCH"`;

/** Without a pty: bash runs the launcher directly. */
export const PLAIN_ARGV = ['/bin/bash', '-c', RUN_LAUNCH];

/**
 * With a pty, util-linux `script` allocates the terminal from the sandbox's own devpts and relays
 * it to the gateway's host-side pty (so `tty` names /dev/pts/N inside, and resizes follow).
 * `script -c` runs its command with $SHELL, which is therefore /bin/sh until the launcher sets it.
 */
export const PTY_ARGV = ['/usr/bin/env', '--default-signal=HUP', '/usr/bin/script', '--quiet', '--flush', '--return', '--command', `exec /bin/bash -c '${RUN_LAUNCH}'`, '/dev/null'];

/**
 * Runs the host-side nsenter of a pty session with SIGHUP ignored (PTY_ARGV restores it inside).
 * A hangup of the host pty (the client left, or the gateway died) then reaches the relay inside,
 * while nsenter lives on to reap it. Were nsenter to die first, the relay would be adopted by the
 * host's init (nsenter is outside the sandbox's pid namespace), and the sandbox's teardown would
 * wait for however long that init takes to reap it (seconds, on some hosts).
 */
export const PTY_HOST_PREFIX = ['/usr/bin/env', '--ignore-signal=HUP'];
