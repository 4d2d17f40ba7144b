// A sandbox process on a terminal. pty-relay (a small C program of ours, on the host side) enters
// the sandbox, takes a terminal from its own devpts instance, starts the level's shell on it (as its
// controlling terminal) and relays it over pipes, passing on the program's exact exit code or fatal
// signal. Resizes go to fd 3.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { WargateError } from '../errors/catalog.js';
import { childrenOf, signalProcess } from './procfs.js';
import type { ExitStatus, PtySpec, SandboxProcess } from './types.js';

/** Built by `npm run build` next to the compiled JavaScript (dist/pty-relay). */
export const PTY_RELAY = fileURLToPath(new URL('../../pty-relay', import.meta.url));

export interface PtyOptions {
  /** Host pid of the sandbox's PID 1, whose namespaces and root the relay enters. */
  nsPid: number;
  /** Who runs the program: uid, gid and supplementary groups (the terminal is handed to the uid, as sshd does). */
  user: { uid: number; gid: number; groups: number[] };
  size: PtySpec;
  /** Told what the relay said when it could not run the program. */
  onRelayError: (message: string) => void;
}

/** `env` holds WG_SHELL, WG_MODE and WG_CMD (see sandbox-launch.c), and may hold WG_CGROUP_PROCS. */
export async function spawnPtyProcess(env: Record<string, string>, options: PtyOptions): Promise<SandboxProcess> {
  const { nsPid, user, size, onRelayError } = options;
  const ids = [String(user.uid), String(user.gid), user.groups.join(',')];
  const relay = spawn(PTY_RELAY, [String(nsPid), String(size.cols), String(size.rows), ...ids], {
    env,
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    // Its own session: an operator's Ctrl-C at the gateway's terminal never reaches a player.
    detached: true,
  });
  try {
    await once(relay, 'spawn');
  } catch (err) {
    throw new WargateError('WG_ERR_PROCESS_START', `cannot start ${PTY_RELAY}: ${(err as Error).message}`, { cause: err });
  }
  const control = relay.stdio[3] as Writable;
  for (const stream of [relay.stdin!, control]) stream.on('error', () => {});
  // The relay's own errors are not the player's output: they go to the log.
  let relayErrors = '';
  relay.stderr!.setEncoding('utf8').on('data', (d: string) => (relayErrors = (relayErrors + d).slice(-2000)));

  let done = false;
  const exited = new Promise<ExitStatus>((resolve) => {
    relay.once('close', (code, signal) => {
      done = true;
      if (relayErrors) onRelayError(relayErrors.trim());
      resolve(signal ? { signal: signal.replace(/^SIG/, ''), coreDumped: false } : { code: code ?? 255 });
    });
  });

  return {
    stdin: relay.stdin!,
    stdout: relay.stdout as Readable,
    stderr: null,
    exited,
    resize(cols, rows) {
      if (!done) control.write(`${cols} ${rows}\n`);
    },
    signal(name) {
      if (done || relay.pid === undefined) return;
      // The relay's child is the player's program, inside the sandbox.
      for (const pid of childrenOf(relay.pid)) signalProcess(pid, `SIG${name}` as NodeJS.Signals);
    },
    hangup() {
      if (done) return;
      // The relay closes the terminal's master: the kernel sends SIGHUP to the player's session.
      // Its output has no reader any more: unblock a relay stuck writing to us.
      relay.kill('SIGHUP');
      relay.stdout!.destroy();
    },
  };
}
