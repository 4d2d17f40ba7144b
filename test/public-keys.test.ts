// Levels that accept an SSH key (issue 4, item 6): the demo's level4 has `sshKey: true`, its private
// key is generated once into the state dir and placed in level3's home as ~/level4.key. The key
// logs in as level4 only, from outside and from inside a level3 sandbox (over the gateway's port on
// the sandbox's loopback); a key query is answered without counting as a failed attempt.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { spawn } from 'node:child_process';
import ssh2 from 'ssh2';
import { collect, ssh, sshCommand, type Result } from './helpers/clients.js';
import type { TestGateway } from './helpers/gateway.js';
import { sharedGateway } from './helpers/shared-gateway.js';

let gw: TestGateway;
sharedGateway((g) => (gw = g));

const scratch = mkdtempSync(join(tmpdir(), 'wargate-keys-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** level4's private key as the gateway generated it (state dir, 0600), copied for the client. */
function level4Key(): string {
  const keys = JSON.parse(readFileSync(join(gw.stateDir, 'games/demo/keys.json'), 'utf8')) as Record<string, { private: string }>;
  const file = join(scratch, 'level4.key');
  writeFileSync(file, keys.level4.private, { mode: 0o600 });
  return file;
}

/** OpenSSH logging in with a key only (BatchMode: no password prompt at all). */
function sshWithKey(user: string, key: string, command: string): Promise<Result> {
  const argv = ['-p', String(gw.port), '-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', `${user}@127.0.0.1`, command];
  return collect(spawn('ssh', argv, { stdio: ['pipe', 'pipe', 'pipe'] }), '');
}

test('the generated key logs in as its level, from outside; not as another level', async () => {
  const key = level4Key();
  assert.equal(statSync(join(gw.stateDir, 'games/demo/keys.json')).mode & 0o777, 0o600, 'the private keys are root-only');
  const ok = await sshWithKey('level4', key, 'id -un; cat congratulations');
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^level4\nYou reached level4 of the wargate demo\.\n/);

  const other = await sshWithKey('level3', key, 'id -un');
  assert.equal(other.code, 255);
  assert.match(other.stderr, /Permission denied/);
});

test('from inside level3: ssh -i ~/level4.key to the gateway port on the loopback logs in as level4', async () => {
  const r = await ssh(gw, 'level3', [
    '--',
    `ls -l level4.key | cut -d' ' -f1,3; ssh -i ~/level4.key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes -p ${gw.port} level4@localhost 'id -un' </dev/null`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '-rw------- level3\nlevel4\n');
});

test('unknown keys are refused; offering more of them than the attempt limit still leaves the password its turn', async () => {
  const stranger = join(scratch, 'stranger');
  writeFileSync(stranger, ssh2.utils.generateKeyPairSync('ed25519').private, { mode: 0o600 });
  const refused = await sshWithKey('level0', stranger, 'id -un');
  assert.equal(refused.code, 255);
  assert.match(refused.stderr, /Permission denied/);
  // Seven unknown keys offered before the password: more than the 6 attempts a connection has,
  // but queries are not counted, so the password still gets its turn.
  const keys = Array.from({ length: 7 }, (_, i) => {
    const file = join(scratch, `stranger${i}`);
    writeFileSync(file, ssh2.utils.generateKeyPairSync('ed25519').private, { mode: 0o600 });
    return ['-i', file];
  }).flat();
  const { argv, env } = sshCommand(gw, 'level0', ['--', 'id -un']);
  const withPassword = argv.map((a) => (a === 'PubkeyAuthentication=no' ? 'PubkeyAuthentication=yes' : a));
  const r = await collect(spawn('ssh', [...keys, '-o', 'IdentitiesOnly=yes', ...withPassword], { env, stdio: ['pipe', 'pipe', 'pipe'] }), '');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'level0\n');
});
