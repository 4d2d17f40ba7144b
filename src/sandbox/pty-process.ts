// A sandbox process on a terminal of the sandbox's own devpts instance. The gateway holds the
// terminal's master itself (opened as /proc/PID1/cwd/ptmx: the sandbox's PID 1 keeps its working
// directory there), sandbox-spawn starts the program on the slave, and PID 1 reports its exit, so no
// process of ours stays beside the player's. Resizes are set on the master by a short-lived
// sandbox-spawn --resize. It never reads or writes the player's terminal on its own.
import { spawn } from 'node:child_process';
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { PassThrough, Writable } from 'node:stream';
import { ReadStream } from 'node:tty';
import { WargateError } from '../errors/catalog.js';
import { SANDBOX_SPAWN, startOnTerminal, type ProgramReaper } from './sandbox-spawn.js';
import type { ExitStatus, PtySpec, SandboxProcess } from './types.js';

/** How long the terminal stays open after the program's exit while its background jobs hold it. */
const LINGER_MS = 100;

export interface PtyOptions {
  /** Host pid of the sandbox's PID 1, whose namespaces and root the program enters. */
  nsPid: number;
  /** st_dev of the sandbox's devpts instance, read when the sandbox started. */
  devpts: number;
  /** Who runs the program: uid, gid and supplementary groups (the terminal is handed to the uid, as sshd does). */
  user: { uid: number; gid: number; groups: number[] };
  size: PtySpec;
  reaper: ProgramReaper;
}

/**
 * The sandbox's devpts instance as its PID 1 sees it, for `devpts` above. Call it before any player
 * program runs: afterwards only the device number is trusted, never the path.
 */
export function devptsOf(nsPid: number): number {
  const fd = openMaster(nsPid);
  try {
    return fstatSync(fd).dev;
  } finally {
    closeSync(fd);
  }
}

/**
 * A new terminal of the sandbox. Nothing on the way is followed: /proc/PID/cwd is the kernel's own
 * link and "ptmx" may not be a symlink; what opens must be a character device of that devpts
 * instance (a hostile root inside could have moved PID 1's cwd, never the device number).
 */
function openMaster(nsPid: number, devpts?: number): number {
  const fd = openSync(`/proc/${nsPid}/cwd/ptmx`, constants.O_RDWR | constants.O_NOCTTY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  const st = fstatSync(fd);
  if (!st.isCharacterDevice() || (devpts !== undefined && st.dev !== devpts)) {
    closeSync(fd);
    throw new WargateError('WG_ERR_PROCESS_START', `no terminal device of sandbox ${nsPid} at its PID 1's working directory`);
  }
  return fd;
}

/** `env` holds WG_SHELL, WG_MODE and WG_CMD (see sandbox-launch.c), and may hold WG_CGROUP_PROCS. */
export async function spawnPtyProcess(env: Record<string, string>, options: PtyOptions): Promise<SandboxProcess> {
  const { nsPid, user, size, reaper } = options;
  const master = openMaster(nsPid, options.devpts);
  let pid: number;
  try {
    pid = await startOnTerminal({ nsPid, user, env, master, cols: size.cols, rows: size.rows });
  } catch (err) {
    closeSync(master);
    throw err;
  }
  const status = reaper.watch(pid);
  // The master, read and written by the event loop; it owns the fd from here on.
  const terminal = new ReadStream(master);
  const stdout = new PassThrough();
  terminal.pipe(stdout, { end: false });
  // EIO: no process holds the slave any more; whatever else ends the master ends the output too.
  terminal.on('error', () => {});
  terminal.once('close', () => stdout.end());
  // The player's input; its end is ignored, as sshd does for a pty.
  const stdin = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (terminal.destroyed) return done();
      terminal.write(chunk, () => done());
    },
    final(done) {
      done();
    },
  });
  stdin.on('error', () => {});

  let done = false;
  const exited = status.then(async (result: ExitStatus) => {
    // What the program wrote last comes before its end; background jobs still holding the
    // terminal do not keep the session open (the hangup that closing it sends is theirs).
    const linger = setTimeout(() => terminal.destroy(), LINGER_MS);
    if (!terminal.closed) await new Promise((resolve) => terminal.once('close', resolve));
    clearTimeout(linger);
    if (!stdout.readableEnded) await new Promise((resolve) => stdout.once('end', resolve).once('close', resolve));
    done = true;
    return result;
  });

  const resizer = resizes(master, () => done || terminal.destroyed);
  return {
    stdin,
    stdout,
    stderr: null,
    exited,
    resize: resizer,
    signal(name) {
      if (!done) reaper.kill(pid, name);
    },
    hangup() {
      // Closing the master: the kernel sends SIGHUP to the terminal's session, as a closed xterm does.
      if (!done) terminal.destroy();
    },
  };
}

/**
 * resize(cols, rows) for a master: TIOCSWINSZ by a short-lived sandbox-spawn --resize given the
 * master as fd 3 (the gateway has no ioctl). One at a time; sizes asked for meanwhile collapse into
 * the latest, so a storm of window changes costs a process or two.
 */
function resizes(master: number, gone: () => boolean): (cols: number, rows: number) => void {
  let running = false;
  let pending: [number, number] | undefined;
  const run = () => {
    if (!pending || gone()) return;
    const [cols, rows] = pending;
    pending = undefined;
    running = true;
    const helper = spawn(SANDBOX_SPAWN, ['--resize', String(cols), String(rows)], { stdio: ['ignore', 'ignore', 'ignore', master] });
    const next = () => {
      running = false;
      run();
    };
    helper.once('error', next);
    helper.once('exit', next);
  };
  return (cols, rows) => {
    pending = [cols, rows];
    if (!running) run();
  };
}
