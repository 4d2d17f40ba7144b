// A sandbox process on a terminal. The gateway holds a host-side pty (node-pty); inside the sandbox
// util-linux `script` relays it to a pty of the sandbox's own devpts. Output is Buffers, not strings,
// so binary output survives; node-pty pause/resume gives backpressure toward the SSH channel.
import { constants } from 'node:os';
import { Readable, Writable } from 'node:stream';
import * as pty from 'node-pty';
import { childrenOf, hangUpChildren, signalProcess } from './procfs.js';
import type { ExitStatus, PtySpec, SandboxProcess } from './types.js';

const signalNames = new Map(Object.entries(constants.signals).map(([name, num]) => [num, name.replace(/^SIG/, '')]));

export function spawnPtyProcess(argv: string[], env: Record<string, string>, size: PtySpec): SandboxProcess {
  const term = pty.spawn(argv[0], argv.slice(1), {
    name: size.term,
    cols: size.cols,
    rows: size.rows,
    cwd: '/',
    env,
    encoding: null,
  });
  // node-pty rethrows stream errors nobody listens to; EIO at exit is routine.
  (term as unknown as NodeJS.EventEmitter).on('error', () => {});

  const stdout = new Readable({ read: () => term.resume() });
  term.onData((data) => {
    if (!stdout.push(data as unknown as Buffer)) term.pause();
  });

  const stdin = new Writable({
    write(chunk: Buffer, _enc, callback) {
      if (!done) term.write(chunk);
      callback();
    },
    // End of input on a terminal: OpenSSH's sshd ignores it too (the player types ^D instead).
    final: (callback) => callback(),
  });

  let done = false;
  const exited = new Promise<ExitStatus>((resolve) => {
    term.onExit(({ exitCode, signal }) => {
      done = true;
      stdout.push(null);
      resolve(signal ? { signal: signalNames.get(signal) ?? String(signal), coreDumped: false } : { code: exitCode });
    });
  });

  return {
    stdin,
    stdout,
    stderr: null,
    exited,
    resize(cols, rows) {
      if (!done) term.resize(cols, rows);
    },
    signal(name) {
      // host nsenter -> script (relay, inside) -> the player's program: signal the program.
      for (const relay of done ? [] : childrenOf(term.pid)) {
        for (const pid of childrenOf(relay)) signalProcess(pid, `SIG${name}` as NodeJS.Signals);
      }
    },
    hangup() {
      if (done) return;
      // Closing the master hangs up the terminal: the kernel sends SIGHUP to its foreground group,
      // the relay inside. nsenter ignores it (see PTY_HOST_PREFIX) and exits once the relay has.
      (term as unknown as { destroy(): void }).destroy();
      // The relay may still be starting (HUP still ignored) and miss that: hang it up directly too.
      hangUpChildren(term.pid, exited);
    },
  };
}
