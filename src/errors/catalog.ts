// The one catalog of wargate's error codes. Each code has a stable name, a message that is safe
// to show a player (never a path, a stack or a secret), and a description for operators.
// docs/errors.md lists the same codes; test/errors-catalog.test.ts keeps the two in sync.

export const ERRORS = {
  WG_ERR_CONFIG_INVALID: {
    player: 'The server is misconfigured.',
    operator: 'A configuration or game file failed validation; the message names file, line and field.',
  },
  WG_ERR_CONFIG_UNREADABLE: {
    player: 'The server is misconfigured.',
    operator: 'A configuration or game file could not be read or parsed as YAML.',
  },
  WG_ERR_LAYER_BUILD: {
    player: 'This game is not available right now.',
    operator: "Building a game's base or layer failed: a compile, a build step (the message names it and quotes its last output), a missing source file, an image that cannot be unpacked.",
  },
  WG_ERR_SANDBOX_START: {
    player: 'Your sandbox could not be started. Please try again.',
    operator: 'sandbox-init (namespaces, mounts, pivot_root, user namespace) failed before the sandbox was ready.',
  },
  WG_ERR_SANDBOX_GONE: {
    player: 'Your sandbox has ended.',
    operator: 'A channel asked for a process in a sandbox that has already been torn down.',
  },
  WG_ERR_FORWARD: {
    player: 'The forwarded connection could not be made inside your sandbox.',
    operator: 'A port forwarding (ssh -L/-W/-R) failed inside the sandbox: nothing listens there, the port is taken, or the address is not allowed.',
  },
  WG_ERR_PROCESS_START: {
    player: 'The command could not be started.',
    operator: 'Entering the sandbox (sandbox-spawn) for a channel failed.',
  },
  WG_ERR_STATE_DIR: {
    player: 'The server is misconfigured.',
    operator: 'The state directory is missing, unwritable, or holds files with unsafe permissions.',
  },
  WG_ERR_HOST_TOOL_MISSING: {
    player: 'The server is misconfigured.',
    operator: "A host tool sandboxes need (bash, sftp-server, or wargate's own C helpers) is not installed.",
  },
  WG_ERR_CGROUP: {
    player: 'Your sandbox could not be started. Please try again.',
    operator: 'Creating, limiting, killing or removing a sandbox cgroup failed, or no usable cgroup hierarchy exists.',
  },
  WG_ERR_TOO_MANY_SANDBOXES: {
    player: 'The server is full right now. Please try again in a few minutes.',
    operator: 'A login was refused: the number of live sandboxes reached admission.maxSandboxes.',
  },
  WG_ERR_TOO_MANY_FROM_ADDRESS: {
    player: 'Too many sessions from your address. Close one and try again.',
    operator: 'A login was refused: its client address already holds admission.maxPerAddress sandboxes.',
  },
  WG_ERR_ADMIN: {
    player: 'The server is misconfigured.',
    operator: 'The admin socket could not be created, or a request to it was malformed or named no live session.',
  },
  WG_ERR_PREAUTH_DEADLINE: {
    player: 'Login timed out.',
    operator: 'A connection had not authenticated within preauth.loginGraceSeconds of its TCP accept and was cut (whether or not it had sent its version line).',
  },
  WG_ERR_PREAUTH_FULL: {
    player: 'The server is busy. Please try again in a moment.',
    operator: 'A new connection was dropped before SSH began: the unauthenticated connections reached preauth.maxStartups (full, or a random early drop past start).',
  },
  WG_ERR_PREAUTH_FROM_ADDRESS: {
    player: 'Too many logins in progress from your address. Please try again in a moment.',
    operator: 'A new connection was dropped before SSH began: its address (IPv6: its /64) already had preauth.maxStartupsPerAddress unauthenticated connections.',
  },
  WG_ERR_REQUEST_RATE: {
    player: 'Your client sent requests too fast and was disconnected.',
    operator: 'A connection sent authentication, global or channel requests (or channel opens) faster than the per-connection rate (src/ssh/request-limits.ts) and was disconnected.',
  },
  WG_ERR_PROTOCOL: {
    player: 'Your client broke the SSH protocol and was disconnected.',
    operator: 'A client violated the SSH protocol (for example channel data beyond the window the gateway advertised, ssh2 issue #1505) and was disconnected.',
  },
} as const;

export type ErrorCode = keyof typeof ERRORS;

/** An error that carries a catalog code; `message` is for operators, `playerMessage` for players. */
export class WargateError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WargateError';
    this.code = code;
  }

  get playerMessage(): string {
    return ERRORS[this.code].player;
  }
}

/** The code of any thrown value, for log lines about failures. */
export function errorCode(err: unknown): string {
  if (err instanceof WargateError) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'WG_ERR_INTERNAL';
}
