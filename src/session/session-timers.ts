// The idle timeout and the maximum length of one session: it says when to warn and when to end,
// through two callbacks, and holds at most one timer. It must never run a callback after stop(), and
// stop() must leave nothing scheduled (a session that closed keeps no timer and no closure alive).
import type { SandboxLimits } from '../config/schema.js';

export type TimeoutReason = 'idle-timeout' | 'max-session-length';

export type TimeoutLimits = Pick<SandboxLimits, 'idleTimeoutSeconds' | 'maxSessionSeconds' | 'warnSeconds'>;

export interface TimeoutEvents {
  /** `secondsLeft` before the session ends for `reason`, unless (idle) the player types. */
  warn(reason: TimeoutReason, secondsLeft: number): void;
  end(reason: TimeoutReason): void;
}

/**
 * setTimeout fires at once (with a TimeoutOverflowWarning) when asked to wait longer than 2^31-1 ms,
 * about 24.8 days, and maxSessionSeconds may be 30 days: longer waits are taken in steps.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

interface Deadline {
  reason: TimeoutReason;
  endAt: number;
  warnAt: number;
  warned: boolean;
}

export class SessionTimers {
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt: number;
  private lastInput: number;
  /** The lastInput the idle warning was given for (a new input calls for a new warning). */
  private idleWarnedFor: number | undefined;
  private maxWarned = false;
  private stopped = false;
  private readonly idleMs: number;
  private readonly maxMs: number;
  private readonly warnMs: number;

  /**
   * `now` is a monotonic clock in ms by default, so a wall-clock step (NTP, a VM resumed) neither
   * ends sessions early nor keeps them forever.
   */
  constructor(
    limits: TimeoutLimits,
    private readonly events: TimeoutEvents,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.idleMs = limits.idleTimeoutSeconds * 1000;
    this.maxMs = limits.maxSessionSeconds * 1000;
    this.warnMs = limits.warnSeconds * 1000;
    this.startedAt = this.lastInput = now();
    this.check();
  }

  /**
   * Client input. Only a number is stored: the timer, set for the old deadline, finds the new one
   * when it fires (touch runs for every chunk of input; re-arming a timer each time would cost more).
   */
  touch(): void {
    this.lastInput = this.now();
  }

  /** Clears the timer; no callback runs afterwards. Idempotent. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Whether a timer is pending (for tests and diagnostics). */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  /**
   * A warning is given only when it comes before the end: with warnSeconds >= the timeout there is
   * none (an idle warning at the very moment of the player's last input would be noise).
   */
  private lead(timeoutMs: number): number {
    return this.warnMs < timeoutMs ? this.warnMs : 0;
  }

  private deadlines(): Deadline[] {
    const list: Deadline[] = [];
    if (this.maxMs > 0) {
      const endAt = this.startedAt + this.maxMs;
      list.push({ reason: 'max-session-length', endAt, warnAt: endAt - this.lead(this.maxMs), warned: this.maxWarned });
    }
    if (this.idleMs > 0) {
      const endAt = this.lastInput + this.idleMs;
      list.push({ reason: 'idle-timeout', endAt, warnAt: endAt - this.lead(this.idleMs), warned: this.idleWarnedFor === this.lastInput });
    }
    return list.sort((a, b) => a.endAt - b.endAt);
  }

  private check(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const now = this.now();
    const deadlines = this.deadlines();
    if (deadlines.length === 0) return;
    // Only the first end matters: the player is not warned of an idle timeout that the maximum
    // length will beat, nor of a maximum length that an idle timeout comes before.
    const first = deadlines[0];
    if (now >= first.endAt) {
      this.stop();
      this.events.end(first.reason);
      return;
    }
    if (now >= first.warnAt && !first.warned && first.warnAt < first.endAt) {
      if (first.reason === 'max-session-length') this.maxWarned = true;
      else this.idleWarnedFor = this.lastInput;
      first.warned = true;
      this.events.warn(first.reason, Math.ceil((first.endAt - now) / 1000));
      if (this.stopped) return;
    }
    // A warning time already past (given, or not given because another end comes first) is no
    // reason to wake up again before that deadline's end.
    const next = Math.min(...deadlines.map((d) => (d.warned || d.warnAt <= now ? d.endAt : d.warnAt)));
    this.timer = setTimeout(() => this.check(), Math.min(Math.max(next - now, 1), MAX_TIMER_MS));
  }
}

/** "90 seconds", "5 minutes", "4 hours": how a player is told a length. */
export function duration(seconds: number): string {
  const say = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (seconds >= 3600 && seconds % 3600 === 0) return say(seconds / 3600, 'hour');
  if (seconds >= 60 && seconds % 60 === 0) return say(seconds / 60, 'minute');
  return say(seconds, 'second');
}

/** The warning written to the player's terminals `secondsLeft` before the end. */
export function warningText(reason: TimeoutReason, secondsLeft: number, limits: TimeoutLimits): string {
  return reason === 'idle-timeout'
    ? `No input for a while: this session ends in ${duration(secondsLeft)} unless you type something.`
    : `This session ends in ${duration(secondsLeft)}: sessions last at most ${duration(limits.maxSessionSeconds)}.`;
}

/** The last line the player's terminals get. */
export function endText(reason: TimeoutReason, limits: TimeoutLimits): string {
  return reason === 'idle-timeout'
    ? `Session ended: no input for ${duration(limits.idleTimeoutSeconds)}.`
    : `Session ended: sessions last at most ${duration(limits.maxSessionSeconds)}.`;
}
