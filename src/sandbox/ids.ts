// Ids of the sandbox's user namespace (see src/sandbox/sandbox-init.c): root inside is
// SANDBOX_ROOT_ID on the host, an id nothing else uses (below 2^31, above systemd-nspawn's
// container ranges); every other id from 1 to 65535 is itself, so level users keep their ids.
// The host's root is not mapped inside: what it owns shows as nobody and cannot be become.
import { lchownSync, chmodSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const SANDBOX_ROOT_ID = 2147352576;

/**
 * Hands everything under `dir` that the host's root owns to the sandbox's root, so a layer's
 * root-owned files show as root inside. chown clears setuid and setgid bits: they are put back.
 */
export function ownBySandboxRoot(dir: string): void {
  const visit = (path: string) => {
    const st = lstatSync(path);
    if (st.uid === 0 || st.gid === 0) {
      lchownSync(path, st.uid === 0 ? SANDBOX_ROOT_ID : st.uid, st.gid === 0 ? SANDBOX_ROOT_ID : st.gid);
      if (!st.isSymbolicLink()) chmodSync(path, st.mode & 0o7777);
    }
    if (st.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(dir);
}
