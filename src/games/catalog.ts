// The games a gateway serves: each loaded from its folder, validated, its layers built, and its
// levels indexed by user name. Level user names must be unique across the games of one gateway,
// since the SSH user name alone picks the game and the level.
import { join } from 'node:path';
import type { ParsedKey } from 'ssh2';
import { loadYamlFile, ConfigError } from '../config/load-yaml.js';
import { gameSchema, type GameDefinition, type LevelDefinition } from '../config/schema.js';
import type { SandboxUser } from '../sandbox/types.js';
import { ensureBaseSkeleton } from './base-skeleton.js';
import { removeUnfinishedBuilds } from './build-once.js';
import { buildGameLayer } from './layer-builder.js';
import { ensurePasswords } from './passwords.js';
import { acceptedKeys, ensureLevelKeys } from './ssh-keys.js';

export const GAME_FILE = 'game.yaml';

export interface Game {
  definition: GameDefinition;
  /** Read-only layers, top first: the game layer, then the base skeleton. */
  layers: string[];
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

export class GameCatalog {
  private readonly levels = new Map<string, Level>();
  readonly games: Game[] = [];

  /** Loads and builds every game folder; throws ConfigError or WG_ERR_LAYER_BUILD, serving nothing. */
  constructor(gameDirs: string[], stateDir: string) {
    const layersDir = join(stateDir, 'layers');
    removeUnfinishedBuilds(layersDir);
    const base = ensureBaseSkeleton(layersDir);
    for (const dir of gameDirs) {
      const file = join(dir, GAME_FILE);
      const definition = loadYamlFile(file, gameSchema);
      const secrets = join(stateDir, 'games', definition.name);
      const passwords = ensurePasswords(definition, join(secrets, 'passwords.json'));
      const keys = ensureLevelKeys(definition, join(secrets, 'keys.json'));
      const privateKeys = new Map([...keys].map(([user, pair]) => [user, pair.private]));
      const game: Game = { definition, layers: [buildGameLayer(layersDir, { game: definition, dir, passwords, privateKeys }), base] };
      this.games.push(game);
      definition.levels.forEach((level, index) => {
        if (this.levels.has(level.user)) {
          throw new ConfigError([{ file, line: 1, column: 1, field: `levels.${index}.user`, message: `user "${level.user}" is already a level of game ${this.levels.get(level.user)!.game.definition.name}` }]);
        }
        this.levels.set(level.user, {
          game,
          definition: level,
          index,
          password: passwords.get(level.user)!,
          publicKeys: acceptedKeys(level, keys),
          user: { name: level.user, uid: level.uid, gid: level.uid, groups: [], home: `/home/${level.user}`, shell: level.shell },
        });
      });
    }
  }

  level(user: string): Level | undefined {
    return this.levels.get(user);
  }
}
