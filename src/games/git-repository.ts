// Bare git repositories of a game layer (game.yaml `repositories`), made with the host's git at
// build: an optional first commit from a directory of the game folder, an optional pre-receive hook,
// everything owned by the level that may push. Commits carry fixed names and dates, so the same
// inputs always give the same repository.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type { RepositorySpec } from '../config/schema.js';
import { WargateError } from '../errors/catalog.js';

const FIXED_DATE = '2024-01-01T00:00:00Z';
const GIT_ENV = {
  PATH: '/usr/bin:/bin',
  HOME: '/nonexistent',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'wargate',
  GIT_AUTHOR_EMAIL: 'wargate@localhost',
  GIT_COMMITTER_NAME: 'wargate',
  GIT_COMMITTER_EMAIL: 'wargate@localhost',
  GIT_AUTHOR_DATE: FIXED_DATE,
  GIT_COMMITTER_DATE: FIXED_DATE,
};

function git(args: string[], cwd?: string): void {
  try {
    execFileSync('git', args, { cwd, env: GIT_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new WargateError('WG_ERR_LAYER_BUILD', `git ${args.join(' ')}: ${stderr || (err as Error).message}`, { cause: err });
  }
}

/** Every file under `dir`, as paths relative to it, sorted (for hashing and filling). */
export function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => relative(dir, join(e.parentPath, e.name)))
      .sort();
  } catch (err) {
    throw new WargateError('WG_ERR_LAYER_BUILD', `${dir}: cannot read: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Writes the repository at `target` (inside the layer being built). `gameDir` holds `from` and
 * `preReceive`; `fill` replaces password placeholders in the first commit's files.
 */
export function writeRepository(target: string, repo: RepositorySpec, gameDir: string, uid: number, fill: (text: string) => string): void {
  mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
  git(['init', '--quiet', '--bare', '--initial-branch=main', target]);
  rmSync(join(target, 'hooks'), { recursive: true, force: true });
  mkdirSync(join(target, 'hooks'), { mode: 0o755 });
  if (repo.from !== undefined) {
    const work = mkdtempSync(join(tmpdir(), 'wargate-repo-'));
    try {
      cpSync(join(gameDir, repo.from), work, { recursive: true });
      for (const file of filesUnder(work)) writeFileSync(join(work, file), fill(readFileSync(join(work, file), 'utf8')));
      git(['init', '--quiet', '--initial-branch=main'], work);
      git(['add', '--all'], work);
      git(['commit', '--quiet', '--message', 'First commit'], work);
      git(['push', '--quiet', target, 'main'], work);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  if (repo.preReceive !== undefined) {
    cpSync(join(gameDir, repo.preReceive), join(target, 'hooks', 'pre-receive'));
    chmodSync(join(target, 'hooks', 'pre-receive'), 0o755);
  }
  for (const path of [target, ...readdirSync(target, { recursive: true }).map((p) => join(target, String(p)))]) chownSync(path, uid, uid);
}
