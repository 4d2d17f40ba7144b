// A game's build steps (game.yaml `build:`): each runs in order with /bin/sh -e -c, as root of a
// build sandbox whose root filesystem is the layer being built over the game's base (so what it
// writes, chowns, chmods or deletes is part of the layer), the game folder read-only at /build.
// Each output line goes to the progress callback; a failing step fails the whole build.
import type { BuildStep } from '../config/schema.js';
import { DEFAULT_BUILD_STEP_SECONDS } from '../config/schema.js';
import { WargateError } from '../errors/catalog.js';
import { BuildScratch } from '../sandbox/build-sandbox.js';

/** What a step starts with: a root login's basics, nothing of the builder's own environment. */
const STEP_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  USER: 'root',
  LOGNAME: 'root',
  LANG: 'C',
};
/** Lines of a failed step's output its error quotes. */
const QUOTED_LINES = 10;

export interface BuildStepsInputs {
  steps: BuildStep[];
  /** The layer being built (the upper directory of each step's overlay). */
  root: string;
  /** The layers under it at run time, top first. */
  lower: string[];
  /** The base is the host's: its /usr is bound read-only, as in a player's sandbox. */
  hostUsr: boolean;
  /** The game folder, seen read-only at /build. */
  gameDir: string;
  hostname: string;
  /** Fills {{password:LEVEL}} and {{private-key:LEVEL}} into a step's text. */
  fill: (text: string) => string;
  progress: (line: string) => void;
}

/** Runs every step; throws WG_ERR_LAYER_BUILD naming the failed step and quoting its last lines. */
export async function runBuildSteps({ steps, root, lower, hostUsr, gameDir, hostname, fill, progress }: BuildStepsInputs): Promise<void> {
  if (steps.length === 0) return;
  const scratch = new BuildScratch(root);
  try {
    for (const [i, step] of steps.entries()) {
      const name = `build.${i}`;
      const timeoutSeconds = step.timeout ?? DEFAULT_BUILD_STEP_SECONDS;
      progress(`${name}: ${summary(step.run)}`);
      const result = await scratch.run({
        lower,
        hostUsr,
        buildDir: gameDir,
        hostname,
        timeoutSeconds,
        argv: ['/bin/sh', '-e', '-c', fill(step.run)],
        env: STEP_ENV,
        onLine: (line) => progress(`${name} | ${line}`),
      });
      if (!result.ok) {
        const quoted = result.tail.slice(-QUOTED_LINES).map((l) => `\n  | ${l}`).join('');
        throw new WargateError('WG_ERR_LAYER_BUILD', `${name} (${summary(step.run)}) failed: ${result.why}${quoted ? `; its last output:${quoted}` : ' (no output)'}`);
      }
    }
  } finally {
    scratch.remove();
  }
}

/** A step's first line, shortened: how progress lines and errors name it. */
function summary(run: string): string {
  const first = run.trim().split('\n')[0];
  return first.length > 60 ? `${first.slice(0, 57)}...` : first;
}
