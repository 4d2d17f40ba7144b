// A game's cron jobs, run inside every live sandbox of that game. The gateway holds one timer per
// job; a sandbox holds nothing between runs (no cron daemon per sandbox: the budget of an idle one
// is about a megabyte). It never runs a job as root, never lets two runs of one job overlap in one
// sandbox, and never keeps a job's output.
import type { Logger } from 'pino';
import type { CronJob } from '../config/schema.js';
import { errorCode } from '../errors/catalog.js';
import type { Game, Level } from '../games/catalog.js';
import type { ExitStatus, Sandbox, SandboxUser } from '../sandbox/types.js';
import { DEFAULT_PATH } from './environment.js';

/** A live session as the scheduler sees it: its level (so its game) and its sandbox once started. */
export interface CronTarget {
  readonly level: Level;
  /** undefined while the sandbox starts and once the session closes. */
  readonly liveSandbox: Sandbox | undefined;
}

export interface CronDeps {
  games: readonly Game[];
  /** The level users of every game, by name (the game catalog). */
  level(user: string): Level | undefined;
  /** The live sessions, walked at each tick. */
  targets(): Iterable<CronTarget>;
  logger: Logger;
}

/**
 * Inside the sandbox `timeout` kills the run's whole process group at its deadline (what a player's
 * script started with it goes too); the gateway kills the run itself only if that has not ended it
 * this much later.
 */
const BACKSTOP_MS = 5000;

interface ScheduledJob {
  game: Game;
  /** Its index in the game's `cron` list, as logged. */
  index: number;
  job: CronJob;
  /** The level user, with /bin/sh for the command: a level's own login shell may be a game piece. */
  user: SandboxUser;
  /** Sandboxes where a run of this job is still going. */
  busy: Set<string>;
  timer?: NodeJS.Timeout;
}

export class CronScheduler {
  private jobs: ScheduledJob[] = [];
  private stopped = false;
  private started = false;

  constructor(private readonly deps: CronDeps) {
    this.jobs = this.schedule(deps.games);
  }

  /** `busy`: the busy sets of the jobs scheduled before, by jobKey, taken over by the same jobs. */
  private schedule(games: readonly Game[], busy = new Map<string, Set<string>>()): ScheduledJob[] {
    const jobs: ScheduledJob[] = [];
    for (const game of games) {
      game.definition.cron.forEach((job, index) => {
        // The schema has checked that the level exists in this game.
        const level = this.deps.level(job.level)!;
        jobs.push({ game, index, job, user: { ...level.user, shell: '/bin/sh' }, busy: busy.get(jobKey(game, index)) ?? new Set() });
      });
    }
    return jobs;
  }

  start(): void {
    this.started = true;
    for (const scheduled of this.jobs) {
      scheduled.timer = setInterval(() => void this.tick(scheduled), scheduled.job.every * 1000).unref();
    }
  }

  /**
   * The catalog was reloaded: the jobs of `games` (as `level` now finds their users) replace the old
   * ones. Sessions opened before keep getting their game's jobs: a target is matched by game name.
   * A job that is still there keeps its busy set (a run started before still ends by removing its
   * sandbox from it), so a run going on at the reload is not started a second time beside it.
   */
  reschedule(games: readonly Game[]): void {
    for (const scheduled of this.jobs) clearInterval(scheduled.timer);
    this.jobs = this.schedule(games, new Map(this.jobs.map((s) => [jobKey(s.game, s.index), s.busy])));
    if (this.started && !this.stopped) this.start();
  }

  /** No tick starts after this; runs in flight end with their sandboxes (the gateway closes them next). */
  stop(): void {
    this.stopped = true;
    for (const scheduled of this.jobs) clearInterval(scheduled.timer);
  }

  /** One tick of one job: a run in each live sandbox of its game where the previous one has ended. */
  private async tick(scheduled: ScheduledJob): Promise<void> {
    if (this.stopped) return;
    const { game, job, busy } = scheduled;
    const startedAt = Date.now();
    const runs: Promise<number>[] = [];
    let skipped = 0;
    for (const target of this.deps.targets()) {
      const sandbox = target.liveSandbox;
      // By name: a session that started before a reload holds the game's earlier Game object.
      if (target.level.game.definition.name !== game.definition.name || sandbox === undefined) continue;
      if (busy.has(sandbox.id)) skipped++;
      else runs.push(this.run(scheduled, sandbox));
    }
    if (runs.length === 0 && skipped === 0) return;
    const took = await Promise.all(runs);
    const failed = took.filter((ms) => ms < 0).length;
    this.deps.logger.debug(
      {
        event: 'cron.tick',
        game: game.definition.name,
        job: scheduled.index,
        level: job.level,
        ran: runs.length,
        skipped,
        failed,
        startedAt,
        ms: Date.now() - startedAt,
        maxRunMs: Math.max(0, ...took.map(Math.abs)),
      },
      'cron tick',
    );
  }

  /** Runs the job once in one sandbox; resolves with its duration in ms, negated if it failed. */
  private async run(scheduled: ScheduledJob, sandbox: Sandbox): Promise<number> {
    const { job, user, busy } = scheduled;
    const started = performance.now();
    const elapsed = () => Math.max(1, Math.round(performance.now() - started));
    const timeout = job.timeout ?? job.every;
    busy.add(sandbox.id);
    let backstop: NodeJS.Timeout | undefined;
    try {
      const proc = await sandbox.spawn({
        user,
        // Output goes to /dev/null inside: nothing crosses to the gateway, and a background process
        // the job leaves cannot hold its pipes (and so the run) open.
        command: `exec /usr/bin/timeout -s KILL ${timeout} /bin/sh -c ${shellQuote(job.command)} </dev/null >/dev/null 2>&1`,
        // As cron's: PATH, and HOME, USER, LOGNAME, SHELL, which every sandbox process gets.
        env: { PATH: DEFAULT_PATH },
      });
      proc.stdin.end();
      proc.stdout.resume();
      proc.stderr?.resume();
      backstop = setTimeout(() => {
        proc.signal('KILL');
        proc.hangup();
      }, timeout * 1000 + BACKSTOP_MS);
      const status = await proc.exited;
      if ('code' in status && status.code === 0) return elapsed();
      // Killed at its deadline (by `timeout` inside, or the backstop), not by its sandbox ending.
      const timedOut = performance.now() - started >= timeout * 1000;
      this.failed(scheduled, sandbox, { status: describe(status), timedOut });
      return -elapsed();
    } catch (err) {
      // Most often the sandbox ended between the walk and the spawn (WG_ERR_SANDBOX_GONE).
      this.failed(scheduled, sandbox, { code: errorCode(err), message: (err as Error).message });
      return -elapsed();
    } finally {
      clearTimeout(backstop);
      busy.delete(sandbox.id);
    }
  }

  private failed(scheduled: ScheduledJob, sandbox: Sandbox, details: Record<string, unknown>): void {
    const { game, index, job } = scheduled;
    this.deps.logger.debug({ event: 'cron.failed', game: game.definition.name, job: index, level: job.level, sandbox: sandbox.id, ...details }, 'cron job failed');
  }
}

/**
 * A job is its game and its place in the game's `cron` list (jobs have no names): one whose command
 * or interval a reload changed is the same job, and its new command must not overlap its old run.
 */
const jobKey = (game: Game, index: number) => `${game.definition.name}\0${index}`;

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

const describe = (status: ExitStatus) => ('code' in status ? `exit ${status.code}` : `signal ${status.signal}`);
