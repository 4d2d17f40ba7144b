// One program run in a build sandbox (src/sandbox/sandbox-build.c): overlay(upper = a layer being
// built, on disk) over its lower layers, no network, its own pid namespace, a time limit, root of a
// user namespace of its own. It owns a scratch directory beside the layer and never mounts on the host.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WargateError } from '../errors/catalog.js';
import { SANDBOX_ROOT_ID } from './ids.js';

/** Built by `npm run build` next to the compiled JavaScript (dist/sandbox-build). */
export const SANDBOX_BUILD = fileURLToPath(new URL('../../sandbox-build', import.meta.url));

/** sandbox-build's own statuses (see its header). */
const TIMED_OUT = 124;
const HELPER_FAILED = 125;
/** Beyond the step's own limit, how long the helper may take to kill it before it is killed itself. */
const BACKSTOP_MS = 15_000;
/** Output lines kept for the error of a failed run. */
const TAIL_LINES = 20;

export interface BuildRunSpec {
  /** Read-only layers under it, top first (absolute paths). */
  lower: string[];
  /** Bind the host's /usr read-only over the root (a game on the host's base). */
  hostUsr: boolean;
  /** Bound read-only at /build. */
  buildDir: string;
  hostname: string;
  timeoutSeconds: number;
  /** Run inside, e.g. ['/bin/sh', '-e', '-c', TEXT]. */
  argv: string[];
  env: Record<string, string>;
  /** Told of each line the program writes (stdout and stderr, in order). */
  onLine: (line: string) => void;
}

export type BuildRunResult = { ok: true } | { ok: false; why: string; tail: string[] };

/**
 * A scratch directory for the runs of one layer build: the overlay's workdir (it must be on the
 * upper's filesystem: beside it), the mount point, and the one-directory layer that gives /build a
 * mount point without putting one in the layer. Named after the layer so that buildOnce's cleanup
 * of unfinished builds removes it too.
 */
export class BuildScratch {
  readonly dir: string;

  constructor(readonly upper: string) {
    this.dir = `${upper}.scratch`;
    for (const d of ['work', 'mnt', 'points/build']) mkdirSync(join(this.dir, d), { recursive: true, mode: 0o700 });
  }

  async run(spec: BuildRunSpec): Promise<BuildRunResult> {
    const layers = dirname(this.upper);
    const rel = (p: string) => {
      const r = isAbsolute(p) && !relative(layers, p).startsWith('..') ? relative(layers, p) : p;
      assertSafeForOverlay(r);
      return r;
    };
    const env = {
      ...spec.env,
      WG_LAYERS: layers,
      WG_UPPER: rel(this.upper),
      WG_WORK: rel(join(this.dir, 'work')),
      WG_LOWER: [join(this.dir, 'points'), ...spec.lower].map(rel).join(':'),
      WG_MNT: rel(join(this.dir, 'mnt')),
      WG_BUILD_DIR: spec.buildDir,
      WG_HOST_USR: spec.hostUsr ? '1' : '0',
      WG_HOST: spec.hostname,
      WG_ROOT_ID: String(SANDBOX_ROOT_ID),
      WG_TIMEOUT: String(spec.timeoutSeconds),
    };
    const child = spawn(SANDBOX_BUILD, ['--', ...spec.argv], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => {
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      spec.onLine(line);
    });
    let helperErrors = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (helperErrors = (helperErrors + d).slice(-4000)));
    const backstop = setTimeout(() => child.kill('SIGKILL'), spec.timeoutSeconds * 1000 + BACKSTOP_MS);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      child.once('error', (err) => {
        helperErrors += err.message;
        resolve([HELPER_FAILED, null]);
      });
      // 'close': every line of output has been read.
      child.once('close', (c, s) => resolve([c, s]));
    });
    clearTimeout(backstop);
    if (code === 0) return { ok: true };
    const helper = helperErrors.trim();
    if (signal !== null) return { ok: false, why: `the build sandbox was killed (${signal})`, tail };
    if (code === TIMED_OUT && helper.includes('was killed')) return { ok: false, why: `it ran longer than ${spec.timeoutSeconds} s and was killed`, tail };
    if (code === HELPER_FAILED && helper) {
      throw new WargateError('WG_ERR_LAYER_BUILD', `the build sandbox could not be made: ${helper}`);
    }
    return { ok: false, why: code! > 128 ? `it was killed by signal ${code! - 128}` : `it exited with status ${code}`, tail };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Overlay options are comma- and colon-separated: a path holding either would be misread. */
function assertSafeForOverlay(path: string): void {
  if (!/^[A-Za-z0-9._/+@-]+$/.test(path)) {
    throw new WargateError('WG_ERR_STATE_DIR', `path "${path}" may only hold letters, digits and . _ / + @ - (it is used in mount options)`);
  }
}
