// A sandbox process without a terminal: stdin, stdout and stderr are pipes kept apart.
// sandbox-spawn (src/sandbox/sandbox-spawn.c) enters the sandbox, starts the program as the level
// user, waits for it and passes on its exit code or re-raises its signal, so the child_process exit
// event is the player's program's status.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { WargateError } from '../errors/catalog.js';
import { childrenOf, signalProcess } from './procfs.js';
import { SANDBOX_SPAWN } from './sandbox-spawn.js';
import type { ExitStatus, SandboxProcess } from './types.js';

/**
 * Runs the level's shell (WG_SHELL, WG_MODE and WG_CMD in `env`: see sandbox-launch.c) in the
 * sandbox whose PID 1 has host pid `nsPid`, as `user`. `env` may carry WG_CGROUP_PROCS, which
 * sandbox-spawn joins first.
 */
export async function spawnPipeProcess(
  nsPid: number,
  user: { uid: number; gid: number; groups: number[] },
  env: Record<string, string>,
): Promise<SandboxProcess> {
  const ids = [String(user.uid), String(user.gid), user.groups.join(',')];
  const child = spawn(SANDBOX_SPAWN, [String(nsPid), ...ids], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  try {
    await once(child, 'spawn');
  } catch (err) {
    throw new WargateError('WG_ERR_PROCESS_START', `cannot start ${SANDBOX_SPAWN}: ${(err as Error).message}`, { cause: err });
  }
  // A player closing stdin early, or a program exiting before reading it, must not crash the gateway.
  child.stdin.on('error', () => {});

  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('close', (code, signal) => {
      resolve(signal ? { signal: signal.replace(/^SIG/, ''), coreDumped: false } : { code: code ?? 255 });
    });
  });
  let done = false;
  void exited.then(() => (done = true));

  // sandbox-spawn does not forward signals: they go to its child, the program inside the sandbox.
  const signal = (name: string) => {
    if (done || child.pid === undefined) return;
    for (const pid of childrenOf(child.pid)) signalProcess(pid, `SIG${name}` as NodeJS.Signals);
  };
  return {
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    exited,
    resize() {},
    signal,
    hangup() {
      child.stdin.destroy();
      if (done || child.pid === undefined) return;
      // SIGHUP now and every 100 ms until it ends: a program still starting could miss a single one.
      signal('HUP');
      const timer = setInterval(() => signal('HUP'), 100).unref();
      void exited.finally(() => clearInterval(timer));
    },
  };
}
