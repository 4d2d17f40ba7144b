// The composition root: it reads nothing itself, it is handed a validated config and builds every
// layer in order (state dir, games, sandbox backend, sessions, SSH), reaps what an earlier run left,
// then listens. stop() closes the listener and destroys every live sandbox.
// Accepted sockets pass the pre-authentication gate before ssh2 sees them (src/ssh/preauth-gate.ts).
import { mkdirSync, chmodSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type ssh2 from 'ssh2';
import { AdminServer } from '../admin/admin-server.js';
import { adminSocketPath } from '../admin/socket-path.js';
import { LevelAuthenticator } from '../auth/level-auth.js';
import { detectCgroupDriver } from '../cgroup/detect.js';
import type { ServerConfig } from '../config/schema.js';
import type { ReloadedGame } from '../admin/protocol.js';
import { errorCode, WargateError } from '../errors/catalog.js';
import { GameCatalog, type Game } from '../games/catalog.js';
import { NamespaceBackend } from '../sandbox/namespace-backend.js';
import { assertHostTools } from '../sandbox/host-tools.js';
import type { ClientAddress } from '../session/connection-session.js';
import { CronScheduler } from '../session/cron.js';
import { SessionManager } from '../session/session-manager.js';
import { LocalhostServices } from '../services/localhost-services.js';
import { ChallengePorts } from '../challenges/challenge-ports.js';
import { AuthPenalties } from '../ssh/auth-penalties.js';
import { loadOrCreateHostKeys } from '../ssh/host-keys.js';
import { PreauthGate } from '../ssh/preauth-gate.js';
import { createSshServer, injectConnection } from '../ssh/ssh-server.js';

export interface GatewayOptions {
  config: ServerConfig;
  /** Game folders, already resolved to absolute paths. */
  gameDirs: string[];
  logger: Logger;
}

export class Gateway {
  private server: ssh2.Server | undefined;
  private listener: Server | undefined;
  private gate: PreauthGate | undefined;
  private sessions: SessionManager | undefined;
  private reaper: NodeJS.Timeout | undefined;
  private backend: NamespaceBackend | undefined;
  private admin: AdminServer | undefined;
  private cron: CronScheduler | undefined;
  private services: LocalhostServices | undefined;
  private challenges: ChallengePorts | undefined;
  private catalog: GameCatalog | undefined;

  constructor(private readonly options: GatewayOptions) {}

  async start(): Promise<AddressInfo> {
    try {
      return await this.startLayers();
    } catch (err) {
      // Nothing half-started stays behind: the admin socket, the reaper timer, a listener.
      await this.stop().catch(() => {});
      throw err;
    }
  }

  private async startLayers(): Promise<AddressInfo> {
    const { config, gameDirs, logger } = this.options;
    assertHostTools();
    mkdirSync(config.stateDir, { recursive: true, mode: 0o711 });
    chmodSync(config.stateDir, 0o711);
    // First, as it also refuses to start a second gateway on this state dir, whose reaper would kill
    // this one's sandboxes (a live gateway answers on the socket; a stale socket file is replaced).
    // SSH sessions and challenge connections alike: each is a sandbox an operator may list and end.
    const sessions = {
      list: () => [...(this.sessions?.list() ?? []), ...(this.challenges?.list() ?? [])],
      get: (id: string) => this.sessions?.get(id) ?? this.challenges?.get(id),
    };
    this.admin = new AdminServer({ socketPath: adminSocketPath(config), sessions, logger, reload: () => this.reload() });
    await this.admin.start();

    const catalog = await GameCatalog.open(gameDirs, config.stateDir);
    this.logGames(catalog.games, 'game.ready');
    const cgroups = detectCgroupDriver(config.stateDir);
    logger.info({ event: 'cgroup.driver', version: cgroups.version }, `cgroup ${cgroups.version}`);
    const backend = (this.backend = new NamespaceBackend({ stateDir: config.stateDir, logger, cgroups }));
    const reaped = await backend.reap();
    logger.info({ event: 'reaper.startup', removed: reaped }, 'removed what earlier runs left behind');
    this.reaper = setInterval(() => {
      backend.reap().then(
        (removed) => removed > 0 && logger.warn({ event: 'reaper.removed', removed }, 'reaper removed leftovers'),
        (err) => logger.error({ err, code: errorCode(err), event: 'reaper.failed' }, 'reaper failed'),
      );
    }, config.reaper.intervalSeconds * 1000).unref();

    // Inside every sandbox, the gateway's port on loopback leads back to the gateway itself.
    let publicPort = config.listen.port;
    const loopbackSsh = {
      get port() {
        return publicPort;
      },
      accept: (socket: Duplex, origin: ClientAddress) => injectConnection(this.server!, this.gate!, socket, origin),
    };
    // The games' localhost services: daemons start now, in sandboxes of their own; ports open in each player sandbox.
    const services = (this.services = new LocalhostServices({ games: catalog.games, level: (user) => catalog.level(user), backend, limits: config.sandbox, stateDir: config.stateDir, logger }));
    if (config.listen.port !== 0) services.checkPorts(config.listen.port);
    await services.start();
    this.sessions = new SessionManager(backend, config.sandbox, logger, config.admission, loopbackSsh, services);
    const gate = (this.gate = new PreauthGate(config.preauth, logger));
    this.server = createSshServer({
      hostKeys: loadOrCreateHostKeys(config.stateDir),
      keepalive: config.keepalive,
      maxSessions: config.maxSessions,
      authenticator: new LevelAuthenticator(catalog),
      sessions: this.sessions,
      gate,
      penalties: new AuthPenalties(config.preauth.penalty, logger),
      logger,
    });
    const server = this.server;
    // The games' cron jobs: one timer per job, a run in each live sandbox of its game at each tick.
    const sessionManager = this.sessions;
    this.cron = new CronScheduler({ games: catalog.games, level: (user) => catalog.level(user), targets: () => sessionManager.sessions(), logger });
    this.cron.start();
    this.catalog = catalog;
    // The games' public challenge ports: daemons start, then every port listens.
    this.challenges = new ChallengePorts({ games: catalog.games, level: (user) => catalog.level(user), backend, config: config.challenges, logger });
    await this.challenges.start();
    const listener = (this.listener = createServer((socket) => gate.admit(socket, socket.remoteAddress, () => server.injectSocket(socket))));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(config.listen.port, config.listen.host, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    // An accept that fails (EMFILE under a flood) must not end the gateway: Node reports it as an
    // 'error' of the listener, which would otherwise be thrown.
    listener.on('error', (err) => logger.error({ err, code: errorCode(err), event: 'listener.error' }, 'accepting a connection failed'));
    const address = listener.address() as AddressInfo;
    publicPort = address.port;
    services.checkPorts(publicPort);
    logger.info({ event: 'gateway.listening', address: address.address, port: address.port }, 'listening');
    return address;
  }

  /**
   * Loads the games again (`wargate reload`, SIGHUP): new logins get the new levels and layers (the
   * authenticator asks the catalog at each login), live sessions keep the Level they hold; the cron
   * jobs, the localhost services and the challenge ports' handlers and daemons follow the new
   * definitions (connections already made keep theirs). A failure (a bad game.yaml) is logged and thrown, and the
   * games loaded before are still served. A layer `wargate build` has not built yet is built here
   * (its compiles synchronously, its build steps not): build first.
   */
  async reload(): Promise<ReloadedGame[]> {
    const { logger } = this.options;
    const catalog = this.catalog;
    if (!catalog) throw new WargateError('WG_ERR_ADMIN', 'the gateway is still starting');
    try {
      await catalog.reload();
    } catch (err) {
      logger.error({ err, code: errorCode(err), event: 'games.reload_failed' }, 'reloading the games failed; still serving the games loaded before');
      throw err;
    }
    this.cron?.reschedule(catalog.games);
    try {
      // New sandboxes get the new services; changed daemons are replaced, live sandboxes keep theirs.
      await this.services?.reload(catalog.games);
    } catch (err) {
      logger.error({ err, code: errorCode(err), event: 'services.reload_failed' }, 'the reloaded games keep the localhost services loaded before');
      throw err;
    }
    await this.challenges?.reload(catalog.games);
    this.logGames(catalog.games, 'game.reloaded');
    return catalog.games.map((g) => ({ name: g.definition.name, levels: g.definition.levels.length, layer: g.layers[0] }));
  }

  private logGames(games: readonly Game[], event: string): void {
    for (const game of games) {
      this.options.logger.info({ event, game: game.definition.name, levels: game.definition.levels.length, layer: game.layers[0] }, event === 'game.ready' ? 'game ready' : 'game reloaded');
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.reaper);
    this.cron?.stop();
    await this.admin?.stop();
    this.listener?.close();
    this.gate?.close();
    await this.sessions?.closeAll('gateway-stop');
    await this.challenges?.stop();
    await this.services?.stop();
    await this.backend?.close();
    this.options.logger.info({ event: 'gateway.stopped' }, 'stopped');
  }
}
