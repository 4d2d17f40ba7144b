// The only place that knows ssh2's connection events. It authenticates level users, opens one
// session (and so one sandbox) per authenticated connection, hands session channels to
// session-channel.ts, refuses what wargate does not offer, and ends the session when the
// connection ends for any reason: clean exit, reset, or a peer gone silent past the keepalive window.
// A login beyond the admission limits is told why on its first session channel and disconnected;
// no sandbox is made for it.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import ssh2, { type AuthContext, type Connection } from 'ssh2';
import type { LevelAuthenticator } from '../auth/level-auth.js';
import { ERRORS, errorCode, type ErrorCode } from '../errors/catalog.js';
import type { Level } from '../games/catalog.js';
import type { ConnectionSession } from '../session/connection-session.js';
import type { SessionManager } from '../session/session-manager.js';
import { handleSessionChannel, refuseSessionChannel } from './session-channel.js';

/** As OpenSSH's MaxAuthTries. */
const MAX_AUTH_ATTEMPTS = 6;
const AUTH_METHODS: ('password' | 'keyboard-interactive')[] = ['password', 'keyboard-interactive'];
/**
 * A refused login is given this long to open the session channel that carries the reason (clients
 * open it at once); one that opens none (ssh -N) is then disconnected all the same.
 */
const REFUSAL_WINDOW_MS = 10_000;
/** After the reason was delivered, how long the client may take to close before the socket is cut. */
const REFUSAL_LINGER_MS = 2_000;

/**
 * ssh2's server offers diffie-hellman-group-exchange but cannot complete it, and starts plain zlib
 * before authentication: neither is offered. (Full algorithm policy: the hardening issue.)
 */
const ALGORITHMS = {
  kex: [
    'curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256', 'ecdh-sha2-nistp384',
    'ecdh-sha2-nistp521', 'diffie-hellman-group16-sha512', 'diffie-hellman-group18-sha512', 'diffie-hellman-group14-sha256',
  ],
  compress: ['none', 'zlib@openssh.com'],
} as const;

export interface SshServerOptions {
  hostKeys: Buffer[];
  keepalive: { intervalSeconds: number; countMax: number };
  authenticator: LevelAuthenticator;
  sessions: SessionManager;
  logger: Logger;
}

export function createSshServer(options: SshServerOptions): ssh2.Server {
  const config = {
    hostKeys: options.hostKeys,
    ident: 'wargate',
    keepaliveInterval: options.keepalive.intervalSeconds * 1000,
    keepaliveCountMax: options.keepalive.countMax,
    algorithms: ALGORITHMS as unknown as ssh2.Algorithms,
  };
  return new ssh2.Server(config, (client: Connection, info: ssh2.ClientInfo) => onConnection(client, info, options));
}

function onConnection(client: Connection, info: ssh2.ClientInfo, { authenticator, sessions, logger }: SshServerOptions): void {
  const socket = (client as unknown as { _sock: Socket })._sock;
  // ssh2 sends several small packets per exchange; with Nagle and delayed ACKs each login waited
  // about 45 ms for nothing (measured by bench/login-latency).
  socket.setNoDelay(true);
  const log = logger.child({ client: info.ip });
  let level: Level | undefined;
  let session: ConnectionSession | undefined;
  let failures = 0;
  let endReason = 'disconnect';
  /** Why this authenticated login gets no session (admission), if it does not. */
  let refused: ErrorCode | undefined;
  let refusalTimer: NodeJS.Timeout | undefined;
  const hangUp = (afterMs: number) => {
    clearTimeout(refusalTimer);
    refusalTimer = setTimeout(() => socket.destroy(), afterMs);
    client.end();
  };

  client.on('error', (err: Error & { level?: string }) => {
    endReason = err.level === 'client-timeout' ? 'keepalive-timeout' : 'connection-error';
    log.info({ event: 'connection.error', reason: endReason, code: errorCode(err), detail: err.message }, 'connection error');
    // ssh2 only half-closes on keepalive timeout; a silent peer would hold the socket open.
    socket.destroy();
  });

  client.on('authentication', (ctx: AuthContext) => {
    const verdict = (accepted: Level | undefined) => {
      if (accepted) {
        level = accepted;
        return ctx.accept();
      }
      if (ctx.method !== 'none') failures++;
      if (failures >= MAX_AUTH_ATTEMPTS) {
        log.info({ event: 'auth.too_many', user: ctx.username }, 'too many authentication failures');
        return client.end();
      }
      ctx.reject(AUTH_METHODS);
    };
    if (ctx.method === 'password') return verdict(authenticator.checkPassword(ctx.username, ctx.password));
    if (ctx.method === 'keyboard-interactive') {
      return ctx.prompt([{ prompt: 'Password: ', echo: false }], (answers) =>
        verdict(answers.length === 1 ? authenticator.checkPassword(ctx.username, answers[0]) : undefined),
      );
    }
    verdict(undefined);
  });

  client.on('ready', () => {
    try {
      session = sessions.open(level!, { address: info.ip, port: info.port });
    } catch (err) {
      // Nothing was created. The player learns why on the first session channel (see REFUSAL_*).
      const code = errorCode(err);
      const entry = { code, user: level!.user.name, detail: (err as Error).message };
      if (code === 'WG_ERR_TOO_MANY_SANDBOXES' || code === 'WG_ERR_TOO_MANY_FROM_ADDRESS') {
        refused = code;
        log.warn({ event: 'admission.refused', ...entry }, 'login refused');
      } else {
        refused = 'WG_ERR_SANDBOX_START';
        log.error({ event: 'session.open_failed', ...entry }, 'session could not be opened');
      }
      refusalTimer = setTimeout(() => hangUp(0), REFUSAL_WINDOW_MS);
      return;
    }
    session.onDisconnect((reason) => {
      endReason = reason;
      client.end();
      socket.destroy();
    });
  });

  client.on('session', (accept, reject) => {
    if (refused) return refuseSessionChannel(accept, ERRORS[refused].player, () => hangUp(REFUSAL_LINGER_MS));
    if (!session) return reject();
    session.touch();
    handleSessionChannel(accept, session, session.log);
  });
  // Forwarding, agent and global requests: the client issue. Refused cleanly until then.
  client.on('tcpip', (_accept, reject) => reject());
  client.on('openssh.streamlocal', (_accept, reject) => reject());
  client.on('request', (_accept, reject) => reject?.());

  client.on('close', () => {
    clearTimeout(refusalTimer);
    if (session) void sessions.close(session, endReason);
  });
}
