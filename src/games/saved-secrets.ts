// Secrets generated once per level and kept in the state dir (mode 0600 in a 0700 directory), never
// in git: what passwords.ts and ssh-keys.ts share.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Returns user -> secret for each of `users`: the one saved in `file`, or a new one from `generate`
 * (then saved). `fixed` may supply a secret that is neither saved nor generated.
 */
export function ensureSaved<T>(file: string, users: string[], generate: (user: string) => T, fixed: (user: string) => T | undefined = () => undefined): Map<string, T> {
  const saved: Record<string, T> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  let changed = false;
  const secrets = new Map<string, T>();
  for (const user of users) {
    let secret = fixed(user) ?? saved[user];
    if (secret === undefined) {
      secret = saved[user] = generate(user);
      changed = true;
    }
    secrets.set(user, secret);
  }
  if (changed) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, JSON.stringify(saved, null, 2) + '\n', { mode: 0o600 });
  }
  return secrets;
}
