// The host programs sandboxes need: bash (the default login shell on the host's base), sftp-server
// (run inside from the host's /usr), and wargate's own C helpers. Checked once at start, so a missing package
// is a clear error for the operator instead of a failed login for a player.
import { accessSync, constants } from 'node:fs';
import { WargateError } from '../errors/catalog.js';
import { SANDBOX_BUILD } from './build-sandbox.js';
import { SANDBOX_INIT } from './namespace-backend.js';
import { SANDBOX_SPAWN } from './sandbox-spawn.js';

const BUILD = 'wargate itself: run "npm run build"';
const TOOLS = [
  ['/bin/bash', 'bash'], ['/usr/lib/openssh/sftp-server', 'openssh-sftp-server'],
  [SANDBOX_INIT, BUILD], [SANDBOX_SPAWN, BUILD], [SANDBOX_BUILD, BUILD],
] as const;

export function assertHostTools(): void {
  const missing = TOOLS.filter(([path]) => {
    try {
      accessSync(path, constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new WargateError(
      'WG_ERR_HOST_TOOL_MISSING',
      `missing host tools: ${missing.map(([p, pkg]) => `${p} (${pkg.includes(' ') ? pkg : `Debian package ${pkg}`})`).join(', ')}`,
    );
  }
}
