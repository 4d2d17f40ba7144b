// In-process SSH clients for the benchmarks (ssh2's Client): many logins from one event loop, each
// on a socket this module opens itself, so a benchmark can reset it (RST) or bind it to a chosen
// loopback source address. The gateway counts sandboxes per client address (admission), and its
// log lines name the client's address but not its port: a distinct source address per login (any of
// 127.0.0.0/8 works on Linux loopback) both keeps clear of the per-address limit and lets a
// benchmark find the gateway's events for that login.
import { connect as tcpConnect, type Socket } from 'node:net';
import ssh2, { type ClientChannel } from 'ssh2';

const { Client } = ssh2;

/** A shell prompt at the end of the output; readline may follow it with escape sequences (\e[K). */
export const PROMPT = /[$#] (?:\x1b\[[0-9;?]*[A-Za-z])*$/;

/**
 * Source address number i (0, 1, 2, ...) in 127.<block>.0.0/16, never .0 or .255 in the last two
 * bytes: 62,500 distinct addresses per block.
 */
export function loopbackAddress(i: number, block = 1): string {
  const hi = Math.floor(i / 250);
  if (hi >= 250) throw new Error(`loopback address index ${i} out of range`);
  return `127.${block}.${hi + 1}.${(i % 250) + 1}`;
}

export interface ShellLogin {
  client: InstanceType<typeof Client>;
  socket: Socket;
  shell: ClientChannel;
  /** Everything the shell has written so far (up to and including the prompt at first). */
  output: string;
  /** ms from the start of the TCP connect. */
  firstByteMs: number;
  promptMs: number;
}

export interface LoginOptions {
  port: number;
  user: string;
  password: string;
  localAddress?: string;
  timeoutMs?: number;
}

/**
 * Connects, logs in with a password, opens an interactive shell (pty-req + shell) and resolves once
 * the first prompt has arrived. On any failure the socket is destroyed and the promise rejects.
 */
export function loginShell(o: LoginOptions): Promise<ShellLogin> {
  const started = performance.now();
  const timeoutMs = o.timeoutMs ?? 30_000;
  return new Promise<ShellLogin>((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port: o.port, localAddress: o.localAddress });
    const client = new Client();
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      client.end();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail(`no prompt within ${timeoutMs} ms`), timeoutMs);
    socket.once('error', (err) => fail(`socket: ${err.message}`));
    client.on('error', (err) => fail(`ssh: ${err.message}`));
    client.on('close', () => fail('connection closed before the prompt'));
    client.on('ready', () => {
      client.shell({ term: 'xterm', rows: 24, cols: 80 }, (err, shell) => {
        if (err) return fail(`shell: ${err.message}`);
        let output = '';
        let firstByteMs = NaN;
        let exit = '';
        shell.on('exit', (code: number | null, signal?: string) => (exit = signal ? `signal ${signal}` : `exit status ${code}`));
        const onData = (d: Buffer) => {
          if (Number.isNaN(firstByteMs)) firstByteMs = performance.now() - started;
          output += d.toString('latin1');
          if (!settled && PROMPT.test(output)) {
            settled = true;
            clearTimeout(timer);
            client.removeAllListeners('close');
            client.removeAllListeners('error');
            client.on('error', () => {});
            resolve({ client, socket, shell, output, firstByteMs, promptMs: performance.now() - started });
          }
        };
        shell.on('data', onData);
        shell.stderr.on('data', onData);
        shell.on('close', () => fail(`shell closed (${exit || 'no exit status'}) before the prompt, after ${JSON.stringify(output.slice(-120))}`));
      });
    });
    client.connect({ sock: socket, username: o.user, password: o.password, readyTimeout: timeoutMs, tryKeyboard: false });
  });
}

/** Writes `text` and resolves when the shell's output ends with a prompt again (or rejects on close / timeout). */
export function runInShell(login: ShellLogin, text: string, timeoutMs = 30_000): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let out = '';
    const done = (err?: Error) => {
      clearTimeout(timer);
      login.shell.off('data', onData);
      login.shell.off('close', onClose);
      if (err) reject(err);
      else resolve(out);
    };
    const onData = (d: Buffer) => {
      out += d.toString('latin1');
      if (PROMPT.test(out) && out.includes('\n')) done();
    };
    const onClose = () => done(new Error('shell closed'));
    const timer = setTimeout(() => done(new Error(`no prompt within ${timeoutMs} ms after ${JSON.stringify(text)}`)), timeoutMs);
    login.shell.on('data', onData);
    login.shell.on('close', onClose);
    login.shell.write(text);
  });
}

/** Leaves cleanly: `exit` in the shell, waits for the channel to close, then ends the connection. */
export function exitCleanly(login: ShellLogin, timeoutMs = 30_000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      login.socket.destroy();
      reject(new Error(`shell did not close within ${timeoutMs} ms of exit`));
    }, timeoutMs);
    login.client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    login.shell.once('close', () => login.client.end());
    login.shell.write('exit\n');
  });
}

/** Resets the TCP connection: SO_LINGER {1, 0} and close, so the kernel sends RST, not FIN. */
export function resetConnection(login: ShellLogin): void {
  login.socket.resetAndDestroy();
  login.client.removeAllListeners('close');
}
