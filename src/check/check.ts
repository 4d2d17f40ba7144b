// `wargate check`: plays each level of a game against a running gateway with the level's solver
// (game.yaml `solver:`), one level after another, and says which pass. A level passes when its
// solver's last line is the next level's password ("done" for the last level). It changes nothing:
// it only reads the game folders and the passwords in the state dir.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GameDefinition } from '../config/schema.js';
import { WargateError } from '../errors/catalog.js';
import { secretsDir } from '../games/catalog.js';
import { runSolver } from './run-solver.js';

export interface CheckTarget {
  definition: GameDefinition;
  dir: string;
}

export interface CheckOptions {
  host: string;
  port: number;
  /** The server's challenges.portOffset: solvers of challenge levels add it to the declared ports. */
  portOffset: number;
  stateDir: string;
  /** Only this level (index or user name). */
  level?: string;
  timeoutMs: number;
  /** Told as each level starts and ends (progress on stderr). */
  onResult?: (result: LevelResult) => void;
}

export interface LevelResult {
  game: string;
  level: string;
  index: number;
  status: 'pass' | 'fail' | 'skip';
  seconds: number;
  /** Why it failed, or why it was skipped. */
  reason?: string;
  /** The solver's stderr tail, for a failure. */
  stderr?: string;
}

export const FINAL_ANSWER = 'done';

export async function checkGames(targets: CheckTarget[], options: CheckOptions): Promise<LevelResult[]> {
  const results: LevelResult[] = [];
  for (const target of targets) {
    const { definition } = target;
    const passwords = levelPasswords(definition, options.stateDir);
    const levels = definition.levels.map((level, index) => ({ level, index }));
    const chosen = options.level === undefined ? levels : levels.filter(({ level, index }) => String(index) === options.level || level.user === options.level);
    if (chosen.length === 0) throw new WargateError('WG_ERR_CONFIG_INVALID', `game ${definition.name} has no level ${options.level}`);
    for (const { level, index } of chosen) {
      const base = { game: definition.name, level: level.user, index };
      let result: LevelResult;
      if (level.solver === undefined) {
        result = { ...base, status: 'skip', seconds: 0, reason: 'no solver' };
      } else {
        const next = definition.levels[index + 1];
        const expected = next === undefined ? FINAL_ANSWER : passwords.get(next.user);
        const outcome = await runSolver({
          script: join(target.dir, level.solver),
          cwd: target.dir,
          host: options.host,
          port: options.port,
          portOffset: options.portOffset,
          user: level.user,
          password: passwords.get(level.user) ?? '',
          timeoutMs: options.timeoutMs,
        });
        const seconds = outcome.ms / 1000;
        if (outcome.timedOut) {
          result = { ...base, status: 'fail', seconds, reason: `timed out after ${options.timeoutMs / 1000} s`, stderr: outcome.stderr };
        } else if (expected !== undefined && outcome.answer === expected) {
          result = { ...base, status: 'pass', seconds };
        } else {
          // Never print what it answered: it may be a real password, or a near miss of one.
          const what = next === undefined ? `"${FINAL_ANSWER}"` : `the password of ${next.user}`;
          const reason = outcome.answer === '' ? `printed nothing (exit ${outcome.status})` : `its last line is not ${what} (exit ${outcome.status})`;
          result = { ...base, status: 'fail', seconds, reason, stderr: outcome.stderr };
        }
      }
      results.push(result);
      options.onResult?.(result);
    }
  }
  return results;
}

/** user -> password: fixed ones from the definition, the rest as the build generated them. */
function levelPasswords(definition: GameDefinition, stateDir: string): Map<string, string> {
  const file = join(secretsDir(stateDir, definition.name), 'passwords.json');
  const saved = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>) : {};
  const passwords = new Map<string, string>();
  for (const level of definition.levels) {
    const password = level.password ?? saved[level.user];
    if (password !== undefined) passwords.set(level.user, password);
  }
  if (passwords.size < definition.levels.length && !existsSync(file)) {
    throw new WargateError('WG_ERR_CONFIG_INVALID', `no generated passwords for game ${definition.name} in ${file}: build it (wargate build ${definition.name}) with this state dir`);
  }
  return passwords;
}
