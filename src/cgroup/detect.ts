// Chooses the cgroup driver for this host: v2 where a cgroup2 hierarchy offers the memory, pids and
// cpu controllers (production hosts), else v1 with memory, pids, cpu and freezer hierarchies
// (hybrid hosts such as these machines). Mounts are read from /proc/self/mountinfo.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WargateError } from '../errors/catalog.js';
import { CgroupV1Driver, V1_CONTROLLERS, type V1Mounts } from './cgroup-v1.js';
import { CgroupV2Driver, V2_CONTROLLERS } from './cgroup-v2.js';
import type { CgroupDriver } from './types.js';

interface Mount {
  path: string;
  fstype: string;
  superOptions: string[];
}

function mounts(): Mount[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [left, right] = line.split(' - ');
      const [fstype, , superOpts] = right.split(' ');
      return { path: left.split(' ')[4], fstype, superOptions: (superOpts ?? '').split(',') };
    });
}

/** The instance's subtree name: stable for one state dir, distinct across state dirs. */
export function instanceName(stateDir: string): string {
  return createHash('sha256').update(stateDir).digest('hex').slice(0, 12);
}

export function detectCgroupDriver(stateDir: string, prefer?: 'v1' | 'v2'): CgroupDriver {
  const all = mounts();
  const instance = instanceName(stateDir);

  const v2 = all
    .filter((m) => m.fstype === 'cgroup2')
    .find((m) => {
      const file = join(m.path, 'cgroup.controllers');
      return existsSync(file) && V2_CONTROLLERS.every((c) => readFileSync(file, 'utf8').split(/\s+/).includes(c));
    });
  const v1 = Object.fromEntries(
    V1_CONTROLLERS.map((c) => [c, all.find((m) => m.fstype === 'cgroup' && m.superOptions.includes(c))?.path]),
  ) as Partial<V1Mounts>;
  const v1Complete = V1_CONTROLLERS.every((c) => v1[c] !== undefined);

  if (v2 && prefer !== 'v1') return new CgroupV2Driver(v2.path, instance);
  if (v1Complete && prefer !== 'v2') return new CgroupV1Driver(v1 as V1Mounts, instance);
  throw new WargateError(
    'WG_ERR_CGROUP',
    `no usable cgroup hierarchy: need cgroup v2 with ${V2_CONTROLLERS.join(', ')} controllers, or cgroup v1 hierarchies for ${V1_CONTROLLERS.join(', ')}` +
      (prefer ? ` (cgroup ${prefer} was asked for)` : ''),
  );
}
