// Content-addressed layer directories: a layer named by the hash of its inputs is built once, into a
// temporary directory that is renamed into place only when complete, so a crash never leaves a
// half-built layer that looks finished.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const TMP_PREFIX = '.building-';

export async function buildOnce(layersDir: string, name: string, build: (dir: string) => void | Promise<void>): Promise<string> {
  const final = join(layersDir, name);
  if (existsSync(final)) return final;
  mkdirSync(layersDir, { recursive: true, mode: 0o711 });
  const tmp = join(layersDir, `${TMP_PREFIX}${name}-${randomBytes(4).toString('hex')}`);
  mkdirSync(tmp, { mode: 0o755 });
  try {
    await build(tmp);
    renameSync(tmp, final);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    // Another builder (`wargate build` beside the gateway) finished the same layer first: same inputs, same layer.
    if (existsSync(final) && ['ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) return final;
    throw err;
  }
  return final;
}

/** Removes half-built layers (and their build scratch) a crashed build left behind. */
export function removeUnfinishedBuilds(layersDir: string): void {
  if (!existsSync(layersDir)) return;
  for (const name of readdirSync(layersDir)) {
    if (name.startsWith(TMP_PREFIX)) rmSync(join(layersDir, name), { recursive: true, force: true });
  }
}
