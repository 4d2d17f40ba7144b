// argv -> calls. No logic of its own beyond turning options into a config and errors into exit codes.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { killCommand, sessionsCommand } from '../admin/commands.js';
import { locateAdminSocket } from '../admin/socket-path.js';
import { loadYamlFile } from '../config/load-yaml.js';
import { serverConfigSchema, type ServerConfig } from '../config/schema.js';
import { Gateway } from '../daemon/gateway.js';
import { WargateError } from '../errors/catalog.js';
import { createLogger } from '../log/logger.js';

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
  .action(async (opts: { port: number; host: string; stateDir: string; logLevel: string }) => {
    const config = serverConfigSchema.parse({
      listen: { host: opts.host, port: opts.port },
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

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof WargateError) {
    console.error(`wargate: ${err.code}: ${err.message}`);
  } else {
    console.error('wargate: unexpected error:', err);
  }
  process.exit(2);
});
