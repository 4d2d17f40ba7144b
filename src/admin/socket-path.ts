// Where the admin socket is: the config's admin.socket, or admin.sock in the state dir. The gateway
// and the CLI both ask here, so they cannot disagree.
import { join, resolve } from 'node:path';
import { loadYamlFile } from '../config/load-yaml.js';
import { serverConfigSchema, type ServerConfig } from '../config/schema.js';

/**
 * sun_path holds 108 bytes with the final NUL; Node 20's libuv silently truncates a longer path and
 * binds (or connects to) another file. Both sides check first and say so instead.
 */
export function socketPathProblem(path: string): string | undefined {
  if (Buffer.byteLength(path) <= 107) return undefined;
  return `the admin socket path ${path} is longer than the 107 bytes a unix socket path may hold; set admin.socket to a shorter one`;
}

export function adminSocketPath(config: Pick<ServerConfig, 'stateDir' | 'admin'>): string {
  return config.admin.socket ?? join(config.stateDir, 'admin.sock');
}

/** The CLI's options, in order of precedence: --socket, then --config, then --state-dir. */
export function locateAdminSocket(options: { socket?: string; config?: string; stateDir: string }): string {
  if (options.socket !== undefined) return resolve(options.socket);
  if (options.config !== undefined) return adminSocketPath(loadYamlFile(resolve(options.config), serverConfigSchema));
  return adminSocketPath({ stateDir: resolve(options.stateDir), admin: {} });
}
