// test/clients/session_driver.py from Node: paramiko logins held open at once, driven one JSON
// request per line (exec, reset, close, quit), each answered by one JSON line.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PY_CLIENTS, PYTHON } from './clients.js';
import type { TestGateway } from './gateway.js';

export interface ExecReply {
  ok: boolean;
  stdout: string;
  stderr: string;
  status: number;
  error?: string;
}

export class SessionDriver {
  private readonly replies: ((doc: Record<string, unknown>) => void)[] = [];
  private stderr = '';

  private constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (line) => this.replies.shift()?.(JSON.parse(line) as Record<string, unknown>));
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    proc.stdin!.on('error', () => {});
  }

  /** Logs in once per entry of `logins` (default: one level0 login) and waits until all are ready. */
  static async start(gw: TestGateway, logins = [{ user: 'level0', password: gw.password('level0') }]): Promise<SessionDriver> {
    const proc = spawn(PYTHON, [join(PY_CLIENTS, 'session_driver.py')], {
      env: { ...process.env, WG_PORT: String(gw.port), WG_USER: logins[0].user, WG_PASSWORD: logins[0].password, WG_ARGS: JSON.stringify({ logins }) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const driver = new SessionDriver(proc);
    const ready = await driver.next(30_000);
    assert.equal(ready.ready, true, `session_driver.py did not log in: ${JSON.stringify(ready)}`);
    return driver;
  }

  private next(timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`session_driver.py: no reply within ${timeoutMs} ms; stderr: ${this.stderr}`)), timeoutMs);
      const onExit = () => reject(new Error(`session_driver.py exited (${this.proc.exitCode}); stderr: ${this.stderr}`));
      this.proc.once('exit', onExit);
      this.replies.push((doc) => {
        clearTimeout(timer);
        this.proc.off('exit', onExit);
        resolve(doc);
      });
    });
  }

  /** Sends one request and returns its reply, which must say ok. */
  async request(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    const reply = this.next(30_000);
    this.proc.stdin!.write(JSON.stringify(req) + '\n');
    const r = await reply;
    assert.equal(r.ok, true, `${JSON.stringify(req)}: ${JSON.stringify(r)}`);
    return r;
  }

  /** Runs `cmd` over an exec channel of login number `login`. */
  async exec(login: number, cmd: string): Promise<ExecReply> {
    return (await this.request({ op: 'exec', login, cmd, timeout: 20 })) as unknown as ExecReply;
  }

  async quit(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = once(this.proc, 'exit');
    this.proc.stdin!.end(JSON.stringify({ op: 'quit' }) + '\n');
    await exited;
  }
}
