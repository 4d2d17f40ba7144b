// Looks a path up in a stack of read-only layers as the sandbox will see it (overlayfs: the top
// layer's entry wins, a whiteout hides what is below, a file hides a directory below), following
// symbolic links inside the stack, never on the host. For checks at load: is the level's shell there?
// (Opaque directories are not seen: Node reads no extended attributes; the check is a courtesy.)
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';

const MAX_LINKS = 40;

export interface Found {
  /** Where the entry is on the host (inside one of the layers). */
  hostPath: string;
  st: Stats;
}

/** The entry `path` (absolute inside the sandbox) names, following every symbolic link; or undefined. */
export function lookupInLayers(layers: string[], path: string): Found | undefined {
  let queue = path.split('/');
  let resolved: string[] = [];
  let links = 0;
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (name === '' || name === '.') continue;
    if (name === '..') {
      resolved.pop();
      continue;
    }
    const found = entryIn(layers, [...resolved, name]);
    if (!found) return undefined;
    if (found.st.isSymbolicLink()) {
      if (++links > MAX_LINKS) return undefined;
      const target = readlinkSync(found.hostPath);
      if (target.startsWith('/')) resolved = [];
      queue = [...target.split('/'), ...queue];
      continue;
    }
    resolved.push(name);
    if (queue.some((p) => p !== '' && p !== '.') && !found.st.isDirectory()) return undefined;
    if (queue.length === 0) return found;
  }
  return entryIn(layers, resolved) ?? undefined;
}

/** The topmost entry at `parts` (all of whose parents are directories), or undefined if hidden or absent. */
function entryIn(layers: string[], parts: string[]): Found | undefined {
  for (const layer of layers) {
    // A layer whose parent entry is not a directory hides every lower layer's content there.
    let parentState: 'dir' | 'absent' | 'hides' = 'dir';
    for (let i = 1; i <= parts.length - 1 && parentState === 'dir'; i++) {
      const st = lstat(join(layer, ...parts.slice(0, i)));
      parentState = !st ? 'absent' : st.isDirectory() ? 'dir' : 'hides';
    }
    if (parentState === 'hides') return undefined;
    if (parentState === 'absent') continue;
    const hostPath = join(layer, ...parts);
    const st = lstat(hostPath);
    if (!st) continue;
    if (st.isCharacterDevice() && st.rdev === 0) return undefined; // an overlay whiteout
    return { hostPath, st };
  }
  return undefined;
}

function lstat(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
