// One authenticated SSH connection and the sandbox it owns. Every channel of the connection runs in
// that one sandbox. The sandbox starts as soon as the login succeeds (so the first channel finds it
// ready) and is destroyed when the connection ends, whatever the reason, including its own idle
// timeout and maximum length (session-timers.ts), which are cleared the moment it closes.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { parseSize, type SandboxLimits } from '../config/schema.js';
import { errorCode } from '../errors/catalog.js';
import type { Level } from '../games/catalog.js';
import type { PtySpec, Sandbox, SandboxBackend, SandboxProcess } from '../sandbox/types.js';
import { baseEnvironment } from './environment.js';
import { endText, SessionTimers, warningText, type TimeoutReason } from './session-timers.js';

/** How long the notice that a session has ended (timeouts) precedes the disconnect. */
const LAST_WORDS_MS = 250;

export interface ChannelRequest {
  /** undefined: the login shell. */
  command?: string;
  pty?: PtySpec;
  /** Accepted client variables (see environment.ts). */
  env: Record<string, string>;
}

export interface ClientAddress {
  address: string;
  port: number;
}

/** What `wargate sessions` shows of one session. */
export interface SessionInfo {
  id: string;
  game: string;
  level: string;
  client: ClientAddress;
  startedAt: string;
  lastActivity: string;
  /** Whether an SSH connection is attached (the sandbox lives while one is). */
  attached: boolean;
  memoryBytes: number;
  pids: number;
}

export class ConnectionSession {
  readonly id = randomBytes(8).toString('hex');
  readonly startedAt = new Date();
  private readonly sandbox: Promise<Sandbox>;
  /** The server's defaults with the game's overrides. */
  readonly limits: SandboxLimits;
  private closing: Promise<void> | undefined;
  readonly log: Logger;
  /** Last input from the client (data on any channel, or a new channel). */
  lastActivity = new Date();
  attached = true;
  private disconnect: ((reason: string) => void) | undefined;
  private readonly terminals = new Set<(text: string) => void>();
  /** The sandbox once it has started (for its stats). */
  private ready: Sandbox | undefined;
  private readonly timers: SessionTimers;
  private lastWords: NodeJS.Timeout | undefined;

  constructor(
    readonly level: Level,
    readonly client: ClientAddress,
    backend: SandboxBackend,
    defaults: SandboxLimits,
    logger: Logger,
  ) {
    this.log = logger.child({ session: this.id, user: level.user.name, client: client.address });
    const game = level.game.definition;
    this.limits = { ...defaults, ...game.limits };
    this.timers = new SessionTimers(this.limits, {
      warn: (reason, secondsLeft) => {
        this.log.info({ event: 'session.warning', reason, secondsLeft }, 'session end announced');
        this.notify(warningText(reason, secondsLeft, this.limits));
      },
      end: (reason) => this.timedOut(reason),
    });
    this.sandbox = backend.create({
      id: this.id,
      hostname: game.hostname,
      layers: level.game.layers,
      limits: {
        memoryBytes: parseSize(this.limits.memory),
        pids: this.limits.pids,
        cpuWeight: this.limits.cpuWeight,
        writableSize: this.limits.writableSize,
        writableInodes: this.limits.writableInodes,
      },
    });
    // A failure is reported to the channel that needs the sandbox; here it must not go unhandled.
    this.sandbox.then(
      // A sandbox that ends on its own (its PID 1 killed) takes the connection with it.
      (sandbox) => {
        this.ready = sandbox;
        void sandbox.ended.then(() => this.end('sandbox-ended'));
      },
      (err) => this.log.error({ err, code: errorCode(err), event: 'sandbox.failed' }, 'sandbox failed to start'),
    );
  }

  /** Records client activity (for the idle timeout and `wargate sessions`). */
  touch(): void {
    this.lastActivity = new Date();
    this.timers.touch();
  }

  private timedOut(reason: TimeoutReason): void {
    if (this.terminals.size === 0) return void this.end(reason);
    this.notify(endText(reason, this.limits));
    // OpenSSH's client exits on a disconnect without writing out terminal output it has read in the
    // same go: the last line would be lost. It is given a moment to arrive on its own first.
    this.lastWords = setTimeout(() => void this.end(reason), LAST_WORDS_MS);
  }

  /** The SSH layer registers how to drop the client's connection. */
  onDisconnect(fn: (reason: string) => void): void {
    this.disconnect = fn;
  }

  /** Ends the session from the server's side: the client is disconnected and the sandbox destroyed. */
  async end(reason: string): Promise<void> {
    if (this.closing) return this.closing;
    this.disconnect?.(reason);
    await this.close(reason);
  }

  /** An interactive terminal of this session, for notices such as timeout warnings. */
  addTerminal(write: (text: string) => void): () => void {
    this.terminals.add(write);
    return () => this.terminals.delete(write);
  }

  /** Writes a line to every interactive terminal of the session. */
  notify(text: string): void {
    for (const write of this.terminals) write(`\r\n*** ${text} ***\r\n`);
  }

  info(): SessionInfo {
    return {
      id: this.id,
      game: this.level.game.definition.name,
      level: this.level.user.name,
      client: this.client,
      startedAt: this.startedAt.toISOString(),
      lastActivity: this.lastActivity.toISOString(),
      attached: this.attached,
      ...(this.ready?.stats() ?? { memoryBytes: 0, pids: 0 }),
    };
  }

  async start(request: ChannelRequest): Promise<SandboxProcess> {
    const sandbox = await this.sandbox;
    return sandbox.spawn({
      user: this.level.user,
      command: request.command,
      pty: request.pty,
      env: baseEnvironment(request.env, request.pty?.term),
    });
  }

  /** Text shown before an interactive login shell: the game's banner and the level's goal. */
  welcome(): string {
    const parts = [this.level.game.definition.banner, this.level.definition.goal].filter((s): s is string => !!s);
    return parts.map((p) => p.trimEnd() + '\n').join('\n');
  }

  /** Ends the sandbox: every process killed, every byte freed. Idempotent. */
  close(reason: string): Promise<void> {
    this.timers.stop();
    clearTimeout(this.lastWords);
    this.closing ??= (async () => {
      const started = performance.now();
      try {
        const sandbox = await this.sandbox;
        await sandbox.destroy();
      } catch {
        // never started: nothing to destroy
      }
      this.log.info({ event: 'session.end', reason, cleanupMs: Math.round(performance.now() - started) }, 'session ended');
    })();
    return this.closing;
  }
}
