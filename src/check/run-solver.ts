// Runs one level's solver as a player would: a Python script of the game folder, given the gateway's
// address and the level's credentials in its environment, killed (with all it started) at its
// deadline. It never throws for a solver that fails: the outcome says why.
import { spawn } from 'node:child_process';

export const PYTHON = '/usr/bin/python3';

export interface SolverInput {
  script: string;
  /** The game folder: the solver's working directory. */
  cwd: string;
  host: string;
  port: number;
  portOffset: number;
  user: string;
  password: string;
  timeoutMs: number;
}

export interface SolverOutcome {
  /** The last non-empty line of its stdout ('' if none). */
  answer: string;
  /** Its exit status, or the signal that ended it. */
  status: number | string;
  timedOut: boolean;
  /** The end of its stderr, for the report of a failure. */
  stderr: string;
  ms: number;
}

/** Bytes of stderr kept (its end): a failing solver's traceback, not a flood. */
const STDERR_TAIL = 2000;

export function runSolver(input: SolverInput): Promise<SolverOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    // Its own process group, so a deadline kills what it started too (an ssh client, a sleep).
    const child = spawn(PYTHON, [input.script], {
      cwd: input.cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PYTHONDONTWRITEBYTECODE: '1',
        WG_HOST: input.host,
        WG_PORT: String(input.port),
        WG_PORT_OFFSET: String(input.portOffset),
        WG_USER: input.user,
        WG_PASSWORD: input.password,
      },
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout = (stdout + d).slice(-65536)));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-STDERR_TAIL)));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, input.timeoutMs);
    const finish = (status: number | string) => {
      clearTimeout(timer);
      const lines = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
      resolve({ answer: lines.at(-1) ?? '', status, timedOut, stderr: stderr.trim(), ms: Math.round(performance.now() - started) });
    };
    child.on('error', (err) => {
      stderr += err.message;
      finish('spawn-failed');
    });
    child.on('close', (code, signal) => finish(code ?? signal ?? 'unknown'));
  });
}
