// A rate cap on what one connection may ask: authentication requests, global requests, channel
// opens and channel requests (pty, env, window-change, signal, exec, ...) share one token bucket;
// a client beyond it is disconnected. Each request costs the gateway work (a process to spawn, a
// resize to pass on, a listener to open) however small its packet, and ssh2 has no cap of its own.
// Counted in ssh2's message handlers, so requests ssh2 answers by itself (unknown types, requests on
// forwarded channels) count too. It never answers, refuses or alters a request.
import type { Connection } from 'ssh2';

/** Sustained requests per second per connection, and the burst allowed above it. */
export const REQUESTS_PER_SECOND = 100;
export const REQUEST_BURST = 500;

/** ssh2 1.17's names for the inbound messages counted (see its lib/server.js). */
const COUNTED = ['USERAUTH_REQUEST', 'GLOBAL_REQUEST', 'CHANNEL_OPEN', 'CHANNEL_REQUEST'] as const;

export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.at = now();
  }

  /** Takes one token if there is one. */
  take(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSecond);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

type Handler = (...args: unknown[]) => unknown;

/**
 * Counts the requests of `client`. The first one beyond the bucket calls `onFlood` with the number
 * of requests seen; it and every later request are ignored (the caller disconnects).
 */
export function limitRequests(
  client: Connection,
  onFlood: (requests: number) => void,
  { perSecond = REQUESTS_PER_SECOND, burst = REQUEST_BURST }: { perSecond?: number; burst?: number } = {},
): void {
  // ssh2 is pinned to 1.17.0 (package.json): its protocol dispatches each message through this
  // per-connection table, looked up at each message.
  const handlers = (client as unknown as { _protocol: { _handlers: Record<string, Handler> } })._protocol._handlers;
  const bucket = new TokenBucket(perSecond, burst);
  let requests = 0;
  let flooded = false;
  for (const name of COUNTED) {
    const handle = handlers[name];
    if (typeof handle !== 'function') throw new Error(`ssh2 has no ${name} handler: request limits cannot apply`);
    handlers[name] = (...args: unknown[]) => {
      if (flooded) return undefined;
      requests++;
      if (!bucket.take()) {
        flooded = true;
        onFlood(requests);
        return undefined;
      }
      return handle(...args);
    };
  }
}
