// The games a gateway serves: each loaded from its folder, validated, its layers built, and its
// levels indexed by user name. Level user names must be unique across the games of one gateway,
// since the SSH user name alone picks the game and the level.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ParsedKey } from 'ssh2';
import { loadYamlFile, ConfigError } from '../config/load-yaml.js';
import { gameSchema, type GameDefinition, type LevelDefinition } from '../config/schema.js';
import type { SandboxUser } from '../sandbox/types.js';
import { assertBaseProvides, ensureBase } from './base-layers.js';
import { describeSource, resolveBase, type BaseSource } from './base-source.js';
import { removeUnfinishedBuilds } from './build-once.js';
import { buildGameLayer, gameLayerName } from './layer-builder.js';
import { ensurePasswords } from './passwords.js';
import { acceptedKeys, ensureLevelKeys, type KeyPair } from './ssh-keys.js';

export const GAME_FILE = 'game.yaml';

export interface Game {
  definition: GameDefinition;
  /** What its sandboxes are made on (game.yaml `base:`). */
  base: BaseSource;
  /**
   * Read-only layers, top first: the game layer, then the host skeleton (host base), or the
   * minimal skeleton and the base's root filesystem (directory or image base).
   */
  layers: string[];
  /** Its sandboxes get the host's /usr, read-only (a game on the host's base). */
  hostUsr: boolean;
}

export interface Level {
  game: Game;
  definition: LevelDefinition;
  index: number;
  password: string;
  /** Public keys that may log in as this level (none: password only). */
  publicKeys: ParsedKey[];
  user: SandboxUser;
}

export interface CatalogOptions {
  /** Told of each long build step (a compile, a repository, a build step) as it starts, and of a build step's output lines. */
  progress?: (line: string) => void;
}

export class GameCatalog {
  private levels = new Map<string, Level>();
  private current: Game[] = [];

  /** Serializes loads: a reload waits for the one before it. */
  private loading: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly gameDirs: string[],
    private readonly stateDir: string,
    private readonly options: CatalogOptions,
  ) {}

  /** Loads and builds every game folder; rejects with ConfigError or WG_ERR_LAYER_BUILD, serving nothing. */
  static async open(gameDirs: string[], stateDir: string, options: CatalogOptions = {}): Promise<GameCatalog> {
    removeUnfinishedBuilds(join(stateDir, 'layers'));
    const catalog = new GameCatalog(gameDirs, stateDir, options);
    await catalog.reload();
    return catalog;
  }

  /** The games, as of the last successful load. */
  get games(): Game[] {
    return this.current;
  }

  /**
   * Loads every game folder again (building what changed) and, only if all of them load, serves
   * the result: new logins get the new levels and layers, while a session keeps the Level it holds.
   * On a failure it throws and the catalog is unchanged. It leaves unfinished builds alone: a
   * `wargate build` may be running beside the gateway.
   */
  reload(): Promise<Game[]> {
    const loaded = this.loading.then(() => this.load()).then(() => this.current);
    this.loading = loaded.catch(() => {});
    return loaded;
  }

  private async load(): Promise<void> {
    const layersDir = join(this.stateDir, 'layers');
    const games: Game[] = [];
    const levels = new Map<string, Level>();
    for (const dir of this.gameDirs) {
      const file = join(dir, GAME_FILE);
      const definition = loadYamlFile(file, gameSchema);
      const { passwords, keys } = ensureSecrets(definition, this.stateDir);
      const privateKeys = new Map([...keys].map(([user, pair]) => [user, pair.private]));
      const source = resolveBase(definition, dir, file);
      const base = await ensureBase(layersDir, source, this.options.progress);
      const layer = await buildGameLayer(layersDir, { game: definition, dir, passwords, privateKeys, progress: this.options.progress, ...baseInputs(source, dir) }, base);
      // The host's base is checked once for all games (host-tools.ts); another base here, per game.
      if (!base.hostUsr) assertBaseProvides(definition, file, [layer, ...base.layers], describeSource(source));
      const game: Game = { definition, base: source, layers: [layer, ...base.layers], hostUsr: base.hostUsr };
      games.push(game);
      definition.levels.forEach((level, index) => {
        if (levels.has(level.user)) {
          throw new ConfigError([{ file, line: 1, column: 1, field: `levels.${index}.user`, message: `user "${level.user}" is already a level of game ${levels.get(level.user)!.game.definition.name}` }]);
        }
        levels.set(level.user, {
          game,
          definition: level,
          index,
          password: passwords.get(level.user)!,
          publicKeys: acceptedKeys(level, keys),
          user: { name: level.user, uid: level.uid, gid: level.uid, groups: [], home: `/home/${level.user}`, shell: level.shell },
        });
      });
    }
    this.current = games;
    this.levels = levels;
  }

  level(user: string): Level | undefined {
    return this.levels.get(user);
  }
}

/** What a game layer's hash takes of its base: its identity, and (in the game folder) its path to leave out. */
function baseInputs(source: BaseSource, dir: string): { baseIdentity?: string; hashExclude?: string } {
  if (source.kind === 'host') return {};
  return { baseIdentity: source.identity, hashExclude: source.path };
}

/** Where a game's generated secrets are kept in the state dir. */
export function secretsDir(stateDir: string, game: string): string {
  return join(stateDir, 'games', game);
}

function ensureSecrets(definition: GameDefinition, stateDir: string) {
  const secrets = secretsDir(stateDir, definition.name);
  return { passwords: ensurePasswords(definition, join(secrets, 'passwords.json')), keys: ensureLevelKeys(definition, join(secrets, 'keys.json')) };
}

export interface GameStatus {
  dir: string;
  definition: GameDefinition;
  base: BaseSource;
  /** The layer's directory; undefined until the first build has generated the game's secrets. */
  layer: string | undefined;
  built: boolean;
}

/**
 * What `wargate games` shows of one game folder, read without building or generating anything:
 * the layer its inputs name today and whether it exists. Throws ConfigError for a bad game.yaml.
 */
export function inspectGame(dir: string, stateDir: string): GameStatus {
  const file = join(dir, GAME_FILE);
  const definition = loadYamlFile(file, gameSchema);
  const base = resolveBase(definition, dir, file);
  const secrets = secretsDir(stateDir, definition.name);
  const saved = (name: string): Record<string, unknown> => {
    const file = join(secrets, name);
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  };
  const savedPasswords = saved('passwords.json') as Record<string, string>;
  const savedKeys = saved('keys.json') as Record<string, KeyPair>;
  const passwords = new Map<string, string>();
  const privateKeys = new Map<string, string>();
  for (const level of definition.levels) {
    const password = level.password ?? savedPasswords[level.user];
    if (password === undefined) return { dir, definition, base, layer: undefined, built: false };
    passwords.set(level.user, password);
    if (level.sshKey) {
      const key = savedKeys[level.user];
      if (key === undefined) return { dir, definition, base, layer: undefined, built: false };
      privateKeys.set(level.user, key.private);
    }
  }
  const layer = join(stateDir, 'layers', gameLayerName({ game: definition, dir, passwords, privateKeys, ...baseInputs(base, dir) }));
  return { dir, definition, base, layer, built: existsSync(layer) };
}
