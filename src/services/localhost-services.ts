// A game's localhost services: what 127.0.0.1:PORT answers inside every sandbox of the game. It
// owns one listener per port in each player sandbox (held by the sandbox's holder: an idle sandbox
// runs no process for them), the per-connection handlers it starts in that player's own sandbox,
// and each daemon with its own sandbox and supervision. It never runs a handler as root or on the
// host, and never logs what passes through a connection.
import type { Duplex } from 'node:stream';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { servicePorts, type SandboxLimits, type ServiceSpec } from '../config/schema.js';
import { errorCode, WargateError } from '../errors/catalog.js';
import type { Game, Level } from '../games/catalog.js';
import type { Sandbox, SandboxBackend, SandboxProcess, SandboxUser } from '../sandbox/types.js';
import { DEFAULT_PATH } from '../session/environment.js';
import { RestartBackoff, type BackoffPolicy, DAEMON_BACKOFF } from './restart-backoff.js';
import { SupervisedDaemon } from './supervised-daemon.js';
import { loadOrCreateCertificate, secureContextOf } from './tls-certificate.js';

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
  private entries: ServiceEntry[];
  /** The gateway's SSH port once checked: a reload may not bring a service onto it either. */
  private sshPort: number | undefined;
  /** Serializes reloads, and stop() after them: daemons started by a reload are stopped too. */
  private changing: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly deps: ServicesDeps) {
    this.entries = this.entriesOf(deps.games);
  }

  private entriesOf(games: readonly Game[]): ServiceEntry[] {
    const entries: ServiceEntry[] = [];
    for (const game of games) {
      game.definition.services.forEach((spec, index) => {
        // The schema has checked that the level exists in this game.
        const level = this.deps.level(spec.level)!;
        entries.push({ game, index, spec, ports: servicePorts(spec.port), user: { ...level.user, shell: '/bin/sh' } });
      });
    }
    return entries;
  }

  /** Fails with WG_ERR_CONFIG_INVALID if a service would take the port of the gateway's SSH inside every sandbox. */
  checkPorts(sshPort: number): void {
    assertPortFree(this.entries, sshPort);
    this.sshPort = sshPort;
  }

  /** TLS certificates (made once per game), then every daemon in its own sandbox. */
  async start(): Promise<void> {
    await this.bringUp(this.entries, []);
  }

  /**
   * The catalog was reloaded: sandboxes that start from now on are offered the services of `games`;
   * a sandbox already running keeps the listeners (and per-connection commands) it was offered. A
   * daemon whose run would be the same (see daemonKey) keeps running untouched; any other is
   * replaced, the new one started before the old one is stopped. Fails, changing nothing, if a
   * service would take the SSH port or a certificate cannot be made.
   */
  reload(games: readonly Game[]): Promise<void> {
    const swapped = this.changing.then(() => this.swap(games));
    this.changing = swapped.catch(() => {});
    return swapped;
  }

  private async swap(games: readonly Game[]): Promise<void> {
    if (this.stopped) return;
    const next = this.entriesOf(games);
    if (this.sshPort !== undefined) assertPortFree(next, this.sshPort);
    const previous = this.entries;
    await this.bringUp(next, previous);
    this.entries = next;
    const kept = new Set(next.map((e) => e.daemon));
    await Promise.all(previous.filter((e) => e.daemon && !kept.has(e.daemon)).map((e) => e.daemon!.stop()));
  }

  /**
   * TLS contexts first (the only step that can fail, so a failed reload has started nothing), then
   * each daemon: taken over from `running` if its run is unchanged, else started.
   */
  private async bringUp(entries: ServiceEntry[], running: ServiceEntry[]): Promise<void> {
    const { logger, stateDir } = this.deps;
    for (const entry of entries) {
      const { definition } = entry.game;
      if (entry.spec.tls) entry.tls = secureContextOf(await loadOrCreateCertificate(stateDir, definition.name, definition.hostname));
    }
    for (const entry of entries) {
      const { definition } = entry.game;
      if (entry.spec.mode === 'daemon') {
        const key = daemonKey(entry);
        entry.daemon = running.find((r) => r.daemon && daemonKey(r) === key)?.daemon;
        if (!entry.daemon) {
          const daemon = {
            game: entry.game,
            user: entry.user,
            command: entry.spec.command,
            limits: { ...this.deps.limits, ...definition.limits },
            event: 'service',
            fields: { game: definition.name, service: entry.index, port: entry.spec.port },
          };
          entry.daemon = new SupervisedDaemon(daemon, this.deps.backend, logger, new RestartBackoff(this.deps.backoff ?? DAEMON_BACKOFF));
          await entry.daemon.start();
        }
      }
      logger.info({ event: 'service.ready', game: definition.name, service: entry.index, port: entry.spec.port, mode: entry.spec.mode, tls: !!entry.spec.tls }, 'service ready');
    }
  }

  /** Stops every daemon and destroys its sandbox (player sandboxes take their listeners with them). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.changing;
    await Promise.all(this.entries.map((e) => e.daemon?.stop()));
  }

  /**
   * The daemon that serves a game's port now. A sandbox offered the port before a reload replaced
   * the daemon reaches the new one (the old one is stopped); none if the reload removed it.
   */
  private daemonFor(entry: ServiceEntry, port: number): SupervisedDaemon | undefined {
    const name = entry.game.definition.name;
    return this.entries.find((e) => e.daemon && e.game.definition.name === name && e.ports.includes(port))?.daemon;
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
    const connected = entry.spec.mode === 'daemon' ? connectDaemon(this.daemonFor(entry, port), port) : runHandler(entry, sandbox, port);
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

function assertPortFree(entries: ServiceEntry[], sshPort: number): void {
  for (const { game, index, ports } of entries) {
    if (ports.includes(sshPort)) {
      throw new WargateError('WG_ERR_CONFIG_INVALID', `game ${game.definition.name}: services.${index}: port ${sshPort} is the gateway's SSH port, offered inside every sandbox`);
    }
  }
}

/**
 * What a daemon's run depends on: its game's sandbox (layers, hostname, limits), its user, command
 * and port. A reload that changes none of these leaves the daemon running.
 */
function daemonKey({ game, user, spec }: ServiceEntry): string {
  const { name, hostname, limits } = game.definition;
  return JSON.stringify([name, hostname, limits, game.layers, game.hostUsr, user, spec.command, spec.port]);
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

async function connectDaemon(daemon: SupervisedDaemon | undefined, port: number): Promise<ServicePeer> {
  if (!daemon) throw new WargateError('WG_ERR_FORWARD', 'the service was removed by a reload');
  const socket = await daemon.connect(port);
  socket.on('error', () => {});
  halfOpen(socket);
  return { readable: socket, writable: socket, close: () => socket.destroy() };
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
