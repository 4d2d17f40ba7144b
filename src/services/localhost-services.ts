// A game's localhost services: what 127.0.0.1:PORT answers inside every sandbox of the game. It
// owns one listener per port in each player sandbox (held by the sandbox's holder: an idle sandbox
// runs no process for them), the per-connection handlers it starts in that player's own sandbox,
// and each daemon with its own sandbox and supervision. It never runs a handler as root or on the
// host, and never logs what passes through a connection.
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { parseSize, servicePorts, type SandboxLimits, type ServiceSpec } from '../config/schema.js';
import { errorCode, WargateError } from '../errors/catalog.js';
import type { Game, Level } from '../games/catalog.js';
import type { ExitStatus, Sandbox, SandboxBackend, SandboxProcess, SandboxUser } from '../sandbox/types.js';
import { DEFAULT_PATH } from '../session/environment.js';
import { RestartBackoff, type BackoffPolicy, DAEMON_BACKOFF } from './restart-backoff.js';
import { loadOrCreateCertificate, secureContextOf } from './tls-certificate.js';

/** A daemon's environment: only what a handler needs to find programs. */
const DAEMON_PATH = '/usr/bin:/bin';

export interface ServicesDeps {
  games: readonly Game[];
  /** The level users of every game, by name (the game catalog). */
  level(user: string): Level | undefined;
  backend: SandboxBackend;
  /** The server's sandbox defaults (a game's `limits` override them), for the daemons' sandboxes. */
  limits: SandboxLimits;
  stateDir: string;
  logger: Logger;
  backoff?: BackoffPolicy;
}

interface ServiceEntry {
  game: Game;
  /** Its index in the game's `services` list, as logged. */
  index: number;
  spec: ServiceSpec;
  ports: number[];
  /** The level user, with /bin/sh for the command (a level's login shell may be a game piece). */
  user: SandboxUser;
  tls?: SecureContext;
  daemon?: SupervisedDaemon;
}

export class LocalhostServices {
  private readonly entries: ServiceEntry[] = [];

  constructor(private readonly deps: ServicesDeps) {
    for (const game of deps.games) {
      game.definition.services.forEach((spec, index) => {
        // The schema has checked that the level exists in this game.
        const level = deps.level(spec.level)!;
        this.entries.push({ game, index, spec, ports: servicePorts(spec.port), user: { ...level.user, shell: '/bin/sh' } });
      });
    }
  }

  /** Fails with WG_ERR_CONFIG_INVALID if a service would take the port of the gateway's SSH inside every sandbox. */
  checkPorts(sshPort: number): void {
    for (const { game, index, ports } of this.entries) {
      if (ports.includes(sshPort)) {
        throw new WargateError('WG_ERR_CONFIG_INVALID', `game ${game.definition.name}: services.${index}: port ${sshPort} is the gateway's SSH port, offered inside every sandbox`);
      }
    }
  }

  /** TLS certificates (made once per game), then every daemon in its own sandbox. */
  async start(): Promise<void> {
    const { logger, stateDir } = this.deps;
    for (const entry of this.entries) {
      const { definition } = entry.game;
      if (entry.spec.tls) entry.tls = secureContextOf(await loadOrCreateCertificate(stateDir, definition.name, definition.hostname));
      if (entry.spec.mode === 'daemon') {
        const limits = { ...this.deps.limits, ...definition.limits };
        entry.daemon = new SupervisedDaemon(entry, this.deps.backend, limits, logger, new RestartBackoff(this.deps.backoff ?? DAEMON_BACKOFF));
        await entry.daemon.start();
      }
      logger.info({ event: 'service.ready', game: definition.name, service: entry.index, port: entry.spec.port, mode: entry.spec.mode, tls: !!entry.spec.tls }, 'service ready');
    }
  }

  /** Stops every daemon and destroys its sandbox (player sandboxes take their listeners with them). */
  async stop(): Promise<void> {
    await Promise.all(this.entries.map((e) => e.daemon?.stop()));
  }

  /** Opens the game's ports on the loopback of a player's sandbox that has just started. */
  offer(sandbox: Sandbox, level: Level, log: Logger): void {
    for (const entry of this.entries) {
      // By name: a reloaded catalog holds new Game objects for the same games.
      if (entry.game.definition.name !== level.game.definition.name) continue;
      if (entry.spec.levels && !entry.spec.levels.includes(level.user.name)) continue;
      for (const port of entry.ports) {
        sandbox
          .listen('127.0.0.1', port, (socket) => this.accepted(entry, sandbox, port, socket, log))
          .catch((err: Error) => {
            // A sandbox that ended while its ports were being opened (a client gone at once) is no news.
            if (errorCode(err) === 'WG_ERR_SANDBOX_GONE' || /has ended/.test(err.message)) return;
            log.warn({ event: 'service.listen_failed', service: entry.index, port, code: errorCode(err), message: err.message }, 'service port not opened');
          });
      }
    }
  }

  private accepted(entry: ServiceEntry, sandbox: Sandbox, port: number, raw: Duplex, log: Logger): void {
    raw.on('error', () => {});
    halfOpen(raw);
    if (!entry.tls) return void this.handle(entry, sandbox, port, raw, log);
    const socket = new TLSSocket(raw, { isServer: true, secureContext: entry.tls });
    socket.on('error', (err) => {
      log.debug({ event: 'service.tls_failed', service: entry.index, port, message: err.message }, 'TLS handshake failed');
      raw.destroy();
    });
    socket.once('secure', () => this.handle(entry, sandbox, port, socket, log));
  }

  private handle(entry: ServiceEntry, sandbox: Sandbox, port: number, socket: Duplex, log: Logger): void {
    const started = performance.now();
    const connected = entry.daemon ? entry.daemon.connect(port) : runHandler(entry, sandbox, port);
    connected.then(
      (peer) => {
        log.debug({ event: 'service.connection', service: entry.index, port, ms: Math.round(performance.now() - started) }, 'service connection');
        splice(socket, peer);
      },
      (err: Error) => {
        log.debug({ event: 'service.connection_failed', service: entry.index, port, code: errorCode(err), message: err.message }, 'service connection failed');
        socket.destroy();
      },
    );
  }
}

/** The two ends of a service connection: the player's socket, and what answers it. */
interface ServicePeer {
  readable: NodeJS.ReadableStream;
  writable: NodeJS.WritableStream;
  /** Called when the player's socket has closed (its peer must not linger). */
  close(): void;
}

/**
 * A client that sends its request and then shuts down its writing half (`nc -N`, a scanner, a
 * script) still gets the answer: the relay's sockets would otherwise end their own side on EOF.
 */
function halfOpen(socket: Duplex): void {
  socket.allowHalfOpen = true;
}

function splice(socket: Duplex, peer: ServicePeer): void {
  socket.pipe(peer.writable);
  peer.readable.pipe(socket);
  socket.once('close', () => peer.close());
}

/** inetd-style: `command` in the player's own sandbox as the service's level, the connection as its stdin and stdout. */
async function runHandler(entry: ServiceEntry, sandbox: Sandbox, port: number): Promise<ServicePeer> {
  const proc: SandboxProcess = await sandbox.spawn({
    user: entry.user,
    command: entry.spec.command,
    env: { PATH: DEFAULT_PATH, SERVICE_PORT: String(port) },
  });
  proc.stdin.on('error', () => {});
  proc.stderr?.resume();
  let exited = false;
  void proc.exited.then(() => (exited = true));
  return {
    readable: proc.stdout,
    writable: proc.stdin,
    close: () => {
      if (exited) return;
      proc.signal('KILL');
      proc.hangup();
    },
  };
}

/**
 * One daemon of a game: its own sandbox (made as a session's would be), the command in it as the
 * level user, restarted with backoff when it exits, each exit logged (service.crashed). stop()
 * ends it with its sandbox.
 */
class SupervisedDaemon {
  private sandbox: Sandbox | undefined;
  private sandboxEnded = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private runs = 0;

  constructor(
    private readonly entry: ServiceEntry,
    private readonly backend: SandboxBackend,
    private readonly limits: SandboxLimits,
    private readonly logger: Logger,
    private readonly backoff: RestartBackoff,
  ) {}

  private get fields() {
    return { game: this.entry.game.definition.name, service: this.entry.index, port: this.entry.spec.port };
  }

  async start(): Promise<void> {
    if (this.stopped) return;
    const started = Date.now();
    let proc: SandboxProcess;
    try {
      const sandbox = await this.ensureSandbox();
      proc = await sandbox.spawn({ user: this.entry.user, command: this.entry.spec.command, env: { PATH: DAEMON_PATH } });
    } catch (err) {
      if (this.stopped) return;
      this.logger.error({ event: 'service.start_failed', ...this.fields, code: errorCode(err), message: (err as Error).message }, 'daemon did not start');
      return this.restartLater(Date.now() - started);
    }
    this.runs++;
    proc.stdin.end();
    const output = (stream: 'stdout' | 'stderr') => (data: Buffer) =>
      this.logger.debug({ event: 'service.output', ...this.fields, stream, text: data.toString('utf8', 0, Math.min(data.length, 512)) }, 'daemon output');
    proc.stdout.on('data', output('stdout'));
    proc.stderr?.on('data', output('stderr'));
    this.logger.info({ event: 'service.started', ...this.fields, run: this.runs, sandbox: this.sandbox!.id }, 'daemon started');
    void proc.exited.then((status) => {
      if (this.stopped) return;
      const upMs = Date.now() - started;
      this.logger.warn({ event: 'service.crashed', ...this.fields, run: this.runs, status: describe(status), upMs }, 'daemon exited');
      this.restartLater(upMs);
    });
  }

  private restartLater(upMs: number): void {
    if (this.stopped) return;
    const inMs = this.backoff.next(upMs);
    this.logger.info({ event: 'service.restart', ...this.fields, inMs }, 'daemon restarts after a pause');
    this.timer = setTimeout(() => void this.start(), inMs);
  }

  /** The daemon's sandbox, made again if it ended (its PID 1 killed by hand or by the OOM killer). */
  private async ensureSandbox(): Promise<Sandbox> {
    if (this.sandbox && !this.sandboxEnded) return this.sandbox;
    const { game } = this.entry;
    const sandbox = await this.backend.create({
      id: randomBytes(8).toString('hex'),
      hostname: game.definition.hostname,
      layers: game.layers,
      hostUsr: game.hostUsr,
      limits: {
        memoryBytes: parseSize(this.limits.memory),
        pids: this.limits.pids,
        cpuWeight: this.limits.cpuWeight,
        writableSize: this.limits.writableSize,
        writableInodes: this.limits.writableInodes,
      },
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
  async connect(port: number): Promise<ServicePeer> {
    if (!this.sandbox || this.stopped) throw new WargateError('WG_ERR_FORWARD', 'the daemon is not running');
    const socket = await this.sandbox.connect('127.0.0.1', port);
    socket.on('error', () => {});
    halfOpen(socket);
    return { readable: socket, writable: socket, close: () => socket.destroy() };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.sandbox?.destroy();
    this.logger.info({ event: 'service.stopped', ...this.fields }, 'daemon stopped');
  }
}

const describe = (status: ExitStatus) => ('code' in status ? `exit ${status.code}` : `signal ${status.signal}`);
