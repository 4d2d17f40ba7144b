// The skeleton layers: for a game on the host's base, an almost empty root (the host's /usr is bound
// in read-only at sandbox start) plus a curated copy of host /etc entries that programs in /usr need;
// nothing of the host's identity (users, shadow, ssh host keys, machine-id) is copied, and it is built
// once per host state. For a game on a directory or image base, a minimal one above that base: the
// /dev nodes and the mount points the sandbox needs, nothing of the host.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { WargateError } from '../errors/catalog.js';
import { ownBySandboxRoot } from '../sandbox/ids.js';
import { buildOnce } from './build-once.js';

const BASE_VERSION = 'base-3';
const MINIMAL_NAME = 'skeleton-1';

/** Host /etc entries copied as they are. Globs are not needed: python3* is listed by version below. */
const ETC_ENTRIES = [
  'alternatives', 'bash.bashrc', 'bash_completion.d', 'debian_version', 'environment', 'gai.conf', 'gitconfig',
  'host.conf', 'inputrc', 'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'locale.alias', 'localtime', 'login.defs',
  'magic', 'magic.mime', 'manpath.config', 'mime.types', 'nsswitch.conf', 'os-release', 'profile', 'profile.d',
  'protocols', 'screenrc', 'services', 'shells', 'skel', 'ssl', 'terminfo', 'timezone', 'vim', 'wgetrc',
  'ssh/ssh_config', 'ssh/ssh_config.d',
];

const DIRS: [string, number][] = [
  ['usr', 0o755], ['proc', 0o555], ['dev', 0o755], ['etc', 0o755], ['home', 0o755], ['root', 0o700],
  ['tmp', 0o1777], ['var', 0o755], ['var/tmp', 0o1777], ['var/log', 0o755], ['run', 0o755], ['mnt', 0o755],
  ['opt', 0o755], ['srv', 0o755], ['etc/ssh', 0o755], ['dev/pts', 0o755], ['dev/shm', 0o1777],
];

/** What the minimal skeleton holds: mount points of sandbox-init and sandbox-build, /dev, /tmp. */
const MINIMAL_DIRS: [string, number][] = [['proc', 0o555], ['dev', 0o755], ['dev/pts', 0o755], ['dev/shm', 0o1777], ['tmp', 0o1777]];

/** The harmless character devices every sandbox has (major, minor), and the usual links. */
const DEVICES: [string, number, number][] = [['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0]];
const DEV_LINKS: [string, string][] = [['ptmx', 'pts/ptmx'], ['fd', '/proc/self/fd'], ['stdin', '/proc/self/fd/0'], ['stdout', '/proc/self/fd/1'], ['stderr', '/proc/self/fd/2']];

function hostEtcEntries(): string[] {
  const python = readdirSync('/etc').filter((n) => /^python3(\.\d+)?$/.test(n));
  return [...ETC_ENTRIES, ...python].filter((e) => existsSync(join('/etc', e)) || isLink(join('/etc', e)));
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** The input hash: the entries' names, sizes and change times, so a host upgrade rebuilds the base. */
function baseHash(entries: string[]): string {
  const h = createHash('sha256').update(BASE_VERSION);
  for (const e of entries) {
    const st = lstatSync(join('/etc', e));
    h.update(`${e}:${st.size}:${st.ctimeMs}\n`);
  }
  for (const top of readdirSync('/')) if (isLink(join('/', top))) h.update(`/${top}->${readlinkSync(join('/', top))}\n`);
  return h.digest('hex').slice(0, 16);
}

function makeDirsAndDevices(dir: string, dirs: [string, number][]): void {
  for (const [d, mode] of dirs) {
    mkdirSync(join(dir, d), { recursive: true });
    chmodSync(join(dir, d), mode);
  }
  for (const [name, major, minor] of DEVICES) {
    execFileSync('/usr/bin/mknod', ['-m', '0666', join(dir, 'dev', name), 'c', String(major), String(minor)]);
  }
  for (const [name, target] of DEV_LINKS) symlinkSync(target, join(dir, 'dev', name));
}

/**
 * The skeleton above a directory or image base (layers, top first: game, this, base): whatever the
 * base holds at /dev, /proc or /tmp, the sandbox gets its own device nodes and mount points there.
 */
export function ensureMinimalSkeleton(layersDir: string): Promise<string> {
  return buildOnce(layersDir, MINIMAL_NAME, (dir) => {
    makeDirsAndDevices(dir, MINIMAL_DIRS);
    ownBySandboxRoot(dir);
  });
}

/** Returns the path of the base skeleton for this host, building it if needed. */
export function ensureBaseSkeleton(layersDir: string): Promise<string> {
  const entries = hostEtcEntries();
  return buildOnce(layersDir, `base-${baseHash(entries)}`, (dir) => {
    makeDirsAndDevices(dir, DIRS);
    // Merged-/usr links (bin -> usr/bin, ...) exactly as the host has them.
    for (const top of readdirSync('/')) {
      const target = isLink(join('/', top)) ? readlinkSync(join('/', top)) : '';
      if (target.startsWith('usr/')) symlinkSync(target, join(dir, top));
    }
    try {
      for (const e of entries) execFileSync('/bin/cp', ['-a', '--', join('/etc', e), join(dir, 'etc', e)]);
    } catch (err) {
      throw new WargateError('WG_ERR_LAYER_BUILD', `copying host /etc entries into the base failed: ${(err as Error).message}`, { cause: err });
    }
    ownBySandboxRoot(dir);
  });
}
