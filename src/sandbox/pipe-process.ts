// A sandbox process without a terminal: stdin, stdout and stderr are pipes kept apart.
// sandbox-exec (a small C program of ours, src/sandbox/sandbox-exec.c) enters the sandbox, starts the
// program as the level user, waits for it and passes on its exit code or re-raises its signal, so
// the child_process exit event is the player's program's status.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { WargateError } from '../errors/catalog.js';
import { childrenOf, hangUpChildren, signalProcess } from './procfs.js';
import type { ExitStatus, SandboxProcess } from './types.js';

/** Built by `npm run build` next to the compiled JavaScript (dist/sandbox-exec). */
export const SANDBOX_EXEC = fileURLToPath(new URL('../../sandbox-exec', import.meta.url));

/**
 * Runs the level's shell (WG_SHELL, WG_MODE and WG_CMD in `env`: see sandbox-launch.c) in the
 * sandbox whose PID 1 has host pid `nsPid`, as `user`. `env` may carry WG_CGROUP_PROCS, which
 * sandbox-exec joins first.
 */
export async function spawnPipeProcess(
  nsPid: number,
  user: { uid: number; gid: number; groups: number[] },
  env: Record<string, string>,
): Promise<SandboxProcess> {
  const ids = [String(user.uid), String(user.gid), user.groups.join(',')];
  const child = spawn(SANDBOX_EXEC, [String(nsPid), ...ids], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  try {
    await once(child, 'spawn');
  } catch (err) {
    throw new WargateError('WG_ERR_PROCESS_START', `cannot start ${SANDBOX_EXEC}: ${(err as Error).message}`, { cause: err });
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

  return {
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    exited,
    resize() {},
    signal,
    hangup() {
      child.stdin.destroy();
      if (!done && child.pid !== undefined) hangUpChildren(child.pid, exited);
    },
  };

  function signal(name: string): void {
    if (done || child.pid === undefined) return;
    // sandbox-exec does not forward signals: deliver to its child, the program inside the sandbox.
    for (const pid of childrenOf(child.pid)) signalProcess(pid, `SIG${name}` as NodeJS.Signals);
  }
}
