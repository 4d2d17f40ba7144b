// The real SSH clients of the client matrix (test/client-matrix.test.ts) beyond what clients.ts
// drives: PuTTY's plink and pscp, dropbear's dbclient, asyncssh and pwntools (Debian's /usr/bin/python3),
// and ssh2's own client in-process. Each runs as in CI, with no terminal and nothing to answer, in a
// private HOME, under a watchdog: a client that hangs fails its test instead of stalling the run.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2, { type ClientChannel, type ExecOptions, type PseudoTtyOptions } from 'ssh2';
import { collect, PY_CLIENTS, PYTHON, type Result } from './clients.js';
import type { TestGateway } from './gateway.js';

/** How long any one client may run before the watchdog kills it (a login takes well under 1 s). */
const CLIENT_DEADLINE_MS = 30_000;

export interface ClientResult extends Result {
  /** The watchdog killed the client. */
  timedOut: boolean;
}

/**
 * A fresh HOME for clients: PuTTY, dropbear and pwntools keep host keys, caches and settings there.
 * pwntools is told never to look for updates (it would go to the network at import).
 */
export function createClientHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'wg-client-home-'));
  writeFileSync(join(home, '.pwn.conf'), '[update]\ninterval=never\n');
  mkdirSync(join(home, 'tmp'));
  return home;
}

/** The environment of a client: HOME (and TMPDIR, XDG dirs) in `home`, no agent, plus `extra`. */
export function clientEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, TMPDIR: join(home, 'tmp'), ...extra };
  for (const name of ['SSH_AUTH_SOCK', 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME', 'XDG_DATA_HOME', 'DISPLAY']) delete env[name];
  return env;
}

/** Runs `command argv` with `input` on stdin (then EOF), killed by the watchdog after `deadlineMs`. */
export async function runClient(
  command: string,
  argv: string[],
  env: NodeJS.ProcessEnv,
  { input = '', deadlineMs = CLIENT_DEADLINE_MS, cwd }: { input?: string | Buffer; deadlineMs?: number; cwd?: string } = {},
): Promise<ClientResult> {
  const child = spawn(command, argv, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let timedOut = false;
  const watchdog = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, deadlineMs);
  try {
    return { ...(await collect(child, input)), timedOut };
  } finally {
    clearTimeout(watchdog);
  }
}

/**
 * SHA256 fingerprints (as `ssh-keygen -l` and PuTTY's -hostkey write them) of the gateway's host
 * keys, read from its state dir: a client that accepts only these proves it talked to this gateway.
 */
export function hostKeyFingerprints(gw: TestGateway): string[] {
  const dir = join(gw.stateDir, 'host_keys');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.pub'))
    .map((f) => {
      const blob = Buffer.from(readFileSync(join(dir, f), 'utf8').trim().split(/\s+/)[1], 'base64');
      return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
    });
}

// ---------------------------------------------------------------------------------------------
// PuTTY (putty-tools)

/**
 * What PuTTY prints on stderr around the prompts of a keyboard-interactive login (since 0.77, so a
 * server cannot forge local messages). It prefers keyboard-interactive to password and answers the
 * single prompt with -pw.
 */
const PUTTY_KI_LINES = ['Keyboard-interactive authentication prompts from server:', 'End of keyboard-interactive prompts from server'];

/** stderr of a PuTTY tool without its keyboard-interactive markers. */
export function puttyStderr(stderr: string): string {
  return stderr
    .split(/(?<=\n)/)
    .map((l) => PUTTY_KI_LINES.reduce((line, marker) => line.replace(marker, ''), l))
    .filter((l) => l.trim() !== '')
    .join('');
}

export interface PuttyOptions {
  user: string;
  /** More options before the host, e.g. ['-t'] for plink or ['-scp'] for pscp. */
  options?: string[];
  input?: string;
  /** The only host keys accepted (-hostkey); by default the gateway's own. */
  hostKeys?: string[];
}

/** Options every PuTTY tool gets: never prompt (-batch), the password, the accepted host keys. */
function puttyArgv(gw: TestGateway, { user, options = [], hostKeys = hostKeyFingerprints(gw) }: PuttyOptions): string[] {
  return [
    '-batch', '-noagent', '-P', String(gw.port), '-l', user, '-pw', gw.password(user),
    ...hostKeys.flatMap((fp) => ['-hostkey', fp]),
    ...options,
  ];
}

/** `plink [options] 127.0.0.1 command`, with `input` on its stdin. */
export function plink(gw: TestGateway, home: string, command: string, opts: PuttyOptions): Promise<ClientResult> {
  return runClient('plink', [...puttyArgv(gw, opts), '127.0.0.1', command], clientEnv(home), { input: opts.input });
}

/** `pscp [options] from to` in `home`; a remote side is written `REMOTE:path` (127.0.0.1:path). */
export function pscp(gw: TestGateway, home: string, from: string, to: string, opts: PuttyOptions): Promise<ClientResult> {
  const remote = (p: string) => p.replace(/^REMOTE:/, '127.0.0.1:');
  return runClient('pscp', [...puttyArgv(gw, opts), remote(from), remote(to)], clientEnv(home), { cwd: home });
}

// ---------------------------------------------------------------------------------------------
// dropbear's client (dropbear-bin)

/** `dbclient -y [options] user@127.0.0.1 command`, the password in DROPBEAR_PASSWORD. */
export function dbclient(gw: TestGateway, home: string, user: string, options: string[], command: string, deadlineMs?: number): Promise<ClientResult> {
  const env = clientEnv(home, { DROPBEAR_PASSWORD: gw.password(user) });
  return runClient('dbclient', ['-y', '-p', String(gw.port), ...options, `${user}@127.0.0.1`, command], env, { deadlineMs });
}

// ---------------------------------------------------------------------------------------------
// Python clients (test/clients/matrix_*.py) run by Debian's /usr/bin/python3

/**
 * Runs test/clients/NAME.py, which reads WG_PORT, WG_USER, WG_PASSWORD and WG_ARGS (JSON) and
 * prints one JSON document. Its stderr is kept for the failure message.
 */
export async function pythonClient<T>(
  gw: TestGateway,
  home: string,
  name: string,
  user: string,
  args: Record<string, unknown> = {},
  extraEnv: Record<string, string> = {},
): Promise<{ doc: T; stderr: string }> {
  const env = clientEnv(home, {
    WG_PORT: String(gw.port), WG_USER: user, WG_PASSWORD: gw.password(user), WG_ARGS: JSON.stringify(args), ...extraEnv,
  });
  const r = await runClient(PYTHON, [join(PY_CLIENTS, `${name}.py`)], env, { deadlineMs: 50_000 });
  assert.ok(!r.timedOut && r.code === 0, `${name}.py ${r.timedOut ? 'hung' : `exited ${r.code}`}; stderr:\n${r.stderr}\nstdout:\n${r.stdout}`);
  return { doc: JSON.parse(r.stdout) as T, stderr: r.stderr };
}

// ---------------------------------------------------------------------------------------------
// ssh2's own client, in-process

export async function ssh2Login(gw: TestGateway, user: string): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve);
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port: gw.port, username: user, password: gw.password(user), readyTimeout: 20_000, strictVendor: false });
  });
  client.on('error', () => {});
  return client;
}

/** Ends the connection and waits until its socket is closed. */
export async function ssh2Logout(client: ssh2.Client): Promise<void> {
  const closed = new Promise<void>((resolve) => (client as unknown as NodeJS.EventEmitter).once('close', () => resolve()));
  client.end();
  await closed;
}

export interface Ssh2Run {
  stdout: string;
  stderr: string;
  /** The arguments of the channel's 'exit' event: [code], or [null, 'SIGNAME', coreDumped, description]. */
  exit: unknown[] | undefined;
}

/** Collects a channel until it closes; `onStdout` sees all stdout so far at each arrival (to type). */
function collectChannel(stream: ClientChannel, onStdout?: (stdout: string) => void): Promise<Ssh2Run> {
  return new Promise((resolve) => {
    const run: Ssh2Run = { stdout: '', stderr: '', exit: undefined };
    stream.on('data', (d: Buffer) => {
      run.stdout += d.toString('utf8');
      onStdout?.(run.stdout);
    });
    stream.stderr.on('data', (d: Buffer) => (run.stderr += d.toString('utf8')));
    stream.on('exit', (...args: unknown[]) => (run.exit = args));
    stream.on('close', () => resolve(run));
  });
}

export function ssh2Exec(client: ssh2.Client, command: string, options: ExecOptions = {}): Promise<Ssh2Run> {
  return new Promise((resolve, reject) => {
    client.exec(command, options, (err, stream) => {
      if (err) return reject(err);
      stream.end();
      resolve(collectChannel(stream));
    });
  });
}

/** A shell with a pty: waits for `prompt` in the output, then types `input`; resolves when it closes. */
export function ssh2Shell(client: ssh2.Client, pty: PseudoTtyOptions, prompt: string, input: string): Promise<Ssh2Run> {
  return new Promise((resolve, reject) => {
    client.shell(pty, (err, stream) => {
      if (err) return reject(err);
      let typed = false;
      resolve(
        collectChannel(stream, (stdout) => {
          if (!typed && stdout.includes(prompt)) {
            typed = true;
            stream.write(input);
          }
        }),
      );
    });
  });
}
