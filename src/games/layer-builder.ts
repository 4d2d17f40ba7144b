// Builds a game's read-only layer from its definition: users and groups, per-level password files,
// homes, extra files, compiled (possibly setuid) programs, git repositories, then the build steps in
// a build sandbox. The layer is named by the hash of every input, so an unchanged game is never
// rebuilt and a changed one gets a new directory.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, cpSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { FileSpec, GameDefinition } from '../config/schema.js';
import { WargateError } from '../errors/catalog.js';
import { ownBySandboxRoot } from '../sandbox/ids.js';
import { buildOnce } from './build-once.js';
import { runBuildSteps } from './build-steps.js';
import { filesUnder, writeRepository } from './git-repository.js';

const LAYER_VERSION = 'layer-3';
const PASSWORD_PLACEHOLDER = /\{\{password:([a-z0-9_-]+)\}\}/g;
const PRIVATE_KEY_PLACEHOLDER = /\{\{private-key:([a-z0-9_-]+)\}\}\n?/g;
/** Dot files every home gets unless the game defines its own. */
const SKEL_FILES = ['.bashrc', '.profile', '.bash_logout'];

export interface LayerInputs {
  game: GameDefinition;
  /** The game folder: `source` and `compile` paths are relative to it. */
  dir: string;
  passwords: Map<string, string>;
  /** Private keys of the levels with `sshKey` (OpenSSH format). */
  privateKeys: Map<string, string>;
  /** Told of each long step (a compile, a repository, a build step and its output lines): `wargate build` prints them. */
  progress?: (line: string) => void;
  /** What the layer is built on, for its hash: undefined for the host's base. */
  baseIdentity?: string;
  /** A path of the game folder its hash leaves out (the base image, hashed as baseIdentity). */
  hashExclude?: string;
}

/** The base a layer is built on: what is under it at run time. */
export interface LayerBase {
  /** The read-only layers under the game layer, top first. */
  layers: string[];
  /** The host's /usr is bound over the root (the host's base). */
  hostUsr: boolean;
  /** Where the homes' default dot files come from. */
  skel: string;
}

export function passwordDir(game: GameDefinition): string {
  return game.passwordDir ?? `/etc/${game.name}_pass`;
}

export function buildGameLayer(layersDir: string, inputs: LayerInputs, base: LayerBase): Promise<string> {
  return buildOnce(layersDir, gameLayerName(inputs), (root) => writeLayer(root, inputs, base));
}

/** The layer's directory name under the layers dir: what it is (or will be) called once built. */
export function gameLayerName(inputs: LayerInputs): string {
  return `game-${inputs.game.name}-${layerHash(inputs)}`;
}

function layerHash({ game, dir, passwords, privateKeys, baseIdentity, hashExclude }: LayerInputs): string {
  const h = createHash('sha256').update(LAYER_VERSION).update(JSON.stringify(game));
  if (baseIdentity !== undefined) h.update(`base\0${baseIdentity}\0`);
  // Build steps may read anything in the game folder (at /build): all of it is an input.
  if (game.build.length > 0) hashFolder(h, dir, hashExclude);
  for (const [user, pw] of passwords) h.update(`${user}\0${pw}\0`);
  for (const [user, key] of privateKeys) h.update(`${user}\0${key}\0`);
  for (const f of [...game.files, ...game.levels.flatMap((l) => l.home)]) {
    const src = f.source ?? f.compile;
    if (src !== undefined) h.update(readSource(dir, src));
  }
  for (const repo of game.repositories) {
    if (repo.preReceive !== undefined) h.update(readSource(dir, repo.preReceive));
    if (repo.from === undefined) continue;
    const from = join(dir, repo.from);
    for (const file of filesUnder(from)) h.update(`${file}\0`).update(readSource(from, file));
  }
  return h.digest('hex').slice(0, 16);
}

/** Every entry under `dir` (but `exclude`): its path, type, mode, and content or link target. */
function hashFolder(h: ReturnType<typeof createHash>, dir: string, exclude: string | undefined): void {
  const visit = (path: string) => {
    const rel = relative(dir, path);
    if (exclude !== undefined && path === exclude) return;
    const st = lstatSync(path);
    h.update(`${rel}\0${st.mode}\0`);
    if (st.isSymbolicLink()) h.update(readlinkSync(path));
    else if (st.isFile()) h.update(readSource(dir, rel));
    else if (st.isDirectory()) for (const name of readdirSync(path).sort()) visit(join(path, name));
    h.update('\0');
  };
  try {
    visit(dir);
  } catch (err) {
    if (err instanceof WargateError) throw err;
    throw new WargateError('WG_ERR_LAYER_BUILD', `${dir}: cannot read: ${(err as Error).message}`, { cause: err });
  }
}

function readSource(dir: string, rel: string): Buffer {
  try {
    return readFileSync(join(dir, rel));
  } catch (err) {
    throw new WargateError('WG_ERR_LAYER_BUILD', `${join(dir, rel)}: cannot read: ${(err as Error).message}`, { cause: err });
  }
}

async function writeLayer(root: string, { game, dir, passwords, privateKeys, progress = () => {} }: LayerInputs, base: LayerBase): Promise<void> {
  const uidOf = new Map<string, number>([['root', 0], ...game.levels.map((l): [string, number] => [l.user, l.uid])]);
  const etc = (name: string, text: string, mode = 0o644) => writeFileSync(join(root, 'etc', name), text, { mode });
  mkdirSync(join(root, 'etc'), { mode: 0o755 });

  etc('passwd', [
    'root:x:0:0:root:/root:/bin/bash',
    ...game.levels.map((l) => `${l.user}:x:${l.uid}:${l.uid}:${l.user}:/home/${l.user}:${l.shell}`),
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
  ].join('\n') + '\n');
  etc('group', [
    'root:x:0:', 'tty:x:5:',
    ...game.levels.map((l) => `${l.user}:x:${l.uid}:`),
    'nogroup:x:65534:',
  ].join('\n') + '\n');
  // No usable password hashes inside: logins happen at the gateway, never through su or login.
  etc('shadow', ['root:*:19000:0:99999:7:::', ...game.levels.map((l) => `${l.user}:*:19000:0:99999:7:::`)].join('\n') + '\n', 0o600);
  etc('hostname', `${game.hostname}\n`);
  etc('hosts', `127.0.0.1\tlocalhost\n127.0.1.1\t${game.hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`);

  const fill = (text: string) =>
    text
      .replace(PASSWORD_PLACEHOLDER, (_, user: string) => {
        const pw = passwords.get(user);
        if (pw === undefined) throw new WargateError('WG_ERR_LAYER_BUILD', `{{password:${user}}}: no level "${user}" in game ${game.name}`);
        return pw;
      })
      .replace(PRIVATE_KEY_PLACEHOLDER, (_, user: string) => {
        const key = privateKeys.get(user);
        if (key === undefined) throw new WargateError('WG_ERR_LAYER_BUILD', `{{private-key:${user}}}: level "${user}" of game ${game.name} has no sshKey`);
        return key.endsWith('\n') ? key : key + '\n';
      });

  const place = (path: string, f: FileSpec, owner: string, group: string, mode: number) => {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    if (f.directory) mkdirSync(path, { recursive: true });
    else if (f.compile !== undefined) {
      progress(`compiling ${f.compile} -> ${path.slice(root.length)}`);
      compile(join(dir, f.compile), path, !base.hostUsr);
    }
    else if (f.source !== undefined) cpSync(join(dir, f.source), path);
    else writeFileSync(path, fill(f.content ?? ''));
    // chown before chmod: chown clears setuid bits.
    chownSync(path, uidOf.get(f.owner ?? owner)!, uidOf.get(f.group ?? group)!);
    chmodSync(path, f.mode ?? (f.directory ? 0o755 : mode));
  };

  const pwDir = join(root, passwordDir(game));
  mkdirSync(pwDir, { recursive: true, mode: 0o755 });
  for (const level of game.levels) {
    const file = join(pwDir, level.user);
    writeFileSync(file, `${passwords.get(level.user)}\n`);
    chownSync(file, level.uid, level.uid);
    chmodSync(file, 0o400);
  }

  for (const level of game.levels) {
    const home = join(root, 'home', level.user);
    mkdirSync(home, { recursive: true });
    for (const skel of SKEL_FILES) {
      if (isRegularFile(join(base.skel, skel)) && !level.home.some((f) => f.path === skel)) {
        cpSync(join(base.skel, skel), join(home, skel));
        chownSync(join(home, skel), level.uid, level.uid);
      }
    }
    for (const f of level.home) place(join(home, f.path), f, level.user, level.user, 0o640);
    chownSync(home, level.uid, level.uid);
    chmodSync(home, 0o750);
  }
  for (const f of game.files) place(join(root, f.path), f, 'root', 'root', f.compile ? 0o755 : 0o644);
  for (const repo of game.repositories) {
    progress(`repository ${repo.path}`);
    writeRepository(join(root, repo.path), repo, dir, uidOf.get(repo.owner)!, fill);
  }
  // What root owns here is the sandbox's root's (its user namespace does not map the host's): the
  // build steps run as that root, and must be able to change what is placed above.
  ownBySandboxRoot(root);
  await runBuildSteps({ steps: game.build, root, lower: base.layers, hostUsr: base.hostUsr, gameDir: dir, hostname: game.hostname, fill, progress });
  // The steps ran as the sandbox's root; anything else the host's root may own is handed over too.
  ownBySandboxRoot(root);
}

/** A regular file, not reached through a symbolic link at its last component (a base's /etc/skel may hold anything). */
function isRegularFile(path: string): boolean {
  try {
    return lstatSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The host's gcc. On a directory or image base the program is linked statically: the base's C
 * library may differ from the host's, or be missing (build steps use the base's own compilers).
 */
function compile(source: string, output: string, linkStatically: boolean): void {
  try {
    execFileSync('gcc', ['-O2', '-Wall', ...(linkStatically ? ['-static'] : []), '-o', output, source], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new WargateError('WG_ERR_LAYER_BUILD', `gcc ${source}: ${stderr || (err as Error).message}`, { cause: err });
  }
}
