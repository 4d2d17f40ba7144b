// The gateway's local admin API (`wargate sessions`, `wargate kill`): a unix socket only root may
// use, serving the protocol of protocol.ts. It owns the socket file from start to stop. No client —
// slow, oversized, malformed or vanished mid-request — may crash or hold the gateway: every failure
// becomes an error reply and a WG_ERR_ADMIN log line.
import { lstatSync, mkdirSync, statSync, unlinkSync, chmodSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { errorCode, WargateError } from '../errors/catalog.js';
import type { SessionInfo } from '../session/connection-session.js';
import { socketPathProblem } from './socket-path.js';
import { failure, MAX_CONNECTIONS, MAX_REQUEST_BYTES, parseRequest, REQUEST_TIMEOUT_MS, type AdminResponse, type ReloadedGame } from './protocol.js';

/** What the admin API needs of the session layer (SessionManager is one). */
export interface SessionDirectory {
  list(): SessionInfo[];
  get(id: string): { info(): SessionInfo; end(reason: string): Promise<void> } | undefined;
}

export interface AdminServerOptions {
  socketPath: string;
  sessions: SessionDirectory;
  /** Reloads the game catalog (`wargate reload`); throws, with the catalog unchanged, on a failure. */
  reload?: () => Promise<ReloadedGame[]>;
  logger: Logger;
}

const CODE = 'WG_ERR_ADMIN';

/*
 * Who may connect. Node cannot read SO_PEERCRED (no getsockopt on net.Socket, and we take no native
 * addon for it), and the ways around it (`ss -xp`, scanning /proc/<pid>/fd) name whoever holds the
 * peer socket now, not who connected, and cost a process per request. So the guard is the kernel's
 * own check at connect(2): the socket file is 0600 and root's, in a directory that only root can
 * write (so nobody can swap the file). Only root, or a process with CAP_DAC_OVERRIDE, gets through.
 */
export class AdminServer {
  private server: Server | undefined;
  private inode: number | undefined;
  private readonly connections = new Set<Socket>();

  constructor(private readonly options: AdminServerOptions) {}

  async start(): Promise<void> {
    const { socketPath, logger } = this.options;
    const problem = socketPathProblem(socketPath);
    if (problem) throw new WargateError(CODE, problem);
    assertSafeDirectory(dirname(socketPath));
    await removeStaleSocket(socketPath);
    const server = (this.server = createServer({ allowHalfOpen: true }, (socket) => this.onConnection(socket)));
    server.maxConnections = MAX_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new WargateError(CODE, `cannot listen on ${socketPath}: ${err.message}`, { cause: err })));
      // A unix socket's file gets its mode from the umask at bind(2), which listen() calls
      // synchronously for a path: 0600 from birth, not after a window that a chmod would close.
      // (The umask is process-wide; the gateway creates no file while this runs, at its start.)
      const umask = process.umask(0o177);
      try {
        server.listen(socketPath, () => resolve());
      } finally {
        process.umask(umask);
      }
    });
    server.removeAllListeners('error');
    server.on('error', (err) => logger.error({ err, code: CODE, event: 'admin.error' }, 'admin socket error'));
    chmodSync(socketPath, 0o600);
    this.inode = lstatSync(socketPath).ino;
    logger.info({ event: 'admin.listening', socket: socketPath }, 'admin socket listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const socket of this.connections) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // libuv unlinks the file on close; this covers the rest, and never removes another's socket.
    try {
      if (lstatSync(this.options.socketPath).ino === this.inode) unlinkSync(this.options.socketPath);
    } catch {
      // already gone
    }
  }

  private onConnection(socket: Socket): void {
    const { logger } = this.options;
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', (err) => logger.debug({ event: 'admin.connection_error', detail: err.message }, 'admin connection error'));
    let buffered = Buffer.alloc(0);
    let answered = false;
    const answer = (line: string | undefined, refusal?: string) => {
      if (answered) return;
      answered = true;
      socket.setTimeout(0);
      void this.reply(line, refusal).then((response) => {
        if (socket.destroyed || !socket.writable) return socket.destroy();
        socket.end(JSON.stringify(response) + '\n');
        // A client that never closes its side must not keep a connection slot.
        socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
      });
    };
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => answer(undefined, `no complete request line within ${REQUEST_TIMEOUT_MS / 1000} s`));
    socket.on('data', (chunk: Buffer) => {
      if (answered) return;
      buffered = Buffer.concat([buffered, chunk]);
      const newline = buffered.indexOf(0x0a);
      if (newline === -1 ? buffered.length > MAX_REQUEST_BYTES : newline > MAX_REQUEST_BYTES) {
        return answer(undefined, `request longer than ${MAX_REQUEST_BYTES} bytes`);
      }
      if (newline !== -1) answer(buffered.subarray(0, newline).toString('utf8'));
    });
    // A client may half-close instead of ending its line with a newline.
    socket.on('end', () => answer(buffered.length > 0 ? buffered.toString('utf8') : undefined, buffered.length > 0 ? undefined : 'empty request'));
  }

  /** The answer to one request line (or to a refusal decided before it was read). Never throws. */
  private async reply(line: string | undefined, refusal: string | undefined): Promise<AdminResponse> {
    const { sessions, logger } = this.options;
    try {
      const request = refusal === undefined && line !== undefined ? parseRequest(line) : { malformed: refusal ?? 'empty request' };
      if ('malformed' in request) {
        logger.warn({ event: 'admin.bad_request', code: CODE, reason: request.malformed }, 'admin request refused');
        return failure(request.malformed);
      }
      if (request.op === 'list') {
        logger.debug({ event: 'admin.list' }, 'admin list');
        return { ok: true, sessions: sessions.list() };
      }
      if (request.op === 'reload') {
        if (!this.options.reload) return failure('this gateway cannot reload its games yet (still starting)');
        try {
          return { ok: true, reloaded: await this.options.reload() };
        } catch (err) {
          // The gateway has logged it; the operator gets the reason (a bad game.yaml: file, line, field).
          return failure(`reload failed, still serving the games loaded before: ${errorCode(err)}: ${(err as Error).message}`);
        }
      }
      const session = sessions.get(request.id);
      if (!session) {
        logger.warn({ event: 'admin.kill_unknown', code: CODE, session: request.id }, 'admin kill of an unknown session');
        return failure(`no live session with id ${JSON.stringify(request.id)}`);
      }
      const ended = session.info();
      logger.info({ event: 'admin.kill', session: ended.id, user: ended.level, client: ended.client.address }, 'ending session on admin request');
      await session.end('admin-kill');
      return { ok: true, ended };
    } catch (err) {
      logger.error({ err, code: CODE, event: 'admin.failed' }, 'admin request failed');
      return failure(`the gateway failed to answer: ${(err as Error).message}`);
    }
  }
}

/** The socket's directory must be root's and writable by nobody else, or the file could be swapped. */
function assertSafeDirectory(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new WargateError(CODE, `cannot create ${dir} for the admin socket: ${(err as Error).message}`, { cause: err });
  }
  const st = statSync(dir);
  if (st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) {
    throw new WargateError(CODE, `${dir} holds the admin socket, so it must belong to root and be writable by nobody else (it is uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)})`);
  }
}

/** Removes a socket file that a killed gateway left; refuses if something still listens on it. */
async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new WargateError(CODE, `${path} exists and is not a socket; not touching it`);
  const probe = await new Promise<'stale' | 'listening' | Error>((resolve) => {
    const client = connect(path);
    const done = (result: 'stale' | 'listening' | Error) => {
      client.destroy();
      resolve(result);
    };
    client.setTimeout(1000, () => done('listening')); // accepted by the kernel, never answered: held
    client.once('connect', () => done('listening'));
    client.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'stale' : err));
  });
  if (probe === 'listening') throw new WargateError(CODE, `another process (another gateway?) is listening on ${path}`);
  if (probe instanceof Error) throw new WargateError(CODE, `cannot tell whether ${path} is stale: ${probe.message}`, { cause: probe });
  unlinkSync(path);
}
