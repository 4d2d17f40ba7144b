// The games' public challenge ports (game.yaml `challenges:`): a listening socket of the gateway for
// each, reachable from anywhere. Per-connection ports give every connection a sandbox of its own
// (challenge-connection.ts); daemon ports relay every connection to one supervised program in a
// sandbox whose network is its loopback alone. Each port caps its connections, in all and per source
// address: beyond, a one-line refusal and nothing is created. Sandboxes are started a few at a time
// per port, so a connection flood on a challenge costs SSH logins little CPU.
import { createServer, type Server, type Socket } from 'node:net';
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

/** Sandboxes being started at once for one per-connection port; further connections wait their turn. */
const STARTS_AT_ONCE = 2;

export interface ChallengeDeps {
  games: readonly Game[];
  level(user: string): Level | undefined;
  backend: SandboxBackend;
  config: ServerConfig['challenges'];
  logger: Logger;
  backoff?: BackoffPolicy;
}

interface ChallengePort extends ChallengeTarget {
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
    for (const game of deps.games) {
      game.definition.challenges.forEach((spec, index) => {
        // The schema has checked that the level exists in this game.
        const level = deps.level(spec.level)!;
        const name = `challenges.${index}`;
        this.ports.push({
          game,
          index,
          spec,
          publicPort: spec.port + deps.config.portOffset,
          host: spec.address ?? deps.config.host,
          user: { ...level.user, shell: '/bin/sh' },
          admission: new Admission({ maxSandboxes: spec.maxConnections, maxPerAddress: spec.maxPerAddress }, { total: `${name}.maxConnections`, perAddress: `${name}.maxPerAddress` }),
          starts: new StartQueue(STARTS_AT_ONCE),
        });
      });
    }
  }

  /** Starts every daemon, then listens on every port; fails with WG_ERR_CONFIG_INVALID naming a port it cannot take. */
  async start(): Promise<void> {
    const { logger, backend } = this.deps;
    for (const port of this.ports) {
      const { game, spec, index } = port;
      const fields = { game: game.definition.name, challenge: index, port: port.publicPort };
      if (spec.mode === 'daemon') {
        const daemon = { game, user: port.user, command: spec.command, env: { CHALLENGE_PORT: String(spec.port) }, limits: spec.limits, event: 'challenge.daemon', fields };
        port.daemon = new SupervisedDaemon(daemon, backend, logger, new RestartBackoff(this.deps.backoff ?? DAEMON_BACKOFF));
        await port.daemon.start();
      }
      port.server = await listen(port, (socket) => this.accepted(port, socket));
      logger.info({ event: 'challenge.ready', ...fields, host: port.host, mode: spec.mode }, 'challenge port ready');
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
      const fields = { event: 'challenge.refused', game: port.game.definition.name, port: port.publicPort, code, refused: ++this.refusedCount };
      this.refusals.warn(`${port.publicPort} ${code}`, { ...fields, client: client.address, message: (err as Error).message }, fields);
      socket.end(code === 'WG_ERR_TOO_MANY_FROM_ADDRESS' ? 'wargate: too many connections to this challenge from your address; close one and try again\n' : 'wargate: this challenge is full right now; try again in a minute\n');
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    if (port.daemon) return this.relayToDaemon(port, port.daemon, socket, client, release);
    const connection = new ChallengeConnection(port, socket, client, this.deps.backend, this.deps.logger, release);
    this.live.set(connection.id, connection);
    void connection.ended.then(() => this.live.delete(connection.id));
    void port.starts.run(() => connection.start());
  }

  private relayToDaemon(port: ChallengePort, daemon: SupervisedDaemon, socket: Socket, client: ClientAddress, release: Release): void {
    const log = this.deps.logger;
    const fields = { game: port.game.definition.name, port: port.publicPort, client: client.address };
    socket.once('close', release);
    daemon.connect(port.spec.port).then(
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
      return [{ id: sandbox.id, game: port.game.definition.name, level: port.user.name, client, startedAt, lastActivity: startedAt, attached: true, challengePort: port.publicPort, ...sandbox.stats() }];
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
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const where = `game ${port.game.definition.name}: challenges.${port.index}.port`;
      reject(new WargateError('WG_ERR_CONFIG_INVALID', `${where}: cannot listen on ${port.host}:${port.publicPort}: ${err.code ?? err.message}`));
    });
    server.listen(port.publicPort, port.host, () => {
      server.removeAllListeners('error');
      // An accept that fails (EMFILE under a flood) must not end the gateway.
      server.on('error', () => {});
      resolve(server);
    });
  });
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
