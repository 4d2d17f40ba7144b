// The host programs the sandbox chain runs. Checked once at start, so a missing package is a clear
// error for the operator instead of a failed login for a player.
import { accessSync, constants } from 'node:fs';
import { WargateError } from '../errors/catalog.js';
import { PTY_RELAY } from './pty-process.js';

const TOOLS = [
  ['/usr/bin/unshare', 'util-linux'], ['/usr/bin/nsenter', 'util-linux'], ['/usr/bin/setpriv', 'util-linux'],
  ['/usr/bin/setsid', 'util-linux'], ['/usr/bin/env', 'coreutils'], ['/usr/bin/mount', 'mount'], ['/usr/sbin/pivot_root', 'util-linux'],
  ['/usr/sbin/ip', 'iproute2'], ['/bin/bash', 'bash'], ['/bin/sh', 'dash'],
  [PTY_RELAY, 'wargate itself: run "npm run build"'],
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
