// The games' public challenge ports (game.yaml `challenges:`): a listening socket of the gateway for
// each, reachable from anywhere. Per-connection ports give every connection a sandbox of its own
// (challenge-connection.ts); daemon ports relay every connection to one supervised program in a
// sandbox whose network is its loopback alone. Each port caps its connections, in all and per source
// address: beyond, a one-line refusal and nothing is created. Sandboxes are started one at a time
// per port, so a connection flood on a challenge costs SSH logins little CPU.
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config/schema.js';
import { errorCode, WargateError } from '../errors/catalog.js';
import type { Game, Level } from '../games/catalog.js';
import type { SandboxBackend } from '../sandbox/types.js';
import { Admission, type Release } from '../session/admission.js';
import type { ClientAddress, SessionInfo } from '../session/connection-session.js';
import { RestartBackoff, DAEMON_BACKOFF, type BackoffPolicy } from '../services/restart-backoff.js';
import { SupervisedDaemon } from '../services/supervised-daemon.js';
import { ThrottledLog } from '../log/throttled-log.js';
import { ChallengeConnection, type ChallengeTarget } from './challenge-connection.js';

/**
 * Sandboxes being started at once for one per-connection port; further connections wait their turn.
 * Measured (bench/challenge.ts, 2 cores): 2 at once gave 119 connections/s and SSH logins p99 120 ms
 * during the churn; 1 gives 107 connections/s and p99 98 ms (80 ms quiet).
 */
const STARTS_AT_ONCE = 1;

export interface ChallengeDeps {
  games: readonly Game[];
  level(user: string): Level | undefined;
  backend: SandboxBackend;
  config: ServerConfig['challenges'];
  logger: Logger;
  backoff?: BackoffPolicy;
}

interface ChallengePort {
  /** What a new connection runs: replaced by a reload, kept by the connections already made. */
  target: ChallengeTarget;
  host: string;
  admission: Admission;
  server?: Server;
  daemon?: SupervisedDaemon;
  starts: StartQueue;
}

export class ChallengePorts {
  private readonly ports: ChallengePort[] = [];
  private readonly live = new Map<string, ChallengeConnection>();
  private stopping = false;
  private refusedCount = 0;
  private readonly refusals: ThrottledLog;

  constructor(private readonly deps: ChallengeDeps) {
    this.refusals = new ThrottledLog(deps.logger, { line: 'challenge connection refused', summary: 'more challenge connections refused (their lines held back)' });
    for (const target of this.targetsOf(deps.games)) {
      const { spec, index } = target;
      const name = `challenges.${index}`;
      this.ports.push({
        target,
        host: spec.address ?? deps.config.host,
        admission: new Admission({ maxSandboxes: spec.maxConnections, maxPerAddress: spec.maxPerAddress }, { total: `${name}.maxConnections`, perAddress: `${name}.maxPerAddress` }),
        starts: new StartQueue(STARTS_AT_ONCE),
      });
    }
  }

  private targetsOf(games: readonly Game[]): ChallengeTarget[] {
    return games.flatMap((game) =>
      game.definition.challenges.map((spec, index) => ({
        game,
        index,
        spec,
        publicPort: spec.port + this.deps.config.portOffset,
        // The schema has checked that the level exists in this game.
        user: { ...this.deps.level(spec.level)!.user, shell: '/bin/sh' },
      })),
    );
  }

  /** Starts every daemon, then listens on every port; fails with WG_ERR_CONFIG_INVALID naming a port it cannot take. */
  async start(): Promise<void> {
    const { logger } = this.deps;
    for (const port of this.ports) {
      const { game, spec, index, publicPort } = port.target;
      if (spec.mode === 'daemon') port.daemon = await this.startDaemon(port.target);
      port.server = await listen(port, (socket) => this.accepted(port, socket));
      logger.info({ event: 'challenge.ready', game: game.definition.name, challenge: index, port: publicPort, host: port.host, mode: spec.mode }, 'challenge port ready');
    }
  }

  private async startDaemon(target: ChallengeTarget): Promise<SupervisedDaemon> {
    const { game, spec, index, publicPort, user } = target;
    const fields = { game: game.definition.name, challenge: index, port: publicPort };
    const run = { game, user, command: spec.command, env: { CHALLENGE_PORT: String(spec.port) }, limits: spec.limits, event: 'challenge.daemon', fields };
    const daemon = new SupervisedDaemon(run, this.deps.backend, this.deps.logger, new RestartBackoff(this.deps.backoff ?? DAEMON_BACKOFF));
    await daemon.start();
    return daemon;
  }

  /**
   * The catalog was reloaded: new connections to a port run what `games` now says (its command,
   * limits and the game's new layer); connections already made keep theirs. A daemon whose run
   * changed is replaced, the new one started before the old one stops. The set of ports, their
   * addresses, modes and caps are taken at start: a reload that changes them says so in the log
   * (challenge.restart_needed) and leaves them as they are.
   */
  async reload(games: readonly Game[]): Promise<void> {
    const next = this.targetsOf(games);
    const unmatched = new Set(next);
    let stale = 0;
    for (const port of this.ports) {
      const target = next.find((t) => portKey(t) === portKey(port.target));
      if (!target) {
        stale++;
        continue;
      }
      unmatched.delete(target);
      const before = port.target;
      port.target = target;
      if (port.daemon && daemonRun(before) !== daemonRun(target)) {
        const old = port.daemon;
        port.daemon = await this.startDaemon(target);
        await old.stop();
      }
    }
    if (unmatched.size > 0 || stale > 0) {
      this.deps.logger.warn({ event: 'challenge.restart_needed', added: unmatched.size, changedOrRemoved: stale }, 'challenge ports, addresses, modes and caps change at a restart of the gateway');
    }
  }

  private accepted(port: ChallengePort, socket: Socket): void {
    socket.on('error', () => {});
    const client: ClientAddress = { address: socket.remoteAddress ?? '?', port: socket.remotePort ?? 0 };
    if (this.stopping || !client.address) return void socket.destroy();
    let release: Release;
    try {
      release = port.admission.admit(client.address);
    } catch (err) {
      const code = errorCode(err);
      const fields = { event: 'challenge.refused', game: port.target.game.definition.name, port: port.target.publicPort, code, refused: ++this.refusedCount };
      this.refusals.warn(`${port.target.publicPort} ${code}`, { ...fields, client: client.address, message: (err as Error).message }, fields);
      socket.end(code === 'WG_ERR_TOO_MANY_FROM_ADDRESS' ? 'wargate: too many connections to this challenge from your address; close one and try again\n' : 'wargate: this challenge is full right now; try again in a minute\n');
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    if (port.daemon) return this.relayToDaemon(port, port.daemon, socket, client, release);
    const connection = new ChallengeConnection(port.target, socket, client, this.deps.backend, this.deps.logger, release);
    this.live.set(connection.id, connection);
    void connection.ended.then(() => this.live.delete(connection.id));
    void port.starts.run(() => connection.start());
  }

  private relayToDaemon(port: ChallengePort, daemon: SupervisedDaemon, socket: Socket, client: ClientAddress, release: Release): void {
    const log = this.deps.logger;
    const fields = { game: port.target.game.definition.name, port: port.target.publicPort, client: client.address };
    socket.once('close', release);
    connectPatiently(daemon, port.target.spec.port, () => socket.destroyed).then(
      (peer) => {
        peer.on('error', () => {});
        peer.allowHalfOpen = true;
        socket.pipe(peer);
        peer.pipe(socket);
        socket.once('close', () => peer.destroy());
        peer.once('close', () => socket.destroy());
        log.debug({ event: 'challenge.relay', ...fields }, 'challenge connection relayed to its daemon');
      },
      (err: Error) => {
        log.info({ event: 'challenge.daemon_unreachable', ...fields, code: errorCode(err), message: err.message }, 'challenge daemon unreachable');
        socket.end('wargate: this challenge is restarting; try again in a moment\n');
      },
    );
  }

  /** Live per-connection sandboxes and running daemons, for `wargate sessions`. */
  list(): SessionInfo[] {
    const daemons = this.ports.flatMap((port) => {
      const sandbox = port.daemon?.liveSandbox;
      if (!sandbox) return [];
      const startedAt = port.daemon!.startedAt.toISOString();
      const client = { address: 'daemon', port: 0 };
      return [{ id: sandbox.id, game: port.target.game.definition.name, level: port.target.user.name, client, startedAt, lastActivity: startedAt, attached: true, challengePort: port.target.publicPort, ...sandbox.stats() }];
    });
    return [...[...this.live.values()].map((c) => c.info()), ...daemons];
  }

  /** A live connection by id, or a daemon by its sandbox's id (ending it restarts the daemon). */
  get(id: string): { info(): SessionInfo; end(reason: string): Promise<void> } | undefined {
    const connection = this.live.get(id);
    if (connection) return { info: () => connection.info(), end: () => connection.end('admin-kill') };
    for (const port of this.ports) {
      const sandbox = port.daemon?.liveSandbox;
      if (sandbox?.id === id) {
        const info = this.list().find((s) => s.id === id)!;
        return { info: () => info, end: () => sandbox.destroy() };
      }
    }
    return undefined;
  }

  /** Stops listening, ends every connection and stops every daemon. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const port of this.ports) port.server?.close();
    await Promise.all([...this.live.values()].map((c) => c.end('gateway-stop')));
    await Promise.all(this.ports.map((p) => p.daemon?.stop()));
  }
}

function listen(port: ChallengePort, onConnection: (socket: Socket) => void): Promise<Server> {
  // Half-open: a client that sends its input and shuts down its side (`nc -N`, a script) still gets the answer.
  const server = createServer({ allowHalfOpen: true }, onConnection);
  const where = `game ${port.target.game.definition.name}: challenges.${port.target.index}.port`;
  if (port.target.publicPort > 65_535) {
    return Promise.reject(new WargateError('WG_ERR_CONFIG_INVALID', `${where}: ${port.target.spec.port} + challenges.portOffset is ${port.target.publicPort}, beyond 65535`));
  }
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new WargateError('WG_ERR_CONFIG_INVALID', `${where}: cannot listen on ${port.host}:${port.target.publicPort}: ${err.code ?? err.message}`));
    });
    server.listen(port.target.publicPort, port.host, () => {
      server.removeAllListeners('error');
      // An accept that fails (EMFILE under a flood) must not end the gateway.
      server.on('error', () => {});
      resolve(server);
    });
  });
}

/** How long a connection waits for a daemon that is starting (or restarting) to listen. */
const DAEMON_WAIT_MS = 3000;

/**
 * A connection to the daemon, retried while it is not listening yet (just started, or restarted
 * after a crash) for up to DAEMON_WAIT_MS, unless the player has gone meanwhile.
 */
async function connectPatiently(daemon: SupervisedDaemon, port: number, gone: () => boolean): Promise<Duplex> {
  const deadline = Date.now() + DAEMON_WAIT_MS;
  for (;;) {
    try {
      return await daemon.connect(port);
    } catch (err) {
      if (gone() || Date.now() >= deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** What a port is, as opened at start: a reload that changes it needs a restart. */
function portKey({ game, spec }: ChallengeTarget): string {
  return JSON.stringify([game.definition.name, spec.port, spec.address, spec.mode, spec.maxConnections, spec.maxPerAddress]);
}

/** What a daemon's run depends on: its game's layers and hostname, its user, command and limits. */
function daemonRun({ game, user, spec }: ChallengeTarget): string {
  return JSON.stringify([game.definition.hostname, game.layers, game.hostUsr, user, spec.command, spec.limits]);
}

/** Runs at most `limit` jobs at once, the rest in arrival order. */
class StartQueue {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run(job: () => Promise<void>): Promise<void> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    try {
      await job();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}
