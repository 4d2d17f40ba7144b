// Small games written by tests into temporary folders, built with the real CLI (`wargate build`),
// and the proofs that a build left nothing behind: no half-built layer, no host mount, no process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, parseYaml } from '../../src/config/load-yaml.js';
import { gameSchema } from '../../src/config/schema.js';
import { WARGATE } from './gateway.js';
import { processesIn } from './leftovers.js';

/** game.yaml text of a one-level game (level0, uid 12000) whose `section:` lists `entries`, for schema tests. */
export const oneLevelGame = (section: string) => (entries: string) =>
  `name: g\nhostname: h\nlevels:\n  - user: level0\n    uid: 12000\n    password: x\n${section}:\n${entries}`;

/** What the game schema finds wrong with game.yaml text, as line, field and message; [] if it accepts it. */
export function gameProblems(text: string): { line: number; field: string; message: string }[] {
  try {
    parseYaml(text, 'game.yaml', gameSchema);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map(({ line, field, message }) => ({ line, field, message }));
  }
  return [];
}

/** Writes game.yaml and further files (paths relative to the game folder) into `dir`. */
export function writeGame(dir: string, yaml: string, files: Record<string, string> = {}): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'game.yaml'), yaml);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `wargate ARGS...` to its end. */
export function wargate(...args: string[]): CliResult {
  const r = spawnSync(WARGATE, args, { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `wargate build` of one game folder into a state dir. */
export function build(stateDir: string, gameDir: string): CliResult {
  return wargate('build', '--state-dir', stateDir, '--games', gameDir);
}

/** The layer a successful `wargate build` printed. */
export function builtLayer(r: CliResult): string {
  assert.equal(r.status, 0, `build failed: ${r.stderr}`);
  const layer = /: built (\S+) in [\d.]+ s$/m.exec(r.stdout)?.[1];
  assert.ok(layer, r.stdout);
  return layer;
}

/**
 * Nothing of a build is left: no unfinished layer or scratch in the layers dir, no host mount under
 * the state dir, no process in the namespaces a step printed (`readlink /proc/self/ns/pid` ...).
 */
export function assertBuildLeftNothing(stateDir: string, namespaces: string[] = []): void {
  const layers = join(stateDir, 'layers');
  const unfinished = existsSync(layers) ? readdirSync(layers).filter((n) => n.startsWith('.')) : [];
  assert.deepEqual(unfinished, [], 'no unfinished layer or scratch directory');
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(stateDir));
  assert.deepEqual(mounts, [], 'no host mount under the state dir');
  assert.deepEqual(processesIn(new Set(namespaces)), [], `no process in the build's namespaces ${namespaces.join(' ')}`);
}

/** The namespaces (pid:[N], mnt:[N]) a build step printed on lines of their own. */
export function printedNamespaces(output: string): string[] {
  return [...output.matchAll(/\b((?:pid|mnt):\[\d+\])/g)].map((m) => m[1]);
}
