// Real SSH clients for tests: the OpenSSH client (password through SSH_ASKPASS, no sshpass needed)
// and paramiko scripts run by Debian's /usr/bin/python3 (the python3 first on PATH may lack it).
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, type TestGateway } from './gateway.js';

export const PYTHON = '/usr/bin/python3';
export const PY_CLIENTS = join(REPO, 'test/clients');

let askpass: string | undefined;
function askpassScript(): string {
  if (!askpass) {
    askpass = join(mkdtempSync(join(tmpdir(), 'wg-askpass-')), 'askpass');
    writeFileSync(askpass, '#!/bin/sh\nprintf "%s\\n" "$WG_TEST_PASSWORD"\n');
    chmodSync(askpass, 0o700);
  }
  return askpass;
}

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export async function collect(child: ChildProcess, input?: string | Buffer): Promise<Result> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  if (child.stdin) {
    child.stdin.on('error', () => {});
    if (input !== undefined) child.stdin.end(input);
  }
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout, stderr };
}

/** argv and env for the OpenSSH client logging in as `user` to the test gateway. */
export function sshCommand(gw: TestGateway, user: string, args: string[], password = gw.password(user)) {
  const argv = [
    '-p', String(gw.port),
    '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
    '-o', 'PubkeyAuthentication=no', '-o', 'BatchMode=no', '-o', 'NumberOfPasswordPrompts=1',
    ...args.slice(0, args.indexOf('--') === -1 ? args.length : args.indexOf('--')),
    `${user}@127.0.0.1`,
    ...(args.includes('--') ? args.slice(args.indexOf('--') + 1) : []),
  ];
  const env = { ...process.env, SSH_ASKPASS: askpassScript(), SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0', WG_TEST_PASSWORD: password };
  return { argv, env };
}

/** Starts `ssh [options] user@gateway [-- command]`; options before `--`, the remote command after. */
export function spawnSsh(gw: TestGateway, user: string, args: string[], options: SpawnOptions = {}, password?: string): ChildProcess {
  const { argv, env } = sshCommand(gw, user, args, password);
  return spawn('ssh', argv, { env, stdio: ['pipe', 'pipe', 'pipe'], ...options });
}

export async function ssh(gw: TestGateway, user: string, args: string[], input?: string, password?: string): Promise<Result> {
  return collect(spawnSsh(gw, user, args, {}, password), input ?? '');
}

/** Runs test/clients/NAME.py with /usr/bin/python3; the script prints one JSON document. */
export async function paramiko<T = unknown>(gw: TestGateway, name: string, user: string, extra: Record<string, unknown> = {}): Promise<T> {
  const child = spawn(PYTHON, [join(PY_CLIENTS, `${name}.py`)], {
    env: { ...process.env, WG_PORT: String(gw.port), WG_USER: user, WG_PASSWORD: gw.password(user), WG_ARGS: JSON.stringify(extra) },
  });
  const r = await collect(child);
  if (r.code !== 0) throw new Error(`${name}.py exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
