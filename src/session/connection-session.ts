// One authenticated SSH connection and the sandbox it owns. Every channel of the connection runs in
// that one sandbox. The sandbox starts as soon as the login succeeds (so the first channel finds it
// ready) and is destroyed when the connection ends, whatever the reason, including its own idle
// timeout and maximum length (session-timers.ts), which are cleared the moment it closes.
import { randomBytes, randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { parseSize, type SandboxLimits } from '../config/schema.js';
import { errorCode } from '../errors/catalog.js';
import type { Level } from '../games/catalog.js';
import type { Duplex } from 'node:stream';
import type { Peer, PtySpec, Sandbox, SandboxBackend, SandboxListener, SandboxProcess } from '../sandbox/types.js';
import { baseEnvironment } from './environment.js';
import { endText, SessionTimers, warningText, type TimeoutReason } from './session-timers.js';

/** How long the notice that a session has ended (timeouts) precedes the disconnect. */
const LAST_WORDS_MS = 250;

/** Join tokens: 12 characters that cannot be misread (no 0/o, 1/l/i): about 59 bits. */
const TOKEN_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const TOKEN_LENGTH = 12;
const newJoinToken = () => Array.from({ length: TOKEN_LENGTH }, () => TOKEN_ALPHABET[randomInt(TOKEN_ALPHABET.length)]).join('');

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

/**
 * The gateway's own SSH port, offered inside every sandbox on its loopback (so `ssh level1@localhost
 * -p 2220` and `git clone ssh://...@localhost:2220/...` work from a shell inside).
 */
export interface LoopbackSsh {
  /** The port inside (the gateway's public port: what players are told to use). */
  readonly port: number;
  /** Takes one connection made inside a sandbox whose player came from `origin`. */
  accept(socket: Duplex, origin: ClientAddress): void;
}

/** The game's localhost services (src/services/), opened on the loopback of each sandbox as it starts. */
export interface SandboxServices {
  offer(sandbox: Sandbox, level: Level, log: Logger): void;
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
  /** Set for a connection to a public challenge port (src/challenges/): that port. */
  challengePort?: number;
}

export class ConnectionSession {
  readonly id = randomBytes(8).toString('hex');
  /** Shown at login: `ssh LEVEL+TOKEN@host` opens another connection into this same sandbox. */
  readonly joinToken = newJoinToken();
  readonly startedAt = new Date();
  private readonly sandbox: Promise<Sandbox>;
  /** The server's defaults with the game's overrides. */
  readonly limits: SandboxLimits;
  private closing: Promise<void> | undefined;
  readonly log: Logger;
  /** Last input from the client (data on any channel, or a new channel). */
  lastActivity = new Date();
  /** How to drop each attached connection's client; the sandbox lives while one is attached. */
  private readonly connections = new Set<(reason: string) => void>();
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
    loopbackSsh?: LoopbackSsh,
    services?: SandboxServices,
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
      purpose: 'session',
      hostname: game.hostname,
      layers: level.game.layers,
      hostUsr: level.game.hostUsr,
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
        if (loopbackSsh) this.offerSsh(sandbox, loopbackSsh);
        services?.offer(sandbox, level, this.log);
      },
      (err) => this.log.error({ err, code: errorCode(err), event: 'sandbox.failed' }, 'sandbox failed to start'),
    );
  }

  /** The gateway's SSH port on the sandbox's loopback, IPv4 and IPv6 (listeners go with the sandbox). */
  private offerSsh(sandbox: Sandbox, ssh: LoopbackSsh): void {
    for (const address of ['127.0.0.1', '::1']) {
      sandbox.listen(address, ssh.port, (socket) => ssh.accept(socket, this.client)).catch((err: Error) => {
        // A sandbox that ended while the port was being opened (a client gone at once) is no news.
        if (!this.open) return;
        this.log.warn({ event: 'sandbox.ssh_port_failed', address, port: ssh.port, code: errorCode(err), message: err.message }, 'no SSH port inside the sandbox');
      });
    }
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

  /**
   * Attaches a connection: the SSH layer tells how to drop its client. Returns the detach function,
   * which answers how many connections are still attached.
   */
  attach(disconnect: (reason: string) => void): () => number {
    this.connections.add(disconnect);
    return () => {
      this.connections.delete(disconnect);
      return this.connections.size;
    };
  }

  get attached(): boolean {
    return this.connections.size > 0;
  }

  /** Whether the session still takes connections (it has not begun to close). */
  get open(): boolean {
    return this.closing === undefined;
  }

  /** Ends the session from the server's side: every client is disconnected and the sandbox destroyed. */
  async end(reason: string): Promise<void> {
    if (this.closing) return this.closing;
    for (const disconnect of this.connections) disconnect(reason);
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

  /** The sandbox once it has started, while the session is open (cron runs the game's jobs in it). */
  get liveSandbox(): Sandbox | undefined {
    return this.open ? this.ready : undefined;
  }

  /** The sandbox's host name (the game's). */
  get hostname(): string {
    return this.level.game.definition.hostname;
  }

  /** Listens inside the sandbox's network namespace (see Sandbox.listen). */
  async listen(address: string, port: number, onConnection: (socket: Duplex, peer: Peer) => void): Promise<SandboxListener> {
    return (await this.sandbox).listen(address, port, onConnection);
  }

  /** Connects from inside the sandbox's network namespace (see Sandbox.connect). */
  async connect(address: string, port: number): Promise<Duplex> {
    return (await this.sandbox).connect(address, port);
  }

  /** Text shown before an interactive login shell: the game's banner and the level's goal. */
  welcome(): string {
    const join = `A second terminal in this same sandbox: log in as ${this.level.user.name}+${this.joinToken} (same password).`;
    const parts = [this.level.game.definition.banner, this.level.definition.goal, join].filter((s): s is string => !!s);
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
