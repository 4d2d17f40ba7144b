// The last step of every process started in a sandbox, after sandbox-exec or pty-relay: it runs as
// the level user, goes home and execs the login shell (argv[0] "-bash", as sshd does) or `$SHELL -c CMD`.
// It execs away, so it costs nothing once the player's program runs.

/** Reads WG_MODE (login|exec), WG_SHELL and WG_CMD from the environment and removes them. */
export const LAUNCH_SCRIPT = [
  'export SHELL="$WG_SHELL"',
  'mode=$WG_MODE cmd=$WG_CMD',
  'unset WG_SHELL WG_MODE WG_CMD WG_LAUNCH',
  'cd -- "$HOME" 2>/dev/null || cd /',
  'unset OLDPWD',
  'if [ "$mode" = login ]; then exec -a "-${SHELL##*/}" "$SHELL"; fi',
  'exec "$SHELL" -c "$cmd"',
].join('\n');

const RUN_LAUNCH = `eval "$WG_LAUNCH"`;

/** Without a pty: bash runs the launcher directly. */
export const PLAIN_ARGV = ['/bin/bash', '-c', RUN_LAUNCH];

/**
 * With a pty (given by pty-relay as stdin/stdout/stderr, not yet a controlling terminal): util-linux
 * setsid makes the player's shell the leader of a new session with that terminal as its controlling
 * terminal, so job control works and a hangup reaches the player's processes, not host-side helpers.
 */
export const PTY_ARGV = ['/usr/bin/setsid', '--ctty', ...PLAIN_ARGV];
