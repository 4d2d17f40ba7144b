// Translates one ssh2 "session" channel into a request to the connection's sandbox: it gathers
// pty-req and env, starts the shell or command once, relays data, resizes and signals, and reports
// exit-status or exit-signal. Every want-reply request gets an answer (PuTTY waits for them).
// The "sftp" subsystem is the system's sftp-server run inside the sandbox like a command.
// For a login that admission refused, it only tells the player why (refuseSessionChannel).
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { AcceptConnection, RejectConnection, ServerChannel, Session } from 'ssh2';
import { errorCode, WargateError } from '../errors/catalog.js';
import type { PtySpec, SandboxProcess } from '../sandbox/types.js';
import type { ConnectionSession } from '../session/connection-session.js';
import { acceptsEnv, MAX_ENV_VARS } from '../session/environment.js';

/** The signal names RFC 4254 section 6.10 allows a client to send. */
const SIGNALS = new Set(['ABRT', 'ALRM', 'FPE', 'HUP', 'ILL', 'INT', 'KILL', 'PIPE', 'QUIT', 'SEGV', 'TERM', 'USR1', 'USR2']);
const MAX_DIMENSION = 1000;
/**
 * The SFTP server of the openssh-sftp-server package, from the host's read-only /usr. It runs
 * inside the sandbox as the level user, through the level's shell with -c as sshd runs subsystems,
 * so file work is confined exactly as the player's own commands are (ssh2's SFTP server would do it
 * as the gateway, outside the sandbox).
 */
const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

const dimension = (n: number, fallback: number) => (Number.isInteger(n) && n > 0 ? Math.min(n, MAX_DIMENSION) : fallback);
const terminalName = (t: string) => (/^[A-Za-z0-9._+-]{1,64}$/.test(t) ? t : 'xterm');
type MaybeReply = (() => void) | undefined;

export function handleSessionChannel(accept: AcceptConnection<Session>, session: ConnectionSession, log: Logger): void {
  const channel = accept();
  let pty: PtySpec | undefined;
  const env: Record<string, string> = {};
  let started = false;
  let proc: SandboxProcess | undefined;

  channel.on('error', (err: Error) => log.debug({ err, event: 'channel.error' }, 'channel error'));

  channel.on('pty', (ok: MaybeReply, no: MaybeReply, info) => {
    if (started) return no?.();
    pty = { term: terminalName(info.term), cols: dimension(info.cols, 80), rows: dimension(info.rows, 24) };
    ok?.();
  });
  channel.on('window-change', (ok: MaybeReply, no: MaybeReply, info) => {
    if (!pty) return no?.();
    pty.cols = dimension(info.cols, pty.cols);
    pty.rows = dimension(info.rows, pty.rows);
    proc?.resize(pty.cols, pty.rows);
    ok?.();
  });
  channel.on('env', (ok: MaybeReply, no: MaybeReply, info) => {
    if (started || Object.keys(env).length >= MAX_ENV_VARS || !acceptsEnv(info.key, info.val)) return no?.();
    env[info.key] = info.val;
    ok?.();
  });
  channel.on('signal', (ok: MaybeReply, no: MaybeReply, info) => {
    const name = String(info.name).replace(/^SIG/, '');
    if (!proc || !SIGNALS.has(name)) return no?.();
    proc.signal(name);
    ok?.();
  });
  // Forwarding of agents and X11 has no place in a wargame sandbox: refused, the connection lives.
  channel.on('auth-agent', (_ok: MaybeReply, no: MaybeReply) => no?.());
  channel.on('x11', (_ok: MaybeReply, no: MaybeReply) => no?.());

  /** `usePty` is false for a subsystem: its binary protocol must not pass through a terminal. */
  const start = (ok: AcceptConnection<ServerChannel> | undefined, no: RejectConnection | undefined, command?: string, usePty = true) => {
    if (started || !ok) return no?.();
    started = true;
    void run(ok(), command, usePty ? pty : undefined);
  };
  channel.on('shell', (ok: AcceptConnection<ServerChannel> | undefined, no: RejectConnection | undefined) => start(ok, no));
  channel.on('exec', (ok: AcceptConnection<ServerChannel> | undefined, no: RejectConnection | undefined, info) =>
    start(ok, no, info.command),
  );
  // Only sftp (scp of OpenSSH 9 uses it too); any other name is refused and the channel lives on.
  channel.on('subsystem', (ok: AcceptConnection<ServerChannel> | undefined, no: RejectConnection | undefined, info) => {
    if (info.name !== 'sftp') return no?.();
    start(ok, no, SFTP_SERVER, false);
  });

  async function run(stream: ServerChannel, command: string | undefined, terminal: PtySpec | undefined): Promise<void> {
    try {
      proc = await session.start({ command, pty: terminal && { ...terminal }, env });
    } catch (err) {
      log.error({ err, code: errorCode(err), event: 'channel.start_failed' }, 'could not start process');
      const message = err instanceof WargateError ? err.playerMessage : 'The command could not be started.';
      stream.stderr.write(`wargate: ${message}\r\n`);
      stream.exit(1);
      stream.end();
      return;
    }
    const p = proc;
    // The client closed the channel (or the connection) while the program runs: hang up on it.
    stream.once('close', () => p.hangup());
    if (command === undefined && terminal) {
      const welcome = session.welcome();
      if (welcome) stream.write(welcome.replace(/\n/g, '\r\n'));
    }
    stream.on('data', () => session.touch());
    if (terminal) {
      const forget = session.addTerminal((text) => stream.writable && stream.write(text));
      void p.exited.then(forget);
    }
    p.stdout.pipe(stream, { end: false });
    p.stderr?.pipe(stream.stderr as unknown as Writable, { end: false });
    stream.pipe(p.stdin);

    const status = await p.exited;
    await drained(stream);
    if ('code' in status) stream.exit(status.code);
    else stream.exit(status.signal, status.coreDumped, '');
    stream.end();
  }
}

/** Waits until what the program wrote has gone to the client (or the channel is gone). */
async function drained(stream: ServerChannel): Promise<void> {
  while (stream.writableLength > 0 && stream.writable) {
    await Promise.race([once(stream, 'drain'), once(stream, 'close')]);
  }
}

/**
 * The session channel of a login that was refused after authentication (admission): no sandbox
 * exists and none is made. The player's shell, command or subsystem request is answered with
 * `message` and exit status 1, so clients show it as they show any output: OpenSSH prints it
 * whatever its LogLevel (sftp too), paramiko has it on stderr (exec) or in the shell's output (pty).
 * A pty is accepted only so that the message goes where the player looks: the terminal (stdout,
 * CR LF). `done` runs once the client has closed the channel, or at once for a refused request.
 */
export function refuseSessionChannel(accept: AcceptConnection<Session>, message: string, done: () => void): void {
  const channel = accept();
  let pty = false;
  let told = false;
  channel.on('error', () => {});
  channel.on('pty', (ok: MaybeReply) => {
    pty = true;
    ok?.();
  });
  channel.on('window-change', (ok: MaybeReply) => ok?.());
  for (const request of ['env', 'signal', 'auth-agent', 'x11'] as const) {
    channel.on(request, (_ok: MaybeReply, no: MaybeReply) => no?.());
  }
  const tell = (ok: AcceptConnection<ServerChannel> | undefined, no: RejectConnection | undefined) => {
    if (told || !ok) {
      no?.();
      return done();
    }
    told = true;
    const stream = ok();
    stream.on('error', () => {});
    // 'close' comes only once the readable side has ended too: whatever the client sends is dropped.
    stream.resume();
    stream.once('close', done);
    if (pty) stream.write(`wargate: ${message}\r\n`);
    else stream.stderr.write(`wargate: ${message}\n`);
    stream.exit(1);
    stream.end();
  };
  channel.on('shell', tell);
  channel.on('exec', tell);
  // sftp and scp -s: the OpenSSH client prints a subsystem's stderr as well.
  channel.on('subsystem', tell);
}
