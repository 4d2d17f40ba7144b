// The environment a player process starts with: what sshd would set, plus the few variables a client
// may send. Everything else a client sends is refused, as OpenSSH's default AcceptEnv does.
export const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin:/usr/games';
const ACCEPTED_NAME = /^(TERM|LANG|LC_[A-Z]+)$/;
const MAX_VALUE = 256;
export const MAX_ENV_VARS = 32;

/** Whether a client's env request may be honoured. */
export function acceptsEnv(name: string, value: string): boolean {
  return ACCEPTED_NAME.test(name) && value.length <= MAX_VALUE && !/[\0\n]/.test(value);
}

export function baseEnvironment(clientEnv: Record<string, string>, term: string | undefined): Record<string, string> {
  return { PATH: DEFAULT_PATH, ...clientEnv, TERM: term ?? clientEnv.TERM ?? 'dumb' };
}
