// pwntools logs in and solves the demo game as a wargame site's level checks would (issue 4): from
// level0/level0, each level is a fresh ssh() login with pwntools' default connect-time probes, and
// each level's password is found with a different pwntools feature (download_data, process with
// cwd, run/system of the setuid program, process with argv), then verified by logging in with it,
// up to level4's congratulations. sharedGateway proves that none of the sandboxes left anything.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { collect, PY_CLIENTS, PYTHON, type Result } from './helpers/clients.js';
import type { TestGateway } from './helpers/gateway.js';
import { sharedGateway } from './helpers/shared-gateway.js';

let gw: TestGateway;
sharedGateway((g) => (gw = g));

const DEADLINE_MS = 50_000;
const LEVELS = ['level0', 'level1', 'level2', 'level3', 'level4'] as const;

interface LevelResult {
  level: string;
  /** The password this level revealed was accepted by the next level's login. */
  password_found: boolean;
  password: string | null;
  /** Login (which verifies the previous level's password) plus solving, in seconds. */
  seconds: number;
  /** What ssh()'s default connect-time probes found: an SFTP session, the home as cwd, a remote pid. */
  probes?: { sftp: boolean; cwd: string; pid: number | null };
  error?: string;
  usage?: string;
  usage_status?: number;
  found_files?: string[];
}

interface Campaign {
  levels: LevelResult[];
  final: { level: 'level4'; logged_in: boolean; congratulations: string | null; status?: number; seconds: number; error?: string } | null;
}

/** Runs test/clients/pwntools_campaign.py in a private HOME (pwntools caches there), under a watchdog. */
async function runCampaign(): Promise<Campaign> {
  const home = mkdtempSync(join(tmpdir(), 'wg-pwntools-home-'));
  try {
    writeFileSync(join(home, '.pwn.conf'), '[update]\ninterval=never\n'); // no update check over the network
    mkdirSync(join(home, 'tmp'));
    const env: NodeJS.ProcessEnv = {
      ...process.env, HOME: home, TMPDIR: join(home, 'tmp'), PWNLIB_NOTERM: '1', WG_PORT: String(gw.port),
    };
    for (const name of ['SSH_AUTH_SOCK', 'XDG_CACHE_HOME', 'XDG_CONFIG_HOME', 'XDG_DATA_HOME']) delete env[name];
    const child = spawn(PYTHON, [join(PY_CLIENTS, 'pwntools_campaign.py')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const watchdog = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS);
    let r: Result;
    try {
      r = await collect(child);
    } finally {
      clearTimeout(watchdog);
    }
    assert.equal(r.code, 0, `pwntools_campaign.py exited ${r.code} (${r.signal}); stderr:\n${r.stderr}\nstdout:\n${r.stdout}`);
    return JSON.parse(r.stdout) as Campaign;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

test('pwntools logs in and solves the demo levels: level0 -> level1 -> level2 -> level3 -> level4', { timeout: 60_000 }, async () => {
  const { levels, final } = await runCampaign();
  const report = JSON.stringify({ levels, final }, null, 1);

  for (const entry of levels) assert.equal(entry.error, undefined, `pwntools at ${entry.level}: ${entry.error}\n${report}`);
  assert.deepEqual(levels.map((l) => l.level), LEVELS.slice(0, 4), report);
  levels.forEach((entry, i) => {
    assert.ok(entry.password_found, `${entry.level}: the next level refused what it found\n${report}`);
    assert.equal(entry.password, gw.password(LEVELS[i + 1]), `${entry.level} found the wrong password`);
    assert.deepEqual({ ...entry.probes, pid: typeof entry.probes?.pid }, { sftp: true, cwd: `/home/${entry.level}`, pid: 'number' });
  });
  // level1's file is hidden from ls but not from find; level2's setuid program explains itself
  assert.deepEqual(levels[1].found_files, ['inhere/.nothing-to-see-here']);
  assert.match(levels[2].usage ?? '', /^usage: \.\/run-as-level3 COMMAND/, report);
  assert.equal(levels[2].usage_status, 1);

  assert.ok(final, report);
  assert.equal(final.error, undefined, `pwntools at level4: ${final.error}`);
  assert.ok(final.logged_in);
  assert.match(final.congratulations ?? '', /You reached level4 of the wargate demo\./, report);
  assert.equal(final.status, 0);

  const seconds = [...levels, final].map((l) => `${l.level} ${l.seconds.toFixed(2)} s`).join(', ');
  console.log(`pwntools campaign (each level: login + solve): ${seconds}`);
  // every login was a fresh sandbox of its own
  assert.equal(gw.events('sandbox.start').length, LEVELS.length);
});
