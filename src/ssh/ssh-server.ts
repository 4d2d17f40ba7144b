// The only place that knows ssh2's connection events. It authenticates level users, opens one
// session (and so one sandbox) per authenticated connection, hands session channels to
// session-channel.ts, refuses what wargate does not offer, and ends the session when the
// connection ends for any reason: clean exit, reset, or a peer gone silent past the keepalive window.
// A login beyond the admission limits is told why on its first session channel and disconnected;
// no sandbox is made for it. Every connection reaches it through the pre-authentication gate
// (preauth-gate.ts); answers to guesses wait out their source's penalty (auth-penalties.ts).
import { isIPv6, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import ssh2, { type AuthContext, type Connection } from 'ssh2';
import type { LevelAuthenticator } from '../auth/level-auth.js';
import { ERRORS, errorCode, WargateError, type ErrorCode } from '../errors/catalog.js';
import type { Level } from '../games/catalog.js';
import type { ClientAddress, ConnectionSession } from '../session/connection-session.js';
import type { SessionManager } from '../session/session-manager.js';
import { isSha1Signature, sshAlgorithms } from './algorithms.js';
import type { AuthPenalties } from './auth-penalties.js';
import { LocalForwards, RemoteForwards } from './forwarding.js';
import type { PreauthGate } from './preauth-gate.js';
import { limitRequests, REQUEST_BURST, REQUESTS_PER_SECOND } from './request-limits.js';
import { handleSessionChannel, refuseSessionChannel } from './session-channel.js';

/** As OpenSSH's MaxAuthTries. */
const MAX_AUTH_ATTEMPTS = 6;
const AUTH_METHODS: ('publickey' | 'password' | 'keyboard-interactive')[] = ['publickey', 'password', 'keyboard-interactive'];
/**
 * A refused login is given this long to open the session channel that carries the reason (clients
 * open it at once); one that opens none (ssh -N) is then disconnected all the same.
 */
const REFUSAL_WINDOW_MS = 10_000;
/** After the reason was delivered, how long the client may take to close before the socket is cut. */
const REFUSAL_LINGER_MS = 2_000;

export interface SshServerOptions {
  hostKeys: Buffer[];
  keepalive: { intervalSeconds: number; countMax: number };
  /** Session channels open at once per connection (OpenSSH's MaxSessions). */
  maxSessions: number;
  authenticator: LevelAuthenticator;
  sessions: SessionManager;
  /** Counts this connection as unauthenticated until told it authenticated. */
  gate: PreauthGate;
  penalties: AuthPenalties;
  logger: Logger;
}

export function createSshServer(options: SshServerOptions): ssh2.Server {
  const config = {
    hostKeys: options.hostKeys,
    ident: 'wargate',
    keepaliveInterval: options.keepalive.intervalSeconds * 1000,
    keepaliveCountMax: options.keepalive.countMax,
    algorithms: sshAlgorithms(),
  };
  return new ssh2.Server(config, (client: Connection, info: ssh2.ClientInfo) => onConnection(client, info, options));
}

function onConnection(client: Connection, info: ssh2.ClientInfo, { authenticator, sessions, logger, maxSessions, gate, penalties }: SshServerOptions): void {
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
  let forwards: RemoteForwards | undefined;
  let locals: LocalForwards | undefined;
  /** The live session a "LEVEL+TOKEN" login joins, and how this connection leaves its session. */
  let joining: ConnectionSession | undefined;
  let detach: (() => number) | undefined;
  /** Session channels open now: each holds a process in the sandbox, so their number is capped. */
  let openSessions = 0;
  const hangUp = (afterMs: number) => {
    clearTimeout(refusalTimer);
    refusalTimer = setTimeout(() => socket.destroy(), afterMs);
    client.end();
  };

  limitRequests(client, (requests) => {
    endReason = 'request-flood';
    const limit = { perSecond: REQUESTS_PER_SECOND, burst: REQUEST_BURST };
    log.warn({ event: 'connection.request_flood', code: 'WG_ERR_REQUEST_RATE', requests, ...limit }, 'requests too fast: disconnected');
    hangUp(0);
  });

  client.on('error', (err: Error & { level?: string }) => {
    endReason = err.level === 'client-timeout' ? 'keepalive-timeout' : err.level === 'protocol' ? 'protocol-error' : 'connection-error';
    const code = err.level === 'protocol' ? 'WG_ERR_PROTOCOL' : errorCode(err);
    log.info({ event: 'connection.error', reason: endReason, code, detail: err.message }, 'connection error');
    // ssh2 only half-closes on keepalive timeout; a silent peer would hold the socket open.
    socket.destroy();
  });

  client.on('authentication', (ctx: AuthContext) => {
    // "level0+TOKEN": the password of level0, into the live sandbox whose join token is TOKEN.
    const [user, token] = splitJoin(ctx.username);
    const joinable = (accepted: Level | undefined) => {
      if (!accepted || token === undefined) return accepted;
      joining = sessions.findJoinable(accepted, token);
      return joining && accepted;
    };
    const check = (password: string) => joinable(authenticator.checkPassword(user, password));
    const verdict = (accepted: Level | undefined) => {
      // A key the client merely asks about is no guess: like "none", it is not counted (sshd counts
      // it, which locks out players whose agent holds more keys than MaxAuthTries), nor delayed.
      const guess = ctx.method !== 'none' && !(ctx.method === 'publickey' && !ctx.signature);
      if (!accepted && guess) failures++;
      const answer = () => {
        if (socket.destroyed) return;
        if (accepted) {
          level = accepted;
          return ctx.accept();
        }
        if (failures >= MAX_AUTH_ATTEMPTS) {
          log.info({ event: 'auth.too_many', user: ctx.username, failures }, 'too many authentication failures');
          return client.end();
        }
        ctx.reject(AUTH_METHODS);
      };
      if (guess) penalties.answer(info.ip, !accepted, answer);
      else answer();
    };
    if (ctx.method === 'password') return verdict(check(ctx.password));
    // SHA-1 signatures (ssh-rsa, ssh-dss) are refused, as by OpenSSH since 8.8 (algorithms.ts).
    if (ctx.method === 'publickey' && isSha1Signature(ctx.key, ctx.hashAlgo)) return verdict(undefined);
    if (ctx.method === 'publickey') {
      // Without a signature the client only asks whether this key would do (and says so).
      if (!ctx.signature) return authenticator.checkKey(user, ctx.key) ? ctx.accept() : verdict(undefined);
      return verdict(joinable(authenticator.checkKey(user, ctx.key, { blob: ctx.blob!, signature: ctx.signature, hashAlgo: ctx.hashAlgo })));
    }
    if (ctx.method === 'keyboard-interactive') {
      return ctx.prompt([{ prompt: 'Password: ', echo: false }], (answers) => verdict(answers.length === 1 ? check(answers[0]) : undefined));
    }
    verdict(undefined);
  });

  client.on('ready', () => {
    gate.authenticated(socket);
    try {
      if (joining && !joining.open) throw new WargateError('WG_ERR_SANDBOX_GONE', 'the sandbox to join has ended');
      session = joining ?? sessions.open(level!, { address: info.ip, port: info.port });
      if (joining) session.log.info({ event: 'session.join', from: info.ip }, 'connection joined the session');
    } catch (err) {
      // Nothing was created. The player learns why on the first session channel (see REFUSAL_*).
      const code = errorCode(err);
      const entry = { code, user: level!.user.name, detail: (err as Error).message };
      if (code === 'WG_ERR_TOO_MANY_SANDBOXES' || code === 'WG_ERR_TOO_MANY_FROM_ADDRESS') {
        refused = code;
        log.warn({ event: 'admission.refused', ...entry }, 'login refused');
      } else if (code === 'WG_ERR_SANDBOX_GONE') {
        refused = code;
        log.info({ event: 'session.join_failed', ...entry }, 'the session to join has ended');
      } else {
        refused = 'WG_ERR_SANDBOX_START';
        log.error({ event: 'session.open_failed', ...entry }, 'session could not be opened');
      }
      refusalTimer = setTimeout(() => hangUp(0), REFUSAL_WINDOW_MS);
      return;
    }
    forwards = new RemoteForwards(client, session);
    locals = new LocalForwards(session);
    detach = session.attach((reason) => {
      endReason = reason;
      client.end();
      socket.destroy();
    });
  });

  client.on('session', (accept, reject) => {
    if (refused) return refuseSessionChannel(accept, ERRORS[refused].player, () => hangUp(REFUSAL_LINGER_MS));
    if (!session) return reject();
    if (openSessions >= maxSessions) {
      session.log.info({ event: 'channel.refused', reason: 'max-sessions', maxSessions }, 'too many session channels');
      return reject();
    }
    session.touch();
    // A slot is freed when the client closes the channel (ssh2 emits 'close' then, whatever ran in it).
    const counted = () => {
      const channel = accept();
      openSessions++;
      channel.once('close', () => openSessions--);
      return channel;
    };
    handleSessionChannel(counted, session, session.log);
  });
  // Port forwarding happens inside the sandbox (forwarding.ts). Unix-socket forwarding has no listener:
  // ssh2 then answers direct-streamlocal opens "administratively prohibited", as sshd does with it disabled.
  client.on('tcpip', (accept, reject, info) => (locals ? locals.handle(accept, reject, info) : reject()));
  client.on('request', (accept, reject, name, info) => {
    if (!session || !forwards?.handle(name, info as ssh2.TcpipBindInfo, accept, reject)) reject?.();
  });

  client.on('close', () => {
    forwards?.closeAll();
    clearTimeout(refusalTimer);
    if (session && detach) void sessions.leave(session, detach, endReason);
  });
}

/** "level0+TOKEN" -> ["level0", "TOKEN"]; a plain user name has no token. */
function splitJoin(username: string): [string, string | undefined] {
  const plus = username.indexOf('+');
  return plus < 0 ? [username, undefined] : [username.slice(0, plus), username.slice(plus + 1)];
}

/**
 * Hands the server a connection that did not come from its own listener (one relayed from inside a
 * sandbox), under the address of the player whose sandbox it came from: logs, admission and
 * `wargate sessions` then name that player.
 */
export function injectConnection(server: ssh2.Server, gate: PreauthGate, socket: Duplex, origin: ClientAddress): void {
  Object.defineProperties(socket, {
    remoteAddress: { value: origin.address },
    remotePort: { value: origin.port },
    remoteFamily: { value: isIPv6(origin.address) ? 'IPv6' : 'IPv4' },
  });
  gate.admit(socket, origin.address, () => server.injectSocket(socket as Socket));
}
