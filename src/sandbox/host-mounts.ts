// Sandboxes mount only inside their private mount namespaces, so the host should never hold a mount
// under the state dir. If one ever appears (a bug, an operator's experiment), the reaper detaches it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Mount points on the host under `dir`, deepest first. */
export function hostMountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => !!point && (point.startsWith(prefix) || point === dir))
    .sort((a, b) => b.length - a.length);
}

/** Lazily unmounts every host mount under `dir`; returns how many. */
export function detachHostMountsUnder(dir: string): number {
  const points = hostMountsUnder(dir);
  for (const point of points) execFileSync('/usr/bin/umount', ['--lazy', point], { stdio: 'ignore' });
  return points.length;
}
