// Penalties per source after failed logins (OpenSSH 9.8's PerSourcePenalties, as a delay): once a
// source has failed often, the answer to each of its guesses waits, right or wrong alike (so the
// delay tells nothing), longer with every failure up to a cap; failures are forgotten with a
// half-life. Another source is never slowed: each waits on its own timer, nothing blocks.
// The table is bounded (least recently failed sources go first), so a scan from millions of
// addresses costs at most MAX_SOURCES entries. It decides delays only; it never refuses a login.
import type { Logger } from 'pino';
import { sourceKey } from './source-address.js';

export interface PenaltyLimits {
  /** Failures on record a source may have before its answers wait. */
  freeFailures: number;
  /** The wait once a source has freeFailures on record; it doubles with each further failure... */
  firstDelaySeconds: number;
  /** ...up to this. */
  maxDelaySeconds: number;
  /** Failures on record halve in this time. */
  halfLifeSeconds: number;
}

/** Sources remembered at most (about 130 bytes each: 8 MB in all). */
export const MAX_SOURCES = 65_536;
/** A record decayed below this is as good as none and may be swept. */
const FORGOTTEN = 0.05;
/** Failures between two sweeps of forgotten records. */
const SWEEP_EVERY = 1024;

interface Entry {
  /** Failures on record at `at`, decaying since. */
  score: number;
  at: number;
}

export class AuthPenalties {
  /** In least-recently-failed-first order (a Map keeps insertion order; a failure re-inserts). */
  private readonly records = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly maxSources: number;
  private sinceSweep = 0;

  constructor(
    private readonly limits: PenaltyLimits,
    private readonly logger: Logger,
    { now = Date.now, maxSources = MAX_SOURCES }: { now?: () => number; maxSources?: number } = {},
  ) {
    this.now = now;
    this.maxSources = maxSources;
  }

  /** Sources on record now. */
  get size(): number {
    return this.records.size;
  }

  /** Failures on record for `address`'s source, rounded up (a failure half forgotten still counts). */
  failures(address: string): number {
    return Math.max(0, Math.ceil(this.score(sourceKey(address)) - 1e-9));
  }

  /** How long the answer to a guess from `address` waits now, in ms (0: not at all). */
  delayMs(address: string): number {
    const { freeFailures, firstDelaySeconds, maxDelaySeconds } = this.limits;
    const over = this.failures(address) - freeFailures;
    if (over < 0) return 0;
    return Math.round(Math.min(maxDelaySeconds, firstDelaySeconds * 2 ** over) * 1000);
  }

  /** Puts a failed guess from `address` on record. */
  failed(address: string): void {
    const source = sourceKey(address);
    const score = this.score(source) + 1;
    this.records.delete(source);
    this.records.set(source, { score, at: this.now() });
    this.sweep();
  }

  /**
   * Answers a guess from `address`: `reply` runs after the source's current delay (at once when
   * there is none); a wrong guess (`failed`) is put on record at once, before the wait, so that
   * closing the connection meanwhile saves nothing.
   */
  answer(address: string, failed: boolean, reply: () => void): void {
    const ms = this.delayMs(address);
    if (failed) this.failed(address);
    if (ms === 0) return reply();
    this.logger.info(
      { event: 'auth.penalty', client: address, source: sourceKey(address), delayMs: ms, failures: this.failures(address), sources: this.records.size },
      'answer delayed: this source failed to log in too often',
    );
    setTimeout(reply, ms);
  }

  private score(source: string): number {
    const record = this.records.get(source);
    if (!record) return 0;
    return record.score * 2 ** (-(this.now() - record.at) / (this.limits.halfLifeSeconds * 1000));
  }

  /**
   * Beyond the bound, drops the least recently failed eighth of the records at once; every
   * SWEEP_EVERY failures, those at the head long forgotten. In batches: a Map walk from its head
   * steps over every entry deleted since the table was last compacted, so a walk per failure
   * would cost a scan quadratic time.
   */
  private sweep(): void {
    const over = this.records.size > this.maxSources;
    if (!over && ++this.sinceSweep < SWEEP_EVERY) return;
    this.sinceSweep = 0;
    const keep = over ? this.maxSources - Math.ceil(this.maxSources / 8) : this.records.size;
    for (const source of this.records.keys()) {
      if (this.records.size > keep || this.score(source) < FORGOTTEN) this.records.delete(source);
      else break;
    }
  }
}
