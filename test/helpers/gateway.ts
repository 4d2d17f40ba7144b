// Starts the real gateway (bin/wargate serve) on a free port with a private state dir, collects its
// JSON log lines, and stops it. Tests read the structured logs instead of guessing from timing.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const WARGATE = join(REPO, 'bin/wargate');

export interface LogEntry {
  event?: string;
  msg?: string;
  [key: string]: unknown;
}

export interface GatewayOptions {
  /** Reuse a state dir (to test restarts); a fresh temporary one otherwise. */
  stateDir?: string;
  keepalive?: { intervalSeconds: number; countMax: number };
  /**
   * More top-level config entries, e.g. `{ admission: { maxSandboxes: 1 }, sandbox: { idleTimeoutSeconds: 3 } }`,
   * written as JSON (which YAML reads). An entry replaces the helper's own of the same name.
   */
  config?: Record<string, unknown>;
}

export class TestGateway {
  /**
   * The log, but for the sandbox.* lines of the games' daemon sandboxes (a challenge port's or a
   * localhost service's, started with the gateway and alive as long as it is): tests count and wait
   * for the sandboxes of players and connections, and those lines are in `daemonLogs`.
   */
  readonly logs: LogEntry[] = [];
  readonly daemonLogs: LogEntry[] = [];
  private readonly daemonSandboxes = new Set<unknown>();
  private waiters: { pred: (e: LogEntry) => boolean; resolve: (e: LogEntry) => void }[] = [];
  port = 0;
  /** Added to every challenge port of the games served (the config's challenges.portOffset). */
  challengePortOffset = 0;

  private constructor(
    readonly proc: ChildProcess,
    readonly stateDir: string,
    private readonly ownsStateDir: boolean,
  ) {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      let entry: LogEntry;
      try {
        entry = JSON.parse(line) as LogEntry;
      } catch {
        entry = { msg: line };
      }
      if (entry.event === 'sandbox.start') this.pin(entry);
      if (entry.event === 'sandbox.start' && entry.purpose === 'daemon') this.daemonSandboxes.add(entry.sandbox);
      // Their sandbox.* lines (start, end, ...); what the daemon itself does (service.started, challenge.daemon.crashed) stays.
      if (entry.event?.startsWith('sandbox.') && this.daemonSandboxes.has(entry.sandbox)) return void this.daemonLogs.push(entry);
      this.logs.push(entry);
      this.waiters = this.waiters.filter((w) => (w.pred(entry) ? (w.resolve(entry), false) : true));
    });
    proc.stderr!.on('data', (d: Buffer) => process.stderr.write(`[gateway stderr] ${d}`));
  }

  static async start(options: GatewayOptions = {}): Promise<TestGateway> {
    const ownsStateDir = options.stateDir === undefined;
    const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'wargate-test-'));
    const config = join(stateDir, 'test-config.yaml');
    const keepalive = options.keepalive ?? { intervalSeconds: 10, countMax: 3 };
    const entries: Record<string, string> = {
      listen: '{ host: 127.0.0.1, port: 0 }',
      stateDir,
      games: `[${join(REPO, 'games/demo')}]`,
      keepalive: `{ intervalSeconds: ${keepalive.intervalSeconds}, countMax: ${keepalive.countMax} }`,
      log: '{ level: debug }',
    };
    // The demo's challenge ports (5842, 5843) moved by a random offset: gateways of other tests, or
    // a demo on this machine, hold their own.
    const challenges = { host: '127.0.0.1', portOffset: 10_000 + Math.floor(Math.random() * 40_000), ...(options.config?.challenges as object) };
    for (const [key, value] of Object.entries({ ...options.config, challenges })) entries[key] = JSON.stringify(value);
    writeFileSync(
      config,
      Object.entries(entries)
        .map(([key, value]) => `${key}: ${value}`)
        .join('\n'),
    );
    const proc = spawn(WARGATE, ['serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const gw = new TestGateway(proc, stateDir, ownsStateDir);
    const exited = once(proc, 'exit').then(([code]) => {
      throw new Error(`gateway exited with ${code} before listening: ${JSON.stringify(gw.logs.slice(-3))}`);
    });
    const listening = await Promise.race([gw.waitFor((e) => e.event === 'gateway.listening', 60_000), exited]);
    gw.port = listening.port as number;
    gw.challengePortOffset = challenges.portOffset;
    return gw;
  }

  /**
   * Holds each sandbox's pid namespace open, so the kernel cannot give its inode number to another
   * namespace while this gateway's tests look for leftovers by that number. (A pid namespace holds
   * no processes or memory by being open; mount namespaces are not pinned, as that would keep mounts.)
   */
  private readonly pins: number[] = [];
  private pin(entry: LogEntry): void {
    try {
      const fd = openSync(`/proc/${entry.nsPid as number}/ns/pid`, 'r');
      if (`pid:[${fstatSync(fd).ino}]` === entry.pidns) this.pins.push(fd);
      else closeSync(fd);
    } catch {
      // the sandbox has already ended
    }
  }

  /** Resolves with the first log entry (past or future) that matches. */
  waitFor(pred: (e: LogEntry) => boolean, timeoutMs = 10_000): Promise<LogEntry> {
    const seen = this.logs.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ pred, resolve: (e) => (clearTimeout(timer), resolvePromise(e)) });
    });
  }

  /** Log entries of one event type. */
  events(event: string): LogEntry[] {
    return this.logs.filter((e) => e.event === event);
  }

  password(level: string): string {
    if (level === 'level0') return 'level0';
    const file = join(this.stateDir, 'games/demo/passwords.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>)[level];
  }

  /** SIGTERM and wait: the gateway destroys every live sandbox on the way out. */
  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      await once(this.proc, 'exit');
    }
  }

  /** Removes the temporary state dir, if this gateway made it, and releases the namespace pins. */
  cleanup(): void {
    for (const fd of this.pins.splice(0)) closeSync(fd);
    if (this.ownsStateDir) rmSync(this.stateDir, { recursive: true, force: true });
  }
}
