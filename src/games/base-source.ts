// What a game names as its base (game.yaml `base:`), resolved and identified without building
// anything: the host's system, a root filesystem directory, or an image (a tarball or an OCI layout
// directory). The identity is what the cache of the unpacked base and the game layer's hash use.
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, statSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { fieldError } from '../config/load-yaml.js';
import type { GameDefinition } from '../config/schema.js';
import { WargateError } from '../errors/catalog.js';

export type BaseSource =
  | { kind: 'host' }
  /** A root filesystem tree; identity: a hash of every entry's path, type, owner, mode, size and times. */
  | { kind: 'directory'; path: string; identity: string }
  /** A `docker save` tarball or an OCI layout (directory or tar); identity: the hash of its bytes. */
  | { kind: 'image'; path: string; identity: string; container: 'tar' | 'directory' };

/** How `wargate games` and the logs name a base. */
export function describeSource(source: BaseSource): string {
  return source.kind === 'host' ? 'host' : `${source.kind} ${source.path}`;
}

/** Resolves `base:` of a game loaded from `file` in `gameDir`; a missing path is a ConfigError at its line. */
export function resolveBase(definition: GameDefinition, gameDir: string, file: string): BaseSource {
  const base = definition.base;
  if (base === undefined) return { kind: 'host' };
  const field = base.directory !== undefined ? 'directory' : 'image';
  const path = resolve(gameDir, (base.directory ?? base.image)!);
  let st: Stats;
  try {
    st = statSync(path);
  } catch (err) {
    throw fieldError(file, ['base', field], `${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
  }
  if (field === 'directory') {
    if (!st.isDirectory()) throw fieldError(file, ['base', 'directory'], `${path}: expected a directory (a root filesystem tree)`);
    return { kind: 'directory', path, identity: `directory:${treeHash(path)}` };
  }
  if (!st.isFile() && !st.isDirectory()) throw fieldError(file, ['base', 'image'], `${path}: expected an image tarball or an OCI layout directory`);
  return { kind: 'image', path, identity: `image:${contentHash(path, st)}`, container: st.isDirectory() ? 'directory' : 'tar' };
}

/** Hashes already computed in this process, by file identity: a reload does not read a big image again. */
const memo = new Map<string, string>();

/** sha256 of a file's bytes, or of every file under a directory (paths and bytes, in order). */
function contentHash(path: string, st: Stats): string {
  const key = `${path}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  const known = memo.get(key);
  if (known !== undefined) return known;
  const h = createHash('sha256');
  const buffer = Buffer.allocUnsafe(1 << 20);
  const hashFile = (file: string) => {
    const fd = openSync(file, 'r');
    try {
      for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) h.update(buffer.subarray(0, n));
    } finally {
      closeSync(fd);
    }
  };
  try {
    if (st.isFile()) hashFile(path);
    else walk(path, (rel, entry) => {
      h.update(`${rel}\0`);
      if (entry.isFile()) hashFile(join(path, rel));
      else if (entry.isSymbolicLink()) h.update(readlinkSync(join(path, rel)));
    });
  } catch (err) {
    throw new WargateError('WG_ERR_LAYER_BUILD', `${path}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  const digest = h.digest('hex');
  memo.set(key, digest);
  return digest;
}

/**
 * A hash of a tree's metadata, not its bytes (a root filesystem is large): every entry's path,
 * type, mode, owner, size, device, link target and change time. Any change to a file changes its
 * ctime, which nothing can set back.
 */
function treeHash(root: string): string {
  const h = createHash('sha256');
  try {
    walk(root, (rel, st) => {
      h.update(`${rel}\0${st.mode}:${st.uid}:${st.gid}:${st.size}:${st.rdev}:${st.mtimeMs}:${st.ctimeMs}\0`);
      if (st.isSymbolicLink()) h.update(readlinkSync(join(root, rel)));
    });
  } catch (err) {
    throw new WargateError('WG_ERR_LAYER_BUILD', `${root}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  return h.digest('hex');
}

/** Every entry under `root` (not following symbolic links), sorted, with its lstat. */
function walk(root: string, visit: (rel: string, st: Stats) => void): void {
  const dir = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const child = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, child));
      visit(child, st);
      if (st.isDirectory()) dir(child);
    }
  };
  dir('');
}
