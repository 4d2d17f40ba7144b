// A per-connection challenge port beside the same handler under `socat TCP-LISTEN,fork` (no
// isolation at all: the floor).
//
//   node dist/bench/challenge.js [--seconds 10] [--concurrency 8] [--idle 200]
//
// The handler, in both cases: `/bin/sh -c 'echo banner; read line'` (dash; socat's SYSTEM: address): it
// greets, then waits.
// 1. Connections per second, sustained: CONCURRENCY clients in this process, each in a loop for
//    SECONDS: connect, read the banner line, close. Counted: completed rounds; connect -> banner
//    latency percentiles.
// 2. Memory per open idle connection: IDLE connections opened (each from its own loopback address,
//    below the port's caps), each waits for its banner; after 3 s, (a) host used memory (MemTotal -
//    MemAvailable) against a baseline taken before, divided by IDLE: everything, kernel included,
//    but noisy on a shared machine; (b) the Pss of every process descending from the server (socat,
//    or the gateway: holders, PID 1s, handlers) plus the server's own RSS growth, divided by IDLE.
//    Then all are closed.
// 3. (wargate only) SSH logins beside a flood: sequential interactive SSH logins (ssh2, pty + shell,
//    up to the prompt, then exit) on a quiet gateway, then while phase 1's churn runs: connect ->
//    prompt percentiles of both, to show what a challenge flood costs players of SSH levels.
// Figures only, nothing asserted on them; afterwards nothing may be left of the gateway's sandboxes.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestGateway, REPO } from '../test/helpers/gateway.js';
import { writeGame } from '../test/helpers/test-games.js';
import { readdirSync } from 'node:fs';
import { descendsFrom } from '../test/helpers/leftovers.js';
import { context, f1, f2, finish, intArg, sleep, smapsRollup, statusKb, summaryLine, usedKb } from './lib.js';
import { exitCleanly, loginShell } from './ssh-client.js';

const HANDLER = 'echo banner; read line';
const DECLARED_PORT = 7100;

/** Connects, waits for the first line; resolves with the open socket and the ms it took. */
function banner(port: number, localAddress?: string): Promise<{ socket: Socket; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      text += d;
      if (text.includes('\n')) resolve({ socket, ms: performance.now() - started });
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed before the banner: ${JSON.stringify(text)}`)));
  });
}

async function rate(port: number, seconds: number, concurrency: number): Promise<{ rounds: number; failures: number; latencies: number[] }> {
  const deadline = performance.now() + seconds * 1000;
  const latencies: number[] = [];
  let failures = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (performance.now() < deadline) {
        try {
          const { socket, ms } = await banner(port, `127.0.5.${worker + 1}`);
          latencies.push(ms);
          socket.removeAllListeners('close');
          socket.destroy();
        } catch {
          failures++;
        }
      }
    }),
  );
  return { rounds: latencies.length, failures, latencies };
}

/** kB: the Pss of every process descending from `root`. */
function descendantsPss(root: number): number {
  let kb = 0;
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (Number.isInteger(pid) && pid !== root && descendsFrom(pid, root)) kb += smapsRollup(pid)?.Pss ?? 0;
  }
  return kb;
}

/** kB per open idle connection: [host used memory, processes]. */
async function idleMemory(port: number, count: number, server: number): Promise<[number, number]> {
  await sleep(2000);
  const before = usedKb();
  const processesBefore = descendantsPss(server) + statusKb(server, 'VmRSS');
  const sockets: Socket[] = [];
  for (let i = 0; i < count; i++) sockets.push((await banner(port, `127.0.6.${i + 1}`)).socket);
  await sleep(3000);
  const after = usedKb();
  const processes = descendantsPss(server) + statusKb(server, 'VmRSS') - processesBefore;
  for (const s of sockets) {
    s.removeAllListeners('close');
    s.destroy();
  }
  return [(after - before) / count, processes / count];
}

/** Sequential SSH logins up to the prompt (then a clean exit) until `until` says stop; their connect -> prompt ms. */
async function sshLogins(sshPort: number, until: () => boolean): Promise<number[]> {
  const times: number[] = [];
  while (!until()) {
    const login = await loginShell({ port: sshPort, user: 'player0', password: 'player0', localAddress: '127.0.7.1' });
    times.push(login.promptMs);
    await exitCleanly(login);
  }
  return times;
}

async function measure(label: string, port: number, server: number, seconds: number, concurrency: number, idle: number, sshPort?: number): Promise<void> {
  if (sshPort !== undefined) {
    let n = 0;
    console.log(summaryLine('  SSH login, quiet', await sshLogins(sshPort, () => n++ >= 20)));
  }
  let churning = true;
  const during = sshPort === undefined ? Promise.resolve([]) : sshLogins(sshPort, () => !churning);
  const r = await rate(port, seconds, concurrency);
  churning = false;
  if (sshPort !== undefined) console.log(summaryLine('  SSH login, during the churn', await during));
  console.log(`${label}: ${f1(r.rounds / seconds)} connections/s (${r.rounds} in ${seconds} s, ${concurrency} at a time, ${r.failures} failed)`);
  console.log(summaryLine(`  ${label} connect -> banner`, r.latencies));
  await sleep(1000);
  const [host, processes] = await idleMemory(port, idle, server);
  console.log(`${label}: per open idle connection (${idle} open): ${f2(host / 1024)} MB host memory, ${f2(processes / 1024)} MB processes (Pss + server RSS growth)\n`);
}

const seconds = intArg('seconds', 10);
const concurrency = intArg('concurrency', 8);
const idle = intArg('idle', 200);
console.log(`# challenge benchmark: ${context(REPO)}\n`);

if (spawnSync('socat', ['-V']).status !== 0) {
  console.log('socat is missing (apt-get install socat): the floor is not measured');
} else {
  const port = 41000 + Math.floor(Math.random() * 1000);
  const socat = spawn('socat', [`TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,backlog=512`, `SYSTEM:${HANDLER}`], { stdio: 'ignore' });
  await sleep(500);
  await measure('socat TCP-LISTEN,fork', port, socat.pid!, seconds, concurrency, idle);
  socat.kill('SIGTERM');
  await once(socat, 'exit');
}

const gameDir = writeGame(
  mkdtempSync(join(tmpdir(), 'wargate-bench-challenge-')),
  `name: benchgame
hostname: bench
levels:
  - { user: player0, uid: 13500, password: player0 }
challenges:
  - { port: ${DECLARED_PORT}, mode: per-connection, level: player0, maxConnections: ${idle + concurrency + 10}, maxPerAddress: 100, command: "${HANDLER}" }
`,
);
const gw = await TestGateway.start({ config: { games: [gameDir] } });
let failed = false;
try {
  await measure('wargate per-connection', DECLARED_PORT + gw.challengePortOffset, gw.proc.pid!, seconds, concurrency, idle, gw.port);
  const starts = gw.events('challenge.start').map((e) => e.ms as number);
  console.log(summaryLine('wargate sandbox start (log)', starts));
} catch (err) {
  failed = true;
  console.log(`failed: ${(err as Error).message}`);
} finally {
  await finish(gw, failed);
  rmSync(gameDir, { recursive: true, force: true });
}
