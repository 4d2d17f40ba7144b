// One long-running program of a game in a sandbox of its own (made as a session's would be, with the
// game's layers), run as a level user, restarted with backoff whenever it exits, each exit logged.
// Localhost services (`mode: daemon`) and public challenge ports (`mode: daemon`) both run theirs
// here; the gateway reaches the program only through its sandbox's loopback (connect()).
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { parseSize } from '../config/schema.js';
import { errorCode, WargateError } from '../errors/catalog.js';
import type { Game } from '../games/catalog.js';
import type { ExitStatus, ResourceLimits, Sandbox, SandboxBackend, SandboxProcess, SandboxUser } from '../sandbox/types.js';
import { RestartBackoff } from './restart-backoff.js';

/** A daemon's environment: only what it needs to find programs, plus what its spec adds. */
const DAEMON_PATH = '/usr/bin:/bin';

export interface DaemonSpec {
  game: Game;
  /** The level user, with /bin/sh for the command. */
  user: SandboxUser;
  command: string;
  env?: Record<string, string>;
  /** Its sandbox's limits. */
  limits: { memory: string; pids: number; cpuWeight: number; writableSize: string; writableInodes: number };
  /** 'service' or 'challenge': its log lines are EVENT.started, EVENT.crashed, ... */
  event: string;
  /** Fields of each of its log lines (game, index, port). */
  fields: Record<string, unknown>;
}

export function resourceLimits(limits: DaemonSpec['limits']): ResourceLimits {
  return {
    memoryBytes: parseSize(limits.memory),
    pids: limits.pids,
    cpuWeight: limits.cpuWeight,
    writableSize: limits.writableSize,
    writableInodes: limits.writableInodes,
  };
}

export class SupervisedDaemon {
  private sandbox: Sandbox | undefined;
  private sandboxEnded = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private runs = 0;
  /** When the running program started (for `wargate sessions`). */
  startedAt = new Date();

  constructor(
    private readonly spec: DaemonSpec,
    private readonly backend: SandboxBackend,
    private readonly logger: Logger,
    private readonly backoff: RestartBackoff,
  ) {}

  private event(name: string): string {
    return `${this.spec.event}.${name}`;
  }

  /** Its sandbox while it has one (for `wargate sessions`). */
  get liveSandbox(): Sandbox | undefined {
    return this.sandboxEnded ? undefined : this.sandbox;
  }

  async start(): Promise<void> {
    if (this.stopped) return;
    const started = Date.now();
    const { fields } = this.spec;
    let proc: SandboxProcess;
    try {
      const sandbox = await this.ensureSandbox();
      proc = await sandbox.spawn({ user: this.spec.user, command: this.spec.command, env: { PATH: DAEMON_PATH, ...this.spec.env } });
    } catch (err) {
      if (this.stopped) return;
      this.logger.error({ event: this.event('start_failed'), ...fields, code: errorCode(err), message: (err as Error).message }, 'daemon did not start');
      return this.restartLater(Date.now() - started);
    }
    this.runs++;
    this.startedAt = new Date();
    proc.stdin.end();
    const output = (stream: 'stdout' | 'stderr') => (data: Buffer) =>
      this.logger.debug({ event: this.event('output'), ...fields, stream, text: data.toString('utf8', 0, Math.min(data.length, 512)) }, 'daemon output');
    proc.stdout.on('data', output('stdout'));
    proc.stderr?.on('data', output('stderr'));
    this.logger.info({ event: this.event('started'), ...fields, run: this.runs, sandbox: this.sandbox!.id }, 'daemon started');
    void proc.exited.then((status) => {
      if (this.stopped) return;
      const upMs = Date.now() - started;
      this.logger.warn({ event: this.event('crashed'), ...fields, run: this.runs, status: describe(status), upMs }, 'daemon exited');
      this.restartLater(upMs);
    });
  }

  private restartLater(upMs: number): void {
    if (this.stopped) return;
    const inMs = this.backoff.next(upMs);
    this.logger.info({ event: this.event('restart'), ...this.spec.fields, inMs }, 'daemon restarts after a pause');
    this.timer = setTimeout(() => void this.start(), inMs);
  }

  /** The daemon's sandbox, made again if it ended (its PID 1 killed by hand or by the OOM killer). */
  private async ensureSandbox(): Promise<Sandbox> {
    if (this.sandbox && !this.sandboxEnded) return this.sandbox;
    const { game } = this.spec;
    const sandbox = await this.backend.create({
      id: randomBytes(8).toString('hex'),
      purpose: 'daemon',
      hostname: game.definition.hostname,
      layers: game.layers,
      hostUsr: game.hostUsr,
      limits: resourceLimits(this.spec.limits),
    });
    this.sandbox = sandbox;
    this.sandboxEnded = false;
    void sandbox.ended.then(() => {
      if (this.sandbox === sandbox) this.sandboxEnded = true;
    });
    // stop() may have come while it was being made.
    if (this.stopped) await sandbox.destroy();
    return sandbox;
  }

  /** A connection to the daemon from inside its own sandbox's network namespace. */
  async connect(port: number): Promise<Duplex> {
    if (!this.sandbox || this.sandboxEnded || this.stopped) throw new WargateError('WG_ERR_FORWARD', 'the daemon is not running');
    return this.sandbox.connect('127.0.0.1', port);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.sandbox?.destroy();
    this.logger.info({ event: this.event('stopped'), ...this.spec.fields }, 'daemon stopped');
  }
}

const describe = (status: ExitStatus) => ('code' in status ? `exit ${status.code}` : `signal ${status.signal}`);
