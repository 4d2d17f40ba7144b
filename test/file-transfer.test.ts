// File transfer end to end, with the OpenSSH tools and paramiko: SFTP served by the system
// sftp-server inside the sandbox (sftp in batch mode, paramiko SFTPClient), scp in both of OpenSSH
// 9's modes (SFTP, and the legacy protocol with -O: an exec of `scp -t`/`scp -f`), zlib@openssh.com
// compression (ssh -C, paramiko compress=True), the limit of session channels per connection
// (maxSessions) and subsystems the gateway does not offer. Files are compared byte for byte; where
// they landed is checked from inside the sandbox, over the same connection, and on the host.
import assert from 'node:assert/strict';
import { spawn, type SpawnOptions } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { collect, paramiko, spawnSsh, ssh, sshCommand, type Result } from './helpers/clients.js';
import { REPO, TestGateway } from './helpers/gateway.js';
import { assertNothingLeft } from './helpers/leftovers.js';
import { sharedGateway } from './helpers/shared-gateway.js';

const USER = 'level0';
const HOME = '/home/level0';
const UID = 12000;

// Local files: every byte value (in both orders, several times), and about 1 MB of random bytes.
const LOCAL = mkdtempSync(join(tmpdir(), 'wg-file-transfer-'));
const ASCENDING = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const ALL_BYTES = Buffer.concat(Array.from({ length: 4 }, () => [ASCENDING, Buffer.from(ASCENDING).reverse()]).flat());
const BIG = randomBytes(1_000_003);
const ALL_PATH = join(LOCAL, 'all-bytes.bin');
const BIG_PATH = join(LOCAL, 'big.bin');
writeFileSync(ALL_PATH, ALL_BYTES);
writeFileSync(BIG_PATH, BIG);
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

// A second game whose levels' shells cannot run the SFTP server (nor anything else).
const NO_SHELL_GAME = join(LOCAL, 'no-shell-game');
const NO_SHELL_LEVELS = { nologin0: '/usr/sbin/nologin', false0: '/bin/false' };
mkdirSync(NO_SHELL_GAME);
writeFileSync(
  join(NO_SHELL_GAME, 'game.yaml'),
  ['name: noshell', 'hostname: noshell', 'levels:']
    .concat(Object.entries(NO_SHELL_LEVELS).flatMap(([user, shell], i) => [`  - user: ${user}`, `    uid: ${12100 + i}`, `    password: ${user}`, `    shell: ${shell}`]))
    .join('\n') + '\n',
);

let gw: TestGateway;
sharedGateway((g) => (gw = g), { config: { games: [join(REPO, 'games/demo'), NO_SHELL_GAME] } });
after(() => rmSync(LOCAL, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// Helpers

/** What every OpenSSH tool here is given (ssh, scp and sftp alike), as clients.ts gives ssh. */
function options(logLevel = 'ERROR'): string[] {
  return [
    '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', `LogLevel=${logLevel}`,
    '-o', 'PubkeyAuthentication=no', '-o', 'BatchMode=no', '-o', 'NumberOfPasswordPrompts=1',
  ];
}

/** Runs `tool args` (scp or sftp: their port flag is -P) with the password of `user` on SSH_ASKPASS. */
async function run(tool: 'scp' | 'sftp', args: string[], { user = USER, password = gw.password(user), cwd = LOCAL } = {}): Promise<Result> {
  const { env } = sshCommand(gw, user, [], password);
  const spawnOptions: SpawnOptions = { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] };
  return collect(spawn(tool, ['-P', String(gw.port), ...options(), ...args], spawnOptions), '');
}

/** sftp -b with `commands` as the batch file (sftp stops at the first that fails). */
async function sftpBatch(commands: string[], { user = USER, password = gw.password(user), mux = [] as string[] } = {}): Promise<Result> {
  const batch = join(LOCAL, `batch-${randomBytes(4).toString('hex')}`);
  writeFileSync(batch, commands.join('\n') + '\n');
  try {
    return await run('sftp', [...mux, '-b', batch, `${user}@127.0.0.1`], { user, password });
  } finally {
    rmSync(batch, { force: true });
  }
}

/**
 * Runs `fn` while one OpenSSH connection is held open as a ControlMaster: every ssh, scp and sftp
 * given `mux` (its options) goes over that connection, and so into one sandbox.
 */
async function withConnection<T>(fn: (mux: string[]) => Promise<T>): Promise<T> {
  const control = join(LOCAL, `mux-${randomBytes(4).toString('hex')}`);
  const master = spawnSsh(gw, USER, ['-M', '-N', '-o', `ControlPath=${control}`]);
  const ended = collect(master);
  try {
    const deadline = Date.now() + 20_000;
    while (!existsSync(control)) {
      if (Date.now() > deadline || master.exitCode !== null) {
        master.kill('SIGTERM');
        throw new Error(`the master connection did not come up: ${JSON.stringify(await ended)}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return await fn(['-o', `ControlPath=${control}`, '-o', 'ControlMaster=no']);
  } finally {
    master.kill('SIGTERM');
    await ended;
  }
}

/** Paths on the host named `name`: the level's home there, and anywhere in the gateway's state dir. */
function onHost(name: string): string[] {
  const found = [join(HOME, name)].filter((p) => existsSync(p));
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === name) found.push(join(dir, entry.name));
      if (entry.isDirectory()) walk(join(dir, entry.name));
    }
  };
  walk(gw.stateDir);
  return found;
}

/** A stack trace in what a client printed (the gateway must never show one). */
const STACK = /\n\s+at .+:\d+:\d+/;

/** Session ends logged so far (to wait for one connection's sandbox to be gone). */
const sessionEnds = () => gw.events('session.end').length;
async function waitForSessionEnds(count: number): Promise<void> {
  await gw.waitFor(() => sessionEnds() >= count, 10_000);
}

// ---------------------------------------------------------------------------------------------

describe('OpenSSH sftp in batch mode', () => {
  test('put, mkdir, ls, get, rm and rmdir in the home of the sandbox; files are the level user\'s, contents byte for byte', async () => {
    rmSync(join(LOCAL, 'big.back'), { force: true });
    rmSync(join(LOCAL, 'all.back'), { force: true });
    const r = await sftpBatch([
      'pwd',
      'put big.bin sftp-big.bin',
      'put all-bytes.bin sftp-all.bin',
      'mkdir made',
      'put all-bytes.bin made/inner.bin',
      'ls -l sftp-big.bin',
      'ls -l sftp-all.bin',
      'ls -l made/inner.bin',
      'get sftp-big.bin big.back',
      'get sftp-all.bin all.back',
      'rm made/inner.bin',
      'rmdir made',
      'rm sftp-big.bin',
      'ls -1',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.ok(r.stdout.includes(`Remote working directory: ${HOME}\n`), r.stdout);
    const listed = r.stdout.split('\n').filter((l) => /^-[-rwx]{9}/.test(l)).map((l) => l.split(/\s+/));
    assert.deepEqual(
      listed.map((f) => [f[2], f[3], f[4], f.at(-1)]),
      [['level0', 'level0', `${BIG.length}`, 'sftp-big.bin'], ['level0', 'level0', `${ALL_BYTES.length}`, 'sftp-all.bin'], ['level0', 'level0', `${ALL_BYTES.length}`, 'made/inner.bin']],
    );
    assert.ok(readFileSync(join(LOCAL, 'big.back')).equals(BIG), 'the 1 MB file came back intact');
    assert.ok(readFileSync(join(LOCAL, 'all.back')).equals(ALL_BYTES), 'every byte value came back intact');
    const lastLs = r.stdout.slice(r.stdout.lastIndexOf('sftp> ls -1\n') + 'sftp> ls -1\n'.length).split('\n').filter(Boolean);
    assert.deepEqual(lastLs.sort(), ['readme', 'sftp-all.bin'], 'rm and rmdir removed what they named');
  });

  test('uploads outside the writable areas fail cleanly: /usr is read-only, / and /etc are root\'s', async () => {
    for (const target of ['/usr/evil.bin', '/evil.bin', '/etc/evil.bin']) {
      const r = await sftpBatch([`put all-bytes.bin ${target}`]);
      assert.equal(r.code, 1, `${target}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^dest open "${target}": (Failure|Permission denied)\\r?\\n$`));
    }
  });

  test('an upload lands in the sandbox (seen by an exec on the same connection), not on the host', async () => {
    const name = `sftp-${randomBytes(4).toString('hex')}.bin`;
    const inside = await withConnection(async (mux) => {
      const put = await sftpBatch([`put big.bin ${name}`], { mux });
      assert.equal(put.code, 0, put.stderr);
      return ssh(gw, USER, [...mux, '--', `stat -c '%U %G %s %n' ${name}; sha256sum ${name}; df --output=fstype ~ | tail -1`]);
    });
    assert.equal(inside.stdout, `level0 level0 ${BIG.length} ${name}\n${sha256(BIG)}  ${name}\noverlay\n`);
    assert.deepEqual(onHost(name), []);
  });
});

for (const [mode, flags] of [
  ['SFTP protocol (OpenSSH 9 default)', []],
  ['legacy protocol (scp -O: exec of scp -t / scp -f in the sandbox)', ['-O']],
] as const) {
  describe(`scp, ${mode}`, () => {
    test('uploads and downloads every byte value and 1 MB intact; the files are the level user\'s, in the sandbox, not on the host', async () => {
      const tag = `${flags.length ? 'legacy' : 'sftp'}-${randomBytes(4).toString('hex')}`;
      const [all, big] = [`scp-${tag}-all.bin`, `scp-${tag}-big.bin`];
      const down = join(LOCAL, `down-${tag}`);
      mkdirSync(down);
      const inside = await withConnection(async (mux) => {
        const up = await run('scp', [...flags, ...mux, 'all-bytes.bin', `${USER}@127.0.0.1:${all}`]);
        assert.deepEqual({ code: up.code, stderr: up.stderr }, { code: 0, stderr: '' });
        const upBig = await run('scp', [...flags, ...mux, 'big.bin', `${USER}@127.0.0.1:${HOME}/${big}`]);
        assert.deepEqual({ code: upBig.code, stderr: upBig.stderr }, { code: 0, stderr: '' });
        const get = await run('scp', [...flags, ...mux, `${USER}@127.0.0.1:${all}`, `${USER}@127.0.0.1:${big}`, down]);
        assert.deepEqual({ code: get.code, stderr: get.stderr }, { code: 0, stderr: '' });
        return ssh(gw, USER, [...mux, '--', `stat -c '%U %G %a %s' ${all} ${big}; sha256sum ${all} ${big}`]);
      });
      assert.equal(
        inside.stdout,
        `level0 level0 644 ${ALL_BYTES.length}\nlevel0 level0 644 ${BIG.length}\n${sha256(ALL_BYTES)}  ${all}\n${sha256(BIG)}  ${big}\n`,
      );
      assert.ok(readFileSync(join(down, all)).equals(ALL_BYTES), 'every byte value came back intact');
      assert.ok(readFileSync(join(down, big)).equals(BIG), 'the 1 MB file came back intact');
      assert.deepEqual([...onHost(all), ...onHost(big)], []);
    });

    test('an upload into /usr fails cleanly with exit status 1', async () => {
      const r = await run('scp', [...flags, 'all-bytes.bin', `${USER}@127.0.0.1:/usr/evil.bin`]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, flags.length ? /^scp: \/usr\/evil\.bin: Read-only file system\n$/ : /dest open "\/usr\/evil\.bin": Failure/);
      assert.doesNotMatch(r.stderr, STACK);
    });

    test('a download of a file the level cannot read fails cleanly', async () => {
      const r = await run('scp', [...flags, `${USER}@127.0.0.1:/etc/demo_pass/level1`, join(LOCAL, 'stolen')]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /Permission denied/);
      assert.equal(existsSync(join(LOCAL, 'stolen')), false);
    });
  });
}

describe('paramiko SFTP', () => {
  interface SftpRun {
    compression: [string, string];
    home: string;
    listdir: string[];
    stat: Record<string, { size: number; uid: number; gid: number; mode: string }>;
    inDir: string[];
    afterRemove: string[];
    forbidden: { errno: number | null; text: string } | null;
    check: { stdout: string; stderr: string; status: number | null };
  }
  const sftpRun = (tag: string, extra: Record<string, unknown>) => {
    const back = [join(LOCAL, `${tag}-all.back`), join(LOCAL, `${tag}-big.back`)];
    const args = {
      uploads: [[ALL_PATH, 'pm-all.bin'], [BIG_PATH, 'pm-big.bin']],
      downloads: [['pm-all.bin', back[0]], ['pm-big.bin', back[1]]],
      forbidden: '/usr/evil.bin',
      check: 'pwd; stat -c "%U %G %s %n" pm-all.bin pm-big.bin; sha256sum pm-all.bin pm-big.bin',
      ...extra,
    };
    return { back, result: paramiko<SftpRun>(gw, 'file_transfer_sftp', USER, args) };
  };
  const expectTransfers = (r: SftpRun, back: string[]) => {
    assert.equal(r.home, HOME);
    assert.deepEqual(r.listdir, ['.bash_logout', '.bashrc', '.profile', 'pm-all.bin', 'pm-big.bin', 'readme']);
    assert.deepEqual(r.stat, {
      'pm-all.bin': { size: ALL_BYTES.length, uid: UID, gid: UID, mode: '0o644' },
      'pm-big.bin': { size: BIG.length, uid: UID, gid: UID, mode: '0o644' },
    });
    assert.deepEqual(r.inDir, ['inner']);
    assert.deepEqual(r.afterRemove, r.listdir, 'remove and rmdir took away what mkdir and put made');
    assert.ok(readFileSync(back[0]).equals(ALL_BYTES), 'every byte value came back intact');
    assert.ok(readFileSync(back[1]).equals(BIG), 'the 1 MB file came back intact');
    assert.deepEqual(r.forbidden, { errno: null, text: 'Failure' }, 'a put into the read-only /usr fails');
    assert.deepEqual(r.check, {
      stdout: `${HOME}\nlevel0 level0 ${ALL_BYTES.length} pm-all.bin\nlevel0 level0 ${BIG.length} pm-big.bin\n${sha256(ALL_BYTES)}  pm-all.bin\n${sha256(BIG)}  pm-big.bin\n`,
      stderr: '',
      status: 0,
    });
    assert.deepEqual([...onHost('pm-all.bin'), ...onHost('pm-big.bin')], []);
  };

  test('put, listdir, stat, mkdir, remove, rmdir, get; an exec on the same connection sees the files in the home', async () => {
    const { back, result } = sftpRun('plain', {});
    const r = await result;
    assert.deepEqual(r.compression, ['none', 'none']);
    expectTransfers(r, back);
  });

  test('compress=True (as pwntools): zlib@openssh.com both ways; a connection dropped while SFTP and a command run does not take the gateway down', async () => {
    const ends = sessionEnds();
    const { back, result } = sftpRun('zlib', { compress: true, leaveOpen: true });
    const r = await result;
    assert.deepEqual(r.compression, ['zlib@openssh.com', 'zlib@openssh.com']);
    expectTransfers(r, back);
    await waitForSessionEnds(ends + 1);
    // The gateway then writes the command's "late" line and exit status to the dead connection.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(gw.proc.exitCode, null, 'the gateway is still running');
    const after = await ssh(gw, USER, ['--', 'echo still-serving']);
    assert.equal(after.stdout, 'still-serving\n');
    await assertNothingLeft(gw, 2000);
  });
});

describe('compression with the OpenSSH client (ssh -C)', () => {
  /** ssh -C with debug output on stderr (what was negotiated): `extra` options, then the command. */
  const sshCompressed = (extra: string[], command: string, input: string | Buffer = '') => {
    const { env } = sshCommand(gw, USER, []);
    const argv = ['-p', String(gw.port), ...options('DEBUG1'), '-C', ...extra, `${USER}@127.0.0.1`, command];
    return collect(spawn('ssh', argv, { env, stdio: ['pipe', 'pipe', 'pipe'] }), input);
  };

  test('zlib@openssh.com is negotiated both ways and exec output is intact', async () => {
    const expected = Array.from({ length: 100_000 }, (_, i) => `${i + 1}\n`).join('');
    const r = await sshCompressed([], 'seq 1 100000; echo to-err >&2');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, expected);
    assert.match(r.stderr, /kex: server->client cipher: \S+ MAC: \S+ compression: zlib@openssh\.com/);
    assert.match(r.stderr, /kex: client->server cipher: \S+ MAC: \S+ compression: zlib@openssh\.com/);
    assert.match(r.stderr, /^to-err\r?$/m);
  });

  test('1 MB in and 1.3 MB out with a rekey every 256 KB: compression carries across key exchanges', async () => {
    const expected = Array.from({ length: 200_000 }, (_, i) => `${i + 1}\n`).join('');
    const r = await sshCompressed(['-o', 'RekeyLimit=256K'], 'sha256sum; seq 1 200000', BIG);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${sha256(BIG)}  -\n${expected}`);
    const kexinits = r.stderr.match(/SSH2_MSG_KEXINIT sent/g) ?? [];
    assert.ok(kexinits.length >= 3, `only ${kexinits.length} key exchanges`);
  });

  test('a client killed while its command still writes does not take the gateway down', async () => {
    const ends = sessionEnds();
    const child = spawnSsh(gw, USER, ['-C', '--', 'echo started; sleep 0.3; seq 1 1000; sleep 30']);
    const done = collect(child);
    await new Promise<void>((resolve) => child.stdout!.on('data', (d: string) => d.includes('started') && resolve()));
    child.kill('SIGKILL');
    await done;
    await waitForSessionEnds(ends + 1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(gw.proc.exitCode, null, 'the gateway is still running');
    assert.equal((await ssh(gw, USER, ['-C', '--', 'echo still-serving'])).stdout, 'still-serving\n');
    await assertNothingLeft(gw, 2000);
  });
});

describe('session channels per connection (maxSessions)', () => {
  test('paramiko: 10 channels open, the 11th is refused, the connection and its channels go on; closing one frees a slot', async () => {
    const r = await paramiko<{
      opened: number;
      refused: { code: number; text: string } | null;
      echo: string;
      closedStatus: number | null;
      replaced: string;
      refusedAgain: { code: number; text: string } | null;
    }>(gw, 'file_transfer_limit', USER, { max: 10 });
    assert.equal(r.opened, 10);
    // ssh2 answers a refused open with reason 2 (connect failed); sshd with 1 (prohibited).
    assert.deepEqual(r.refused, { code: 2, text: 'Connect failed' });
    assert.equal(r.echo, 'still here\n', 'an open channel still works after the refusal');
    assert.equal(r.closedStatus, 0);
    assert.equal(r.replaced, 'replaced\n', 'a channel opens once one was closed');
    assert.deepEqual(r.refusedAgain, { code: 2, text: 'Connect failed' }, 'the limit holds again at 10 open');
    const refusals = gw.events('channel.refused');
    assert.ok(refusals.length >= 2 && refusals.every((e) => e.reason === 'max-sessions' && e.maxSessions === 10), JSON.stringify(refusals));
  });

  test('maxSessions: 3 in the config: 3 channels open, the 4th is refused; closing one frees a slot', async () => {
    const small = await TestGateway.start({ config: { maxSessions: 3 } });
    try {
      const r = await paramiko<{ opened: number; refused: unknown; echo: string; replaced: string; refusedAgain: unknown }>(small, 'file_transfer_limit', USER, { max: 3 });
      assert.equal(r.opened, 3);
      assert.deepEqual(r.refused, { code: 2, text: 'Connect failed' });
      assert.equal(r.echo, 'still here\n');
      assert.equal(r.replaced, 'replaced\n');
      assert.deepEqual(r.refusedAgain, { code: 2, text: 'Connect failed' }, 'the limit holds again at 3 open');
      await small.waitFor((e) => e.event === 'session.end');
      const refusals = small.events('channel.refused');
      assert.ok(refusals.length === 2 && refusals.every((e) => e.reason === 'max-sessions' && e.maxSessions === 3), JSON.stringify(refusals));
    } finally {
      await small.stop();
      try {
        await assertNothingLeft(small);
      } finally {
        small.cleanup();
      }
    }
  });
});

describe('subsystems', () => {
  test('paramiko: an unknown subsystem is refused and the connection goes on; sftp after a pty-req gets no terminal in the way', async () => {
    const r = await paramiko<{ unknownRefused: boolean; activeAfter: boolean; ptySftp: boolean; exec: string }>(gw, 'file_transfer_subsystem', USER);
    assert.equal(r.unknownRefused, true);
    assert.equal(r.activeAfter, true);
    assert.equal(r.ptySftp, true, '\\r\\n, ^C, ^D and ^Z bytes made the round trip');
    assert.equal(r.exec, '3700\n');
  });

  test('OpenSSH: ssh -s with an unknown subsystem fails as against sshd', async () => {
    const r = await ssh(gw, USER, ['-s', '--', 'no-such-subsystem']);
    assert.equal(r.code, 255);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /subsystem request failed on channel 0/);
  });

  for (const [user, shell] of Object.entries(NO_SHELL_LEVELS)) {
    test(`a level whose shell is ${shell}: sftp and scp fail cleanly, the gateway logs no error`, async () => {
      const errorsBefore = gw.logs.filter((e) => (e.level as number) >= 50).length;
      const sftp = await sftpBatch(['ls'], { user, password: user });
      assert.notEqual(sftp.code, 0);
      assert.equal(sftp.stdout.includes('sftp> ls'), false, 'no command ran');
      const scp = await run('scp', ['all-bytes.bin', `${user}@127.0.0.1:x`], { user, password: user });
      assert.notEqual(scp.code, 0);
      const legacy = await run('scp', ['-O', 'all-bytes.bin', `${user}@127.0.0.1:x`], { user, password: user });
      assert.notEqual(legacy.code, 0);
      for (const r of [sftp, scp, legacy]) {
        assert.doesNotMatch(r.stderr, STACK);
        assert.doesNotMatch(r.stderr, /wargate:/, 'not a gateway failure');
      }
      assert.equal(gw.logs.filter((e) => (e.level as number) >= 50).length, errorsBefore);
    });
  }
});

test('every sandbox this file started is gone once its connection closed', async () => {
  // The games' daemon sandboxes (localhost services, challenge ports) live as long as the gateway.
  const started = () => gw.events('sandbox.start').filter((e) => e.purpose !== 'daemon').length;
  const deadline = Date.now() + 5000;
  while (gw.events('session.end').length < started() && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(gw.events('session.end').length, started());
  await assertNothingLeft(gw, 2000);
});
