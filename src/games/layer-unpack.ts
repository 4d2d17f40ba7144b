// Applies one image layer (a tar, plain or gzip) to a root filesystem directory as a container
// engine does: first its whiteouts on what the layers below left (`.wh.NAME` deletes NAME,
// `.wh..wh..opq` empties its directory), then its entries, with their owners, modes and setuid bits.
// The image is untrusted: nothing is ever written, deleted or linked outside the target.
//
// node-tar (npm `tar`) parses and writes. Its own guards are made for package archives: they
// rewrite an absolute symbolic link target ("/bin/sh -> /bin/busybox") into a relative one, which
// breaks a root filesystem. So it runs with preservePaths, and every entry passes wargate's guards
// first, in its filter (synchronous unpacking: earlier entries are on disk when a later one is
// checked): an absolute path or one with ".." is refused, as is one under a symbolic link or a file,
// and a hard link's target likewise; symbolic links themselves are kept as written (they are only
// ever followed inside the sandbox). Device nodes and fifos are skipped: /dev is wargate's own.
import { chmodSync, lstatSync, readdirSync, rmSync, unlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar';
import { WargateError } from '../errors/catalog.js';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
/** Entry types unpacked; the rest (character and block devices, fifos) are skipped. */
const KEPT = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

/** Applies the layer in `file` to `target`; `label` names the layer in errors. */
export function unpackLayer(file: string, target: string, label: string): void {
  const refuse = (why: string): never => {
    throw new WargateError('WG_ERR_LAYER_BUILD', `${label}: refused: ${why}`);
  };
  try {
    applyWhiteouts(file, target, refuse);
    extract(file, target, refuse);
  } catch (err) {
    if (err instanceof WargateError) throw err;
    throw new WargateError('WG_ERR_LAYER_BUILD', `${label}: cannot unpack: ${(err as Error).message}`, { cause: err });
  }
}

/** An entry's path as a relative path ("" for the root itself); absolute paths and ".." refused. */
function memberPath(raw: string, refuse: (why: string) => never): string {
  if (raw.startsWith('/')) refuse(`absolute path ${JSON.stringify(raw)}`);
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) refuse(`path with ".." ${JSON.stringify(raw)}`);
  return parts.join('/');
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Whether every existing directory on the way to `rel` (not `rel` itself) in `target` is a real
 * directory: 'ok', 'missing' (a component does not exist yet), or the first component that is a
 * symbolic link or not a directory.
 */
function walkParents(target: string, rel: string): 'ok' | 'missing' | { blocked: string } {
  const parts = rel.split('/');
  for (let i = 1; i < parts.length; i++) {
    const prefix = parts.slice(0, i).join('/');
    const st = lstatOrUndefined(join(target, prefix));
    if (!st) return 'missing';
    if (!st.isDirectory()) return { blocked: prefix };
  }
  return 'ok';
}

/** Removes `path` itself (never following it, if a symbolic link) and, for a directory, all under it. */
function remove(path: string): void {
  const st = lstatOrUndefined(path);
  if (!st) return;
  if (st.isDirectory()) rmSync(path, { recursive: true, force: true });
  else unlinkSync(path);
}

/**
 * The layer's whiteouts apply to the layers below only, so they are applied before its entries are
 * unpacked. One under a symbolic link or a file of the layers below hides nothing there: skipped.
 */
function applyWhiteouts(file: string, target: string, refuse: (why: string) => never): void {
  const deletions: string[] = [];
  const opaque: string[] = [];
  tar.t({
    file,
    sync: true,
    onReadEntry: (entry) => {
      const rel = memberPath(entry.path, refuse);
      const slash = rel.lastIndexOf('/');
      const dir = slash < 0 ? '' : rel.slice(0, slash);
      const name = rel.slice(slash + 1);
      if (name === OPAQUE) opaque.push(dir);
      else if (name.startsWith(WHITEOUT)) {
        const hidden = name.slice(WHITEOUT.length);
        if (hidden === '' || hidden === '.' || hidden === '..') refuse(`whiteout ${JSON.stringify(entry.path)}`);
        deletions.push(dir ? `${dir}/${hidden}` : hidden);
      }
    },
  });
  for (const dir of opaque) {
    if (walkParents(target, dir ? `${dir}/x` : 'x') !== 'ok') continue;
    const st = lstatOrUndefined(join(target, dir));
    if (!st) continue;
    if (!st.isDirectory()) remove(join(target, dir)); // the layer's directory replaces it
    else for (const child of readdirSync(join(target, dir))) remove(join(target, dir, child));
  }
  for (const rel of deletions) if (walkParents(target, rel) === 'ok') remove(join(target, rel));
}

function extract(file: string, target: string, refuse: (why: string) => never): void {
  /** chown clears setuid and setgid bits, and node-tar chowns after it sets the mode: put back after. */
  const special = new Map<string, number>();
  tar.x({
    file,
    cwd: target,
    sync: true,
    strict: true,
    preservePaths: true,
    preserveOwner: true,
    unlink: true,
    chmod: true,
    processUmask: 0,
    filter: (_path, entry) => {
      if (!('type' in entry) || typeof entry.type !== 'string') return false;
      const rel = memberPath(entry.path, refuse);
      const name = rel.slice(rel.lastIndexOf('/') + 1);
      if (name.startsWith(WHITEOUT) || !KEPT.has(entry.type)) return false;
      const parents = walkParents(target, rel);
      if (typeof parents === 'object') refuse(`${JSON.stringify(entry.path)} goes through ${JSON.stringify(parents.blocked)}, a symbolic link or a file`);
      if (entry.type === 'Link') {
        const linked = memberPath(String(entry.linkpath ?? ''), refuse);
        const to = walkParents(target, linked);
        if (linked === '' || typeof to === 'object' || !lstatOrUndefined(join(target, linked))) {
          refuse(`hard link ${JSON.stringify(entry.path)} to ${JSON.stringify(entry.linkpath)}, not a file of the image`);
        }
      }
      if (typeof entry.mode === 'number' && (entry.mode & 0o7000) !== 0 && entry.type !== 'SymbolicLink') special.set(rel, entry.mode & 0o7777);
      else special.delete(rel);
      return true;
    },
  });
  for (const [rel, mode] of special.entries()) {
    const st = lstatOrUndefined(join(target, rel));
    if (st && !st.isSymbolicLink()) chmodSync(join(target, rel), mode);
  }
}
