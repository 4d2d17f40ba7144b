// One TCP connection to a per-connection challenge port: a fresh sandbox of the game's layer, the
// handler in it as the level user with the connection as its stdin and stdout, and the end of it
// all when the first of these happens: the handler exits, the player hangs up, the wall-clock limit
// passes, an operator kills it, or the sandbox dies (OOM). Ending always destroys the sandbox (so
// whatever the handler or an exploit started is killed) before the connection's slot is given back.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ChallengeSpec } from '../config/schema.js';
import { errorCode } from '../errors/catalog.js';
import type { Game } from '../games/catalog.js';
import type { Sandbox, SandboxBackend, SandboxUser } from '../sandbox/types.js';
import type { Release } from '../session/admission.js';
import type { ClientAddress, SessionInfo } from '../session/connection-session.js';
import { DEFAULT_PATH } from '../session/environment.js';
import { resourceLimits } from '../services/supervised-daemon.js';

/**
 * After the handler's output has been sent, a client that never closes its side is cut this much
 * later; after the client has closed its side, a handler still running is ended this much later (a
 * client that sent its input and shut down its side, as `nc -N` does, gets the answer; one that has
 * gone cannot be told apart from it, and must not hold a sandbox until the wall-clock limit).
 */
const LINGER_MS = 10_000;

/** What a connection needs of its port. */
export interface ChallengeTarget {
  game: Game;
  index: number;
  spec: ChallengeSpec;
  /** The port players connect to (the declared port plus the server's offset). */
  publicPort: number;
  user: SandboxUser;
}

export type ChallengeEndReason = 'handler-exited' | 'client-closed' | 'wall-time' | 'admin-kill' | 'sandbox-ended' | 'start-failed' | 'gateway-stop';

export class ChallengeConnection {
  readonly id = randomBytes(8).toString('hex');
  readonly startedAt = new Date();
  private lastActivity = new Date();
  private sandboxStarting: Promise<Sandbox> | undefined;
  private sandbox: Sandbox | undefined;
  private ending: Promise<void> | undefined;
  private wallTimer: NodeJS.Timeout | undefined;
  private resolveEnded!: () => void;
  /** Settles once the connection has ended and its sandbox is gone. */
  readonly ended = new Promise<void>((resolve) => (this.resolveEnded = resolve));
  readonly log: Logger;

  constructor(
    private readonly target: ChallengeTarget,
    private readonly socket: Socket,
    readonly client: ClientAddress,
    private readonly backend: SandboxBackend,
    logger: Logger,
    private readonly release: Release,
  ) {
    this.log = logger.child({ challenge: this.id, game: target.game.definition.name, port: target.publicPort, client: client.address });
    // No 'data' listener yet: the socket stays paused, keeping what the player sends before the handler runs.
    socket.on('error', () => {});
    socket.once('close', () => void this.end('client-closed'));
    socket.once('end', () => setTimeout(() => void this.end('client-closed'), LINGER_MS).unref());
  }

  /** Starts the sandbox and the handler; resolves once the handler runs (or the connection has ended). */
  async start(): Promise<void> {
    // A connection that waited its turn may be gone already.
    if (this.ending) return;
    const { spec, game, user } = this.target;
    this.wallTimer = setTimeout(() => void this.end('wall-time'), spec.limits.wallSeconds * 1000);
    const started = performance.now();
    this.sandboxStarting = this.backend.create({
      id: this.id,
      purpose: 'challenge',
      hostname: game.definition.hostname,
      layers: game.layers,
      hostUsr: game.hostUsr,
      limits: resourceLimits(spec.limits),
    });
    try {
      const sandbox = (this.sandbox = await this.sandboxStarting);
      if (this.ending) return;
      void sandbox.ended.then(() => void this.end('sandbox-ended'));
      const proc = await sandbox.spawn({
        user,
        command: spec.command,
        env: { PATH: DEFAULT_PATH, CHALLENGE_PORT: String(spec.port), REMOTE_ADDR: this.client.address, REMOTE_PORT: String(this.client.port) },
        cpuSeconds: spec.limits.cpuSeconds,
      });
      this.log.info({ event: 'challenge.start', sandbox: sandbox.id, ms: Math.round(performance.now() - started) }, 'challenge connection started');
      proc.stdin.on('error', () => {});
      this.socket.pipe(proc.stdin);
      this.socket.on('data', () => (this.lastActivity = new Date()));
      proc.stdout.pipe(this.socket, { end: false });
      if (spec.stderr === 'connection') proc.stderr?.pipe(this.socket, { end: false });
      else proc.stderr?.resume();
      void proc.exited.then((status) => {
        this.log.debug({ event: 'challenge.handler_exited', status }, 'handler exited');
        // Its last output is sent before the FIN; a client that never closes its side is cut later.
        this.socket.end();
        setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
        void this.end('handler-exited');
      });
    } catch (err) {
      if (this.ending) return;
      this.log.warn({ event: 'challenge.start_failed', code: errorCode(err), message: (err as Error).message }, 'challenge connection did not start');
      this.socket.end('wargate: the challenge could not start; try again later\n');
      void this.end('start-failed');
    }
  }

  /** Ends the connection and destroys its sandbox; resolves once both are gone. Idempotent. */
  end(reason: ChallengeEndReason): Promise<void> {
    return (this.ending ??= this.finish(reason));
  }

  private async finish(reason: ChallengeEndReason): Promise<void> {
    clearTimeout(this.wallTimer);
    if (reason === 'wall-time' || reason === 'admin-kill' || reason === 'gateway-stop') {
      const why = reason === 'wall-time' ? `its time limit (${this.target.spec.limits.wallSeconds} s)` : 'the operator';
      this.socket.end(`\nwargate: connection ended by ${why}\n`);
      setTimeout(() => this.socket.destroy(), 1000).unref();
    } else if (reason !== 'handler-exited' && reason !== 'start-failed') {
      this.socket.destroy();
    }
    const cleanupStarted = performance.now();
    try {
      const sandbox = await this.sandboxStarting?.catch(() => undefined);
      await sandbox?.destroy();
    } catch (err) {
      // The reaper removes whatever a failed destroy left; the slot is free either way.
      this.log.error({ event: 'challenge.cleanup_failed', code: errorCode(err), message: (err as Error).message }, 'challenge sandbox cleanup failed');
    } finally {
      this.release();
      this.resolveEnded();
    }
    const ms = Date.now() - this.startedAt.getTime();
    this.log.info({ event: 'challenge.end', reason, ms, cleanupMs: Math.round(performance.now() - cleanupStarted) }, 'challenge connection ended');
  }

  info(): SessionInfo {
    return {
      id: this.id,
      game: this.target.game.definition.name,
      level: this.target.user.name,
      client: this.client,
      startedAt: this.startedAt.toISOString(),
      lastActivity: this.lastActivity.toISOString(),
      attached: !this.socket.destroyed,
      challengePort: this.target.publicPort,
      ...((!this.ending && this.sandbox?.stats()) || { memoryBytes: 0, pids: 0 }),
    };
  }
}
