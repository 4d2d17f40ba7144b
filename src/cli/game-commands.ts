// The game commands of the CLI (`wargate games`, `build`, `check`): they call src/games and src/check
// and print. They return the exit code; errors with a catalog code are thrown for main.ts to print.
import { existsSync } from 'node:fs';
import { checkGames, type LevelResult } from '../check/check.js';
import { jsonReport, tapReport } from '../check/report.js';
import { WargateError } from '../errors/catalog.js';
import { GameCatalog, inspectGame, type GameStatus } from '../games/catalog.js';

export interface GameSources {
  stateDir: string;
  gameDirs: string[];
}

/** `wargate games [--json]`: each game, its build state, its base and its levels; builds nothing. */
export function gamesCommand(sources: GameSources, { json = false } = {}): number {
  const games = sources.gameDirs.map((dir) => inspectGame(dir, sources.stateDir));
  if (json) {
    process.stdout.write(JSON.stringify(games.map(describe), null, 2) + '\n');
    return 0;
  }
  for (const game of games.map(describe)) {
    const state = game.layer === null ? 'not built (no secrets generated yet)' : game.built ? `built, layer ${game.layer}` : `not built, would be ${game.layer}`;
    process.stdout.write(`${game.name}  ${game.dir}\n  ${state}\n  base: ${game.base.kind}${game.base.path === null ? '' : ` ${game.base.path}`}\n`);
    const width = Math.max(...game.levels.map((l) => l.user.length));
    for (const l of game.levels) {
      process.stdout.write(`  ${l.user.padEnd(width)}  uid ${l.uid}  shell ${l.shell}  key login: ${l.keyLogin ? 'yes' : 'no'}  solver: ${l.solver ?? '-'}\n`);
    }
  }
  return 0;
}

function describe(game: GameStatus) {
  return {
    name: game.definition.name,
    dir: game.dir,
    base: { kind: game.base.kind, path: game.base.kind === 'host' ? null : game.base.path },
    layer: game.layer ?? null,
    built: game.built,
    levels: game.definition.levels.map((l) => ({
      user: l.user,
      uid: l.uid,
      shell: l.shell,
      keyLogin: l.sshKey || l.authorizedKeys.length > 0,
      solver: l.solver ?? null,
    })),
  };
}

/** The game folders among `sources` whose game is named `name` (or whose folder is `name`). */
export function selectGames(sources: GameSources, names: string[]): string[] {
  if (names.length === 0) return sources.gameDirs;
  return names.map((name) => {
    const dir = sources.gameDirs.find((d) => d === name || d.split('/').at(-1) === name || (existsSync(`${d}/game.yaml`) && inspectGame(d, sources.stateDir).definition.name === name));
    if (!dir) throw new WargateError('WG_ERR_CONFIG_INVALID', `no game ${name} among ${sources.gameDirs.join(', ')}`);
    return dir;
  });
}

/** `wargate build [GAME...]`: builds each layer unless its inputs are unchanged, with progress lines. */
export async function buildCommand(sources: GameSources, names: string[]): Promise<number> {
  for (const dir of selectGames(sources, names)) {
    const before = inspectGame(dir, sources.stateDir);
    const name = before.definition.name;
    if (before.built) {
      // Still load it: that checks it exactly as the gateway will, and builds nothing.
      await GameCatalog.open([dir], sources.stateDir);
      process.stdout.write(`${name}: up to date (${before.layer})\n`);
      continue;
    }
    process.stdout.write(`${name}: building\n`);
    const started = performance.now();
    const catalog = await GameCatalog.open([dir], sources.stateDir, { progress: (line) => process.stdout.write(`${name}: ${line}\n`) });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    process.stdout.write(`${name}: built ${catalog.games[0].layers[0]} in ${seconds} s\n`);
  }
  return 0;
}

export interface CheckCommandOptions {
  host: string;
  port: number;
  portOffset: number;
  level?: string;
  json?: boolean;
  timeoutSeconds: number;
}

/** `wargate check [GAME]`: TAP (or JSON) on stdout, a line per level on stderr as it ends; 1 on any failure. */
export async function checkCommand(sources: GameSources, names: string[], opts: CheckCommandOptions): Promise<number> {
  const targets = selectGames(sources, names).map((dir) => ({ dir, definition: inspectGame(dir, sources.stateDir).definition }));
  const results: LevelResult[] = await checkGames(targets, {
    host: opts.host,
    port: opts.port,
    portOffset: opts.portOffset,
    stateDir: sources.stateDir,
    level: opts.level,
    timeoutMs: opts.timeoutSeconds * 1000,
    onResult: (r) => process.stderr.write(`${r.game}/${r.level}: ${r.status}${r.status === 'skip' ? ` (${r.reason})` : ` in ${r.seconds.toFixed(1)} s`}\n`),
  });
  process.stdout.write(opts.json ? jsonReport(results) : tapReport(results));
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}
