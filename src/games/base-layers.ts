// The layers under a game layer, by its base (base-source.ts):
//   host:      [host skeleton]            + the host's /usr bound read-only at sandbox start
//   directory: [minimal skeleton, rootfs] (a copy of the tree, content-addressed)
//   image:     [minimal skeleton, rootfs] (its layers unpacked in order, content-addressed)
// A base's rootfs is built once per identity under <stateDir>/layers, like every layer, owned by
// the sandbox's root where the host's root owned it, without device nodes (/dev is the skeleton's).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar';
import { fieldError } from '../config/load-yaml.js';
import type { GameDefinition } from '../config/schema.js';
import { WargateError } from '../errors/catalog.js';
import { ownBySandboxRoot } from '../sandbox/ids.js';
import { ensureBaseSkeleton, ensureMinimalSkeleton } from './base-skeleton.js';
import type { BaseSource } from './base-source.js';
import { buildOnce } from './build-once.js';
import { imageLayers } from './image-format.js';
import type { LayerBase } from './layer-builder.js';
import { lookupInLayers } from './layer-lookup.js';
import { unpackLayer } from './layer-unpack.js';

/** Bumped when the way a base is unpacked changes: every base is unpacked again. */
const BASE_LAYOUT = 'rootfs-1';

export async function ensureBase(layersDir: string, source: BaseSource, progress: (line: string) => void = () => {}): Promise<LayerBase> {
  if (source.kind === 'host') return { layers: [await ensureBaseSkeleton(layersDir)], hostUsr: true, skel: '/etc/skel' };
  const skeleton = await ensureMinimalSkeleton(layersDir);
  const name = `base-${source.kind === 'image' ? 'image' : 'dir'}-${createHash('sha256').update(`${BASE_LAYOUT}\0${source.identity}`).digest('hex').slice(0, 16)}`;
  const rootfs = await buildOnce(layersDir, name, (root) => {
    if (source.kind === 'directory') copyTree(source.path, root, progress);
    else unpackImage(source, root, progress);
    removeDevices(root);
    ownBySandboxRoot(root);
  });
  const skel = lookupInLayers([rootfs], '/etc/skel');
  return { layers: [skeleton, rootfs], hostUsr: false, skel: skel?.st.isDirectory() ? skel.hostPath : '/nonexistent' };
}

function copyTree(from: string, root: string, progress: (line: string) => void): void {
  // The host's own root, or a tree holding the state dir, would copy the copy into itself.
  if (from === '/' || `${root}/`.startsWith(`${from}/`)) {
    throw new WargateError('WG_ERR_LAYER_BUILD', `base directory ${from} holds wargate's state dir (${root}): name a root filesystem tree of its own`);
  }
  progress(`copying base ${from}`);
  try {
    execFileSync('/bin/cp', ['-a', '--', `${from}/.`, root], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new WargateError('WG_ERR_LAYER_BUILD', `copying base ${from}: ${stderr || (err as Error).message}`, { cause: err });
  }
}

function unpackImage(source: Extract<BaseSource, { kind: 'image' }>, root: string, progress: (line: string) => void): void {
  // A tarball is unpacked beside the base first (named so that an interrupted build's cleanup takes it).
  const scratch = `${root}.image`;
  try {
    let dir = source.path;
    if (source.container === 'tar') {
      progress(`reading image ${source.path}`);
      mkdirSync(scratch, { mode: 0o700 });
      try {
        // Only files, directories and links inside the scratch directory: node-tar's own guards hold here.
        tar.x({ file: source.path, cwd: scratch, sync: true, strict: true, filter: (_p, e) => 'type' in e && ['File', 'OldFile', 'Directory', 'SymbolicLink'].includes(String(e.type)) });
      } catch (err) {
        throw new WargateError('WG_ERR_LAYER_BUILD', `${source.path}: cannot read as a tarball: ${(err as Error).message}`, { cause: err });
      }
      dir = scratch;
    }
    const layers = imageLayers(dir, source.path);
    for (const [i, layer] of layers.entries()) {
      const label = `${source.path}: layer ${i + 1} (${layer.name})`;
      progress(`unpacking layer ${i + 1}/${layers.length} ${layer.name}`);
      if (layer.digest !== undefined) verifyDigest(layer.file, layer.digest, label);
      unpackLayer(layer.file, root, label);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function verifyDigest(file: string, digest: string, label: string): void {
  const [algorithm, expected] = digest.split(':');
  const h = createHash(algorithm);
  const buffer = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(file, 'r');
  try {
    for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) h.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  const actual = h.digest('hex');
  if (actual !== expected) throw new WargateError('WG_ERR_LAYER_BUILD', `${label}: the blob's ${algorithm} is ${actual}, not the digest the manifest names`);
}

/** Device nodes of a base would be usable inside (the overlay allows them): none are kept. */
function removeDevices(dir: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = lstatSync(path);
    if (st.isCharacterDevice() || st.isBlockDevice()) unlinkSync(path);
    else if (st.isDirectory()) removeDevices(path);
  }
}

/**
 * What wargate starts in the sandbox must be in a directory or image base (nothing of the host's is
 * there): each level's shell, and /bin/sh for cron jobs, services and build steps (cron also runs
 * /usr/bin/timeout). A missing one is a ConfigError at its field, at load rather than at a login.
 */
export function assertBaseProvides(definition: GameDefinition, file: string, layers: string[], describe: string): void {
  const executable = (path: string) => {
    const found = lookupInLayers(layers, path);
    return found !== undefined && found.st.isFile() && (found.st.mode & 0o111) !== 0;
  };
  const missing = (path: string) => `${path} is not an executable file of the game's layer or its base (${describe})`;
  definition.levels.forEach((level, i) => {
    if (!executable(level.shell)) throw fieldError(file, ['levels', i, 'shell'], `${missing(level.shell)}${level.shell === '/bin/bash' ? ' (/bin/bash is the default: a level may name its `shell`)' : ''}`);
  });
  const needsSh = definition.cron.length > 0 || definition.services.length > 0;
  if (needsSh && !executable('/bin/sh')) throw fieldError(file, [definition.cron.length > 0 ? 'cron' : 'services'], `${missing('/bin/sh')}: cron jobs and services run with /bin/sh -c`);
  if (definition.cron.length > 0 && !executable('/usr/bin/timeout')) throw fieldError(file, ['cron'], `${missing('/usr/bin/timeout')}: cron jobs run under it`);
}
