// argv -> calls. No logic of its own beyond turning options into a config and errors into exit codes.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { killCommand, reloadCommand, sessionsCommand } from '../admin/commands.js';
import { locateAdminSocket } from '../admin/socket-path.js';
import { loadYamlFile } from '../config/load-yaml.js';
import { serverConfigSchema, type ServerConfig } from '../config/schema.js';
import { Gateway } from '../daemon/gateway.js';
import { WargateError } from '../errors/catalog.js';
import { errorCode } from '../errors/catalog.js';
import { createLogger } from '../log/logger.js';
import { buildCommand, checkCommand, gamesCommand, type GameSources } from './game-commands.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const DEMO_GAME = resolve(REPO_ROOT, 'games/demo');

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number (0-65535)');
  return n;
}

async function serve(config: ServerConfig, gameDirs: string[]): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new WargateError('WG_ERR_HOST_TOOL_MISSING', 'wargate must run as root: it creates namespaces and mounts for every sandbox');
  }
  const logger = createLogger(config.log.level);
  const gateway = new Gateway({ config, gameDirs, logger });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void gateway.stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop).on('SIGINT', stop);
  // SIGHUP: load the games again (as `wargate reload`); the gateway logs the outcome.
  process.on('SIGHUP', () => {
    gateway.reload().catch((err: unknown) => logger.debug({ code: errorCode(err), event: 'sighup.reload_failed' }, 'SIGHUP reload failed'));
  });
  await gateway.start();
}

const program = new Command()
  .name('wargate')
  .description('SSH gateway for wargames: every login lands in a fresh, isolated, disposable Linux sandbox.')
  .showHelpAfterError();

program
  .command('demo')
  .description('serve the bundled demo game (no config file needed)')
  .option('-p, --port <port>', 'TCP port to listen on', port, 2220)
  .option('--host <address>', 'address to listen on', '0.0.0.0')
  .option('--state-dir <dir>', 'where host keys, passwords and layers are kept', '/var/lib/wargate')
  .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'info')
  .option('--port-offset <n>', "added to the demo's public challenge ports (5842, 5843)", port, 0)
  .action(async (opts: { port: number; host: string; stateDir: string; logLevel: string; portOffset: number }) => {
    const config = serverConfigSchema.parse({
      listen: { host: opts.host, port: opts.port },
      // The challenge ports listen where SSH does.
      challenges: { host: opts.host, portOffset: opts.portOffset },
      stateDir: resolve(opts.stateDir),
      games: [DEMO_GAME],
      log: { level: opts.logLevel },
    });
    await serve(config, [DEMO_GAME]);
  });

program
  .command('serve')
  .description("serve the games of an operator's config file")
  .requiredOption('-c, --config <file>', 'YAML config file')
  .action(async (opts: { config: string }) => {
    const file = resolve(opts.config);
    const config = loadYamlFile(file, serverConfigSchema);
    await serve(config, config.games.map((g) => resolve(dirname(file), g)));
  });

/** How the admin commands find the gateway's socket. */
function withSocketOptions(command: Command): Command {
  return command
    .addOption(new Option('-c, --config <file>', "the gateway's config file (its admin.socket, or admin.sock in its stateDir)").conflicts('socket'))
    .addOption(new Option('--state-dir <dir>', "the gateway's state dir (admin.sock in it)").default('/var/lib/wargate').conflicts(['config', 'socket']))
    .addOption(new Option('--socket <path>', 'the admin socket itself'));
}

type SocketOptions = { config?: string; stateDir: string; socket?: string };

withSocketOptions(program.command('sessions'))
  .description('list the live sandboxes of the running gateway')
  .option('--json', 'print a JSON array for machines instead of a table')
  .action(async (opts: SocketOptions & { json?: boolean }) => {
    process.exitCode = await sessionsCommand(locateAdminSocket(opts), { json: opts.json });
  });

withSocketOptions(program.command('kill'))
  .description("end one session: its player's connection is closed and its sandbox destroyed")
  .argument('<id>', 'session id, as `wargate sessions` shows it')
  .action(async (id: string, opts: SocketOptions) => {
    process.exitCode = await killCommand(locateAdminSocket(opts), id);
  });

/** How the game commands find the games and the state dir: a config file, or folders and a state dir. */
function withGameOptions(command: Command): Command {
  return command
    .addOption(new Option('-c, --config <file>', "an operator's config file (its stateDir and games)").conflicts(['games']))
    .addOption(new Option('--state-dir <dir>', 'the state dir (passwords, keys, layers)').conflicts('config'))
    .addOption(new Option('--games <dir...>', 'game folders (default: the bundled demo game)'));
}

type GameOptions = { config?: string; stateDir?: string; games?: string[] };

function gameSources(opts: GameOptions): GameSources & { port?: number; portOffset?: number } {
  if (opts.config) {
    const file = resolve(opts.config);
    const config = loadYamlFile(file, serverConfigSchema);
    return { stateDir: config.stateDir, gameDirs: config.games.map((g) => resolve(dirname(file), g)), port: config.listen.port || undefined, portOffset: config.challenges.portOffset };
  }
  return { stateDir: resolve(opts.stateDir ?? '/var/lib/wargate'), gameDirs: (opts.games ?? [DEMO_GAME]).map((g) => resolve(g)) };
}

withGameOptions(program.command('games'))
  .description('list the games, their levels and whether their layers are built (builds nothing)')
  .option('--json', 'print JSON for machines instead of text')
  .action((opts: GameOptions & { json?: boolean }) => {
    process.exitCode = gamesCommand(gameSources(opts), { json: opts.json });
  });

withGameOptions(program.command('build'))
  .description("build games' layers (all of them if none is named); unchanged inputs are not rebuilt")
  .argument('[game...]', 'game names (or folder names)')
  .action(async (names: string[], opts: GameOptions) => {
    process.exitCode = await buildCommand(gameSources(opts), names);
  });

withGameOptions(program.command('check'))
  .description("play each level with its solver against a running gateway; TAP (or JSON) out, exit 1 on any failure")
  .argument('[game]', 'game name (default: every game)')
  .option('--level <n>', 'only this level (index or user name)')
  .option('--host <address>', "the gateway's address", '127.0.0.1')
  .option('-p, --port <port>', "the gateway's port (default: the config's, or 2220)", port)
  .option('--port-offset <n>', "added to the games' challenge ports (default: the config's challenges.portOffset, or 0)", port)
  // 120 s: a solver that waits for a cron job's next tick (the demo's run every 60 s) needs more than a minute.
  .option('--timeout <seconds>', 'deadline of each solver', (v) => {
    const n = Number(v);
    if (!(n > 0)) throw new InvalidArgumentError('expected a positive number of seconds');
    return n;
  }, 120)
  .addOption(new Option('--json', 'print one JSON document').conflicts('tap'))
  .option('--tap', 'print TAP version 13 (the default)')
  .action(async (game: string | undefined, opts: GameOptions & { level?: string; host: string; port?: number; portOffset?: number; timeout: number; json?: boolean }) => {
    const sources = gameSources(opts);
    process.exitCode = await checkCommand(sources, game ? [game] : [], {
      host: opts.host,
      port: opts.port ?? sources.port ?? 2220,
      portOffset: opts.portOffset ?? sources.portOffset ?? 0,
      level: opts.level,
      json: opts.json,
      timeoutSeconds: opts.timeout,
    });
  });

withSocketOptions(program.command('reload'))
  .description('make the running gateway load its games again: new logins get rebuilt layers, live sessions keep theirs')
  .action(async (opts: SocketOptions) => {
    process.exitCode = await reloadCommand(locateAdminSocket(opts));
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof WargateError) {
    console.error(`wargate: ${err.code}: ${err.message}`);
  } else {
    console.error('wargate: unexpected error:', err);
  }
  process.exit(2);
});
