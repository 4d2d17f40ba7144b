// sandbox-spawn (a small C program of ours, src/sandbox/sandbox-spawn.c) starts each player program
// in a sandbox as the level user. On a terminal it forks the program and exits: the sandbox's PID 1
// reaps the program and reports its status (ProgramReaper). This module runs the helper for that
// case and learns the program's pid; it never waits for or signals the program itself.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { WargateError } from '../errors/catalog.js';
import type { ExitStatus } from './types.js';

/** Built by `npm run build` next to the compiled JavaScript (dist/sandbox-spawn). */
export const SANDBOX_SPAWN = fileURLToPath(new URL('../../sandbox-spawn', import.meta.url));

/** The sandbox's PID 1 as the parent of its terminal programs (sandbox-init.c, serve_lifeline). */
export interface ProgramReaper {
  /** Resolves with the program's exact status once PID 1 has reaped it (SIGKILL if the sandbox ends first). */
  watch(pid: number): Promise<ExitStatus>;
  /** A signal (name without SIG) for a watched program, sent by PID 1: never to a recycled pid. */
  kill(pid: number, signal: string): void;
}

export interface TerminalProgram {
  /** Host pid of the sandbox's PID 1, whose namespaces and root the helper enters. */
  nsPid: number;
  user: { uid: number; gid: number; groups: number[] };
  /** The program's environment: WG_SHELL, WG_MODE and WG_CMD say what to run (sandbox-launch.c);
   * WG_CGROUP_PROCS is read (and removed) by the helper, which joins it first. */
  env: Record<string, string>;
  /** The master fd of a terminal of the sandbox's devpts, and its size. */
  master: number;
  cols: number;
  rows: number;
}

/** Starts the program on the terminal's slave; resolves with its pid in the sandbox's pid namespace. */
export async function startOnTerminal(spec: TerminalProgram): Promise<number> {
  const { uid, gid, groups } = spec.user;
  const args = [String(spec.nsPid), String(uid), String(gid), groups.join(','), '--pty', String(spec.cols), String(spec.rows)];
  // fd 3: the helper's report (the program's pid, or why it could not start); fd 4: the master.
  const helper = spawn(SANDBOX_SPAWN, args, {
    env: spec.env,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe', spec.master],
    // Its own session: an operator's Ctrl-C at the gateway's terminal never reaches a player.
    detached: true,
  });
  const report = helper.stdio[3] as Readable;
  let text = '';
  report.setEncoding('utf8').on('data', (d: string) => (text = (text + d).slice(-4000)));
  // The report ends once the helper has exited and the program has closed its copy (it does at once).
  const [code] = await Promise.all([
    new Promise<number | string>((resolve) => {
      helper.once('error', (err) => resolve(err.message));
      helper.once('exit', (c, signal) => resolve(c ?? signal ?? 'unknown'));
    }),
    new Promise((resolve) => report.once('close', resolve)),
  ]);
  const pid = /^(\d+)\n/.exec(text)?.[1];
  if (code !== 0 || pid === undefined) {
    throw new WargateError('WG_ERR_PROCESS_START', text.replace(/^\d+\n/, '').trim() || `sandbox-spawn exited (${code})`);
  }
  return Number(pid);
}
