// The gate every connection passes before ssh2 sees it (sockets from the listener and those relayed
// from inside sandboxes alike). It counts connections that have not authenticated yet, drops new
// ones beyond the caps (OpenSSH's MaxStartups, with random early drop, and a cap per source), and
// cuts any that has not authenticated within the login grace time, on the raw socket: ssh2 has no
// timer of its own before authentication, and none at all before the client's version line.
// It never reads or writes a byte of the connection; a dropped socket is simply closed.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { ThrottledLog } from '../log/throttled-log.js';
import type { ErrorCode } from '../errors/catalog.js';
import { sourceKey } from './source-address.js';

export interface PreauthLimits {
  /** From TCP accept to successful authentication; beyond, the socket is cut (OpenSSH's LoginGraceTime). */
  loginGraceSeconds: number;
  /**
   * Unauthenticated connections at once (OpenSSH's MaxStartups start:rate:full): below `start` all
   * are let in; from `start` on, a new one is dropped with probability `rate` %, growing linearly to
   * 100 % at `full`.
   */
  maxStartups: { start: number; rate: number; full: number };
  /** Unauthenticated connections at once from one source (source-address.ts); beyond, dropped. */
  maxStartupsPerAddress: number;
}

export type DropReason = 'per-address' | 'full' | 'random-early';

const DROP_CODES: Record<DropReason, ErrorCode> = {
  'per-address': 'WG_ERR_PREAUTH_FROM_ADDRESS',
  full: 'WG_ERR_PREAUTH_FULL',
  'random-early': 'WG_ERR_PREAUTH_FULL',
};

/** Drop lines logged per second at most; the rest are counted in a summary line (a flood must not flood the log). */
const DROP_LINES_PER_SECOND = 10;

interface Pending {
  source: string;
  address: string;
  timer: NodeJS.Timeout;
}

/**
 * Whether a new connection is dropped when `unauthenticated` others are pending: the probability
 * of OpenSSH's drop_connection(); `random` gives a uniform number in [0, 1), asked only between the caps.
 */
export function randomEarlyDrop(unauthenticated: number, { start, rate, full }: PreauthLimits['maxStartups'], random: () => number): boolean {
  if (unauthenticated >= full) return true;
  if (unauthenticated < start) return false;
  const percent = rate + ((100 - rate) * (unauthenticated - start)) / (full - start);
  return random() * 100 < percent;
}

export class PreauthGate {
  private readonly pending = new Map<Duplex, Pending>();
  private readonly perSource = new Map<string, number>();
  private drops = 0;
  private cuts = 0;
  private readonly dropLog: ThrottledLog;

  constructor(
    private readonly limits: PreauthLimits,
    private readonly logger: Logger,
    private readonly random: () => number = Math.random,
  ) {
    const message = { line: 'connection dropped before authentication', summary: 'more connections dropped before authentication (their lines held back)' };
    this.dropLog = new ThrottledLog(logger, message, DROP_LINES_PER_SECOND);
  }

  /** Connections accepted and not yet authenticated nor closed. */
  get unauthenticated(): number {
    return this.pending.size;
  }

  /**
   * A socket just accepted (or relayed from a sandbox under its player's `address`): dropped over a
   * cap, else counted, put under the deadline, and handed to `next` (ssh2) at once.
   */
  admit(socket: Duplex, address: string | undefined, next: () => void): void {
    if (address === undefined) {
      // Accepted and already reset: nothing to serve.
      socket.destroy();
      return;
    }
    const source = sourceKey(address);
    const fromSource = this.perSource.get(source) ?? 0;
    const reason = this.dropReason(fromSource);
    if (reason) {
      socket.destroy();
      this.logDrop(address, reason, fromSource);
      return;
    }
    this.logger.debug({ event: 'preauth.admit', client: address, unauthenticated: this.pending.size, fromAddress: fromSource }, 'connection admitted');
    const timer = setTimeout(() => this.expire(socket), this.limits.loginGraceSeconds * 1000);
    this.pending.set(socket, { source, address, timer });
    this.perSource.set(source, fromSource + 1);
    socket.once('close', () => this.release(socket));
    next();
  }

  /** Why a new connection is dropped, if it is, with `fromSource` others of its source pending. */
  private dropReason(fromSource: number): DropReason | undefined {
    if (fromSource >= this.limits.maxStartupsPerAddress) return 'per-address';
    if (!randomEarlyDrop(this.pending.size, this.limits.maxStartups, this.random)) return undefined;
    return this.pending.size >= this.limits.maxStartups.full ? 'full' : 'random-early';
  }

  /** The connection authenticated: it no longer counts and no longer has a deadline. */
  authenticated(socket: Duplex): void {
    this.release(socket);
  }

  /** Closes every connection still unauthenticated (the gateway stops). */
  close(): void {
    for (const socket of [...this.pending.keys()]) {
      this.release(socket);
      socket.destroy();
    }
    this.dropLog.close();
  }

  private release(socket: Duplex): void {
    const entry = this.pending.get(socket);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.pending.delete(socket);
    const left = (this.perSource.get(entry.source) ?? 1) - 1;
    if (left > 0) this.perSource.set(entry.source, left);
    else this.perSource.delete(entry.source);
  }

  private expire(socket: Duplex): void {
    const entry = this.pending.get(socket);
    if (!entry) return;
    this.release(socket);
    this.cuts++;
    this.logger.info(
      {
        event: 'preauth.deadline',
        code: 'WG_ERR_PREAUTH_DEADLINE',
        client: entry.address,
        seconds: this.limits.loginGraceSeconds,
        bytesRead: (socket as Socket).bytesRead,
        cut: this.cuts,
      },
      'not authenticated within the login grace time: connection cut',
    );
    socket.destroy();
  }

  /** One line per drop, at most DROP_LINES_PER_SECOND a second; the rest summed up a second later. */
  private logDrop(address: string, reason: DropReason, fromAddress: number): void {
    this.drops++;
    const fields = { event: 'preauth.drop', code: DROP_CODES[reason], reason, unauthenticated: this.pending.size, dropped: this.drops };
    this.dropLog.warn(reason, { ...fields, client: address, fromAddress }, fields);
  }
}
