// When to restart a crashed daemon: 1 s after its first crash, doubling with each crash that
// follows soon after, up to a minute; a run that stayed up a minute is healthy again, so the next
// crash waits 1 s. Pure arithmetic on durations (unit-tested with no clock).

export interface BackoffPolicy {
  firstMs: number;
  maxMs: number;
  /** A run at least this long resets the delay to firstMs. */
  healthyMs: number;
}

export const DAEMON_BACKOFF: BackoffPolicy = { firstMs: 1000, maxMs: 60_000, healthyMs: 60_000 };

export class RestartBackoff {
  private delay = 0;

  constructor(private readonly policy: BackoffPolicy = DAEMON_BACKOFF) {}

  /** The wait before the next start, given how long the run that just ended was up. */
  next(upMs: number): number {
    const { firstMs, maxMs, healthyMs } = this.policy;
    this.delay = upMs >= healthyMs || this.delay === 0 ? firstMs : Math.min(maxMs, this.delay * 2);
    return this.delay;
  }
}
