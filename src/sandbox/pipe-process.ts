// A sandbox process without a terminal: stdin, stdout and stderr are pipes kept apart.
// The host-side nsenter waits for its child inside the sandbox and passes on its exit code or
// re-raises its signal, so the child_process exit event is the player's program's status.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { WargateError } from '../errors/catalog.js';
import { childrenOf, hangUpChildren, signalProcess } from './procfs.js';
import type { ExitStatus, SandboxProcess } from './types.js';

export async function spawnPipeProcess(argv: string[], env: Record<string, string>): Promise<SandboxProcess> {
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  try {
    await once(child, 'spawn');
  } catch (err) {
    throw new WargateError('WG_ERR_PROCESS_START', `cannot start ${argv[0]}: ${(err as Error).message}`, { cause: err });
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
    // nsenter does not forward signals: deliver to its child, the program inside the sandbox.
    for (const pid of childrenOf(child.pid)) signalProcess(pid, `SIG${name}` as NodeJS.Signals);
  }
}
