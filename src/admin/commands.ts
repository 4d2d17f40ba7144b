// The admin commands of the CLI: ask the gateway over its admin socket and print the answer. They
// return the exit code (0, or 1 with a one-line message on stderr); they never throw for an
// unreachable gateway or a refused request.
import { AdminClientError, adminRequest } from './admin-client.js';
import type { AdminRequest, AdminResponse } from './protocol.js';
import { sessionTable } from './session-table.js';

/** `wargate sessions [--json]`. */
export async function sessionsCommand(socketPath: string, { json = false } = {}): Promise<number> {
  const response = await ask(socketPath, { op: 'list' });
  if (!response) return 1;
  if (!('sessions' in response)) return unexpected(socketPath);
  process.stdout.write(json ? JSON.stringify(response.sessions, null, 2) + '\n' : sessionTable(response.sessions));
  return 0;
}

/** `wargate kill ID`: the player's connection is closed and the sandbox destroyed before it returns. */
export async function killCommand(socketPath: string, id: string): Promise<number> {
  const response = await ask(socketPath, { op: 'kill', id });
  if (!response) return 1;
  if (!('ended' in response)) return unexpected(socketPath);
  const s = response.ended;
  process.stdout.write(`ended session ${s.id} (${s.game}/${s.level} from ${s.client.address})\n`);
  return 0;
}

/** `wargate reload`: the gateway loads its games again; new logins get what changed. */
export async function reloadCommand(socketPath: string): Promise<number> {
  const response = await ask(socketPath, { op: 'reload' });
  if (!response) return 1;
  if (!('reloaded' in response)) return unexpected(socketPath);
  for (const game of response.reloaded) process.stdout.write(`reloaded ${game.name}: ${game.levels} levels, layer ${game.layer}\n`);
  return 0;
}

/** The gateway's successful answer, or undefined once the failure has been printed. */
async function ask(socketPath: string, request: AdminRequest): Promise<Exclude<AdminResponse, { ok: false }> | undefined> {
  let response: AdminResponse;
  try {
    response = await adminRequest(socketPath, request);
  } catch (err) {
    if (!(err instanceof AdminClientError)) throw err;
    process.stderr.write(`wargate: ${err.message}\n`);
    return undefined;
  }
  if (!response.ok) {
    process.stderr.write(`wargate: ${response.error}\n`);
    return undefined;
  }
  return response;
}

function unexpected(socketPath: string): number {
  process.stderr.write(`wargate: unexpected answer from ${socketPath}\n`);
  return 1;
}
