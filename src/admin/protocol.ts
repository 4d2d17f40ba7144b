// The admin protocol, shared by the gateway's socket server and the CLI: one JSON request on one
// line per connection, answered by one JSON line, then the server closes. Nothing here touches a
// socket; it only says what a valid request is and what answers look like.
import { z } from 'zod';
import type { SessionInfo } from '../session/connection-session.js';

/** A request line longer than this is refused unread: no client can make the gateway buffer more. */
export const MAX_REQUEST_BYTES = 4096;
/** A connection that has not sent a whole request line by then is answered with an error and closed. */
export const REQUEST_TIMEOUT_MS = 3000;
/** Admin connections served at once; more are closed by the kernel-facing listener at once. */
export const MAX_CONNECTIONS = 16;

export const adminRequestSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('list') }).strict(),
  z.object({ op: z.literal('kill'), id: z.string().min(1).max(128) }).strict(),
  z.object({ op: z.literal('reload') }).strict(),
]);

/** One game as a reload left it: new logins get this layer. */
export interface ReloadedGame {
  name: string;
  levels: number;
  layer: string;
}

export type AdminRequest = z.infer<typeof adminRequestSchema>;

export type AdminResponse =
  | { ok: true; sessions: SessionInfo[] }
  | { ok: true; ended: SessionInfo }
  | { ok: true; reloaded: ReloadedGame[] }
  | { ok: false; code: 'WG_ERR_ADMIN'; error: string };

/** Parses one request line; a string error says what is wrong with it, for the reply and the log. */
export function parseRequest(line: string): AdminRequest | { malformed: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    return { malformed: 'malformed request: not a JSON document' };
  }
  const parsed = adminRequestSchema.safeParse(doc);
  if (!parsed.success) {
    return { malformed: 'malformed request: expected {"op":"list"}, {"op":"kill","id":"<session id>"} or {"op":"reload"}' };
  }
  return parsed.data;
}

export function failure(error: string): AdminResponse {
  return { ok: false, code: 'WG_ERR_ADMIN', error };
}
