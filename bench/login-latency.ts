// Login latency of an interactive shell through the real gateway, as a player feels it.
//
//   node dist/bench/login-latency.js [--count 100] [--ssh-count 20] [--client-nodelay]
//
// 1. paramiko (one /usr/bin/python3 process, bench/paramiko_login.py): COUNT sequential logins,
//    each timed from the start of the TCP connect to the first byte on an interactive shell channel
//    (pty-req + shell), and to the shell prompt; then the connection is closed.
// 2. The OpenSSH client: SSH_COUNT sequential `ssh -tt ... level0@127.0.0.1 exit`, wall time of the
//    whole client process (fork/exec of ssh and of the askpass helper included).
// 3. The gateway's own view: `ms` of its 'sandbox.start' log events (spawn to the sandbox's ready line).
// Then the gateway is stopped and nothing of any sandbox may be left. Figures only: no timing asserts.
import { spawn } from 'node:child_process';
import { collect, sshCommand } from '../test/helpers/clients.js';
import { REPO, TestGateway } from '../test/helpers/gateway.js';
import { context, finish, intArg, paramikoLogins, summaryLine } from './lib.js';

/** Diagnostic: TCP_NODELAY on paramiko's socket (see bench/README.md, Nagle stalls). */
const clientNoDelay = process.argv.includes('--client-nodelay');

/** The client's side of TCP_NODELAY, if asked for (the gateway always sets its own). */
const nodelay = { WG_NODELAY: clientNoDelay ? '1' : '0' };

async function opensshLogins(gw: TestGateway, count: number): Promise<{ ms: number[]; failures: string[] }> {
  const ms: number[] = [];
  const failures: string[] = [];
  for (let i = 0; i < count; i++) {
    const { argv, env } = sshCommand(gw, 'level0', ['-tt', '--', 'exit']);
    const started = performance.now();
    const r = await collect(spawn('ssh', argv, { env, stdio: ['pipe', 'pipe', 'pipe'] }), '');
    const elapsed = performance.now() - started;
    if (r.code === 0) ms.push(elapsed);
    else failures.push(`#${i}: exit ${r.code ?? r.signal}: ${r.stderr.trim().slice(0, 200)}`);
  }
  return { ms, failures };
}

async function main(): Promise<void> {
  const count = intArg('count', 100);
  const sshCount = intArg('ssh-count', 20);
  const gw = await TestGateway.start();
  let failed = false;
  try {
    console.log(`wargate login latency — gateway pid ${gw.proc.pid} on 127.0.0.1:${gw.port}, ${new Date().toISOString()}`);
    console.log(context(REPO));

    // One throw-away login so the first measured one does not pay for cold caches alone.
    await paramikoLogins(gw, 1, nodelay);
    const warmSandboxes = gw.events('sandbox.start').length;

    const results = await paramikoLogins(gw, count, nodelay);
    const ok = results.filter((r) => !r.error);
    const errors = results.filter((r) => r.error);
    const paramikoSandboxes = gw.events('sandbox.start').slice(warmSandboxes);

    console.log(`\nparamiko 2.12, ${count} sequential interactive logins (pty + shell)${clientNoDelay ? ', client TCP_NODELAY' : ''}, ${errors.length} failed`);
    console.log(summaryLine('connect -> first byte', ok.map((r) => r.first)));
    console.log(summaryLine('connect -> shell prompt', ok.map((r) => r.prompt)));
    console.log('  breakdown (ms from connect start, p50):');
    for (const phase of ['tcp', 'kex', 'auth', 'open', 'pty', 'shell', 'first', 'prompt', 'total'] as const) {
      console.log('  ' + summaryLine(phase, ok.map((r) => r[phase])));
    }
    for (const e of errors.slice(0, 5)) console.log(`  failure #${e.i}: ${e.error}`);

    const sshStart = gw.events('sandbox.start').length;
    const { ms: sshMs, failures } = await opensshLogins(gw, sshCount);
    const sshSandboxes = gw.events('sandbox.start').slice(sshStart);
    console.log(`\nOpenSSH client, ${sshCount} sequential \`ssh -tt level0@127.0.0.1 exit\` (whole process wall time), ${failures.length} failed`);
    console.log(summaryLine('ssh -tt ... exit', sshMs));
    for (const f of failures.slice(0, 5)) console.log(`  failure ${f}`);

    console.log(`\ngateway log 'sandbox.start' ms (spawn of sandbox-init to its ready line)`);
    console.log(summaryLine('during paramiko logins', paramikoSandboxes.map((e) => e.ms as number)));
    console.log(summaryLine('during OpenSSH logins', sshSandboxes.map((e) => e.ms as number)));
    const otherErrors = gw.logs.filter((e) => typeof e.level === 'number' && (e.level as number) >= 50);
    if (otherErrors.length > 0) console.log(`gateway errors logged: ${otherErrors.length}, first: ${JSON.stringify(otherErrors[0])}`);
  } catch (err) {
    failed = true;
    console.error('benchmark failed:', err);
  } finally {
    await gw.stop();
    const ends = gw.events('session.end');
    console.log(`\ngateway log 'session.end' cleanupMs (sandbox destroy until every process is gone), ${ends.length} sessions`);
    console.log(summaryLine('cleanupMs', ends.map((e) => e.cleanupMs as number)));
    console.log(`  by reason: ${JSON.stringify(Object.fromEntries([...new Set(ends.map((e) => e.reason))].map((r) => [r, ends.filter((e) => e.reason === r).length])))}`);
    await finish(gw, failed);
  }
}

await main();
