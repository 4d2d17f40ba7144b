// Host keys: created on first start (ed25519 and rsa), kept in <stateDir>/host_keys with mode 0600,
// reused on every later start so clients never see the host key change.
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { WargateError } from '../errors/catalog.js';

const KEYS = [
  { file: 'ssh_host_ed25519_key', generate: () => ssh2.utils.generateKeyPairSync('ed25519') },
  { file: 'ssh_host_rsa_key', generate: () => ssh2.utils.generateKeyPairSync('rsa', { bits: 3072 }) },
];

export function loadOrCreateHostKeys(stateDir: string): Buffer[] {
  const dir = join(stateDir, 'host_keys');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return KEYS.map(({ file, generate }) => {
    const path = join(dir, file);
    if (!existsSync(path)) {
      // ssh2 sometimes makes an ed25519 key its own parser rejects (about 1 in 256: ssh2 issues
      // #1390, #1513): make another until it parses.
      let pair = generate();
      for (let i = 0; i < 16 && ssh2.utils.parseKey(pair.private) instanceof Error; i++) pair = generate();
      writeFileSync(path, pair.private, { mode: 0o600 });
      writeFileSync(`${path}.pub`, `${pair.public}\n`, { mode: 0o644 });
    }
    if ((statSync(path).mode & 0o077) !== 0) {
      throw new WargateError('WG_ERR_STATE_DIR', `${path} is readable by others; run chmod 600 on it`);
    }
    const key = readFileSync(path);
    const parsed = ssh2.utils.parseKey(key);
    if (parsed instanceof Error) throw new WargateError('WG_ERR_STATE_DIR', `${path}: not a usable private key: ${parsed.message}`);
    return key;
  });
}
