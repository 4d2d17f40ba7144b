// The client matrix (issue 4): one test per real SSH client people use against wargame servers,
// each against a real gateway running the demo game, each checking what the client shows (output,
// exit codes, files) and that every sandbox it made is gone afterwards. OpenSSH and plain paramiko
// are covered at length by channels.test.ts; here: PuTTY's plink and pscp, dropbear's dbclient,
// asyncssh, ssh2's own client, and pwntools with its default connect-time probes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import type { TestGateway } from './helpers/gateway.js';
import { assertNothingLeft } from './helpers/leftovers.js';
import {
  createClientHome,
  dbclient,
  hostKeyFingerprints,
  plink,
  pscp,
  puttyStderr,
  pythonClient,
  ssh2Exec,
  ssh2Login,
  ssh2Logout,
  ssh2Shell,
} from './helpers/real-clients.js';
import { sharedGateway } from './helpers/shared-gateway.js';

const USER = 'level0';
const HOME = '/home/level0';
const PROMPT = 'level0@wargate-demo:~$ ';
const WELCOME = 'Welcome to the wargate demo game!';
const TTY = /^\/dev\/pts\/\d+$/;
/**
 * The sandboxes of this file get a small writable layer, so that an upload larger than it fails:
 * proof that uploaded bytes land in the sandbox (each login is a fresh sandbox, so a file uploaded
 * by one pscp cannot be read back by the next).
 */
const WRITABLE_MB = 8;

let gw: TestGateway;
sharedGateway((g) => (gw = g), { config: { sandbox: { writableSize: `${WRITABLE_MB}m` } } });

/** HOME (and TMPDIR) of every client: their host key stores, caches and settings go there. */
let home: string;
before(() => (home = createClientHome()));
after(() => rmSync(home, { recursive: true, force: true }));

/** The demo game's ~/readme of level0, as the game definition makes it. */
const readme = () => `Well done. The password for level1 is:\n${gw.password('level1')}\n`;

/** The lines a terminal shows: split at CRLF, a bare CR returns to column 0, escapes removed. */
function screenLines(output: string): string[] {
  return output
    .split('\r\n')
    .map((l) => l.slice(l.lastIndexOf('\r') + 1))
    .map((l) => l.replace(/\x1b\[[0-9;?>=]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[=>]/g, ''));
}

describe('client matrix', () => {
  /** Every session any client opened has ended, and nothing of its sandbox is left. */
  afterEach(async () => {
    for (const start of gw.events('session.start')) {
      await gw.waitFor((e) => e.event === 'session.end' && e.session === start.session, 5000);
    }
    await assertNothingLeft(gw, 3000);
  });

  test('PuTTY plink (-batch -pw, -hostkey from the state dir): exec with and without -t, exit codes, a shell on stdin', async () => {
    const plain = await plink(gw, home, 'tty; echo "$(whoami) $PWD"; head -1 readme; echo to-err >&2; exit 7', { user: USER });
    assert.equal(plain.timedOut, false, plain.stderr);
    assert.equal(plain.stdout, `not a tty\nlevel0 ${HOME}\nWell done. The password for level1 is:\n`);
    assert.equal(puttyStderr(plain.stderr), 'to-err\n');
    assert.equal(plain.code, 7);

    const pty = await plink(gw, home, 'tty; echo $TERM; stty size; echo to-err >&2; exit 5', { user: USER, options: ['-t'] });
    assert.equal(pty.timedOut, false, pty.stderr);
    const lines = pty.stdout.split('\r\n');
    assert.match(lines[0], TTY, pty.stdout);
    assert.deepEqual(lines.slice(1), ['xterm', '24 80', 'to-err', ''], 'PuTTY\'s terminal type and size; stderr on the terminal');
    assert.equal(puttyStderr(pty.stderr), '');
    assert.equal(pty.code, 5);

    // The -hostkey check is real: with only another key allowed, batch mode gives up before logging in.
    const otherKey = `SHA256:${Buffer.alloc(32).toString('base64').replace(/=+$/, '')}`;
    const refused = await plink(gw, home, 'echo must-not-run', { user: USER, hostKeys: [otherKey] });
    assert.equal(refused.stdout, '');
    assert.equal(refused.code, 1);

    // No command, no terminal on stdin: plink asks for a shell without a pty and pipes stdin to it.
    const shell = await plink(gw, home, '', { user: USER, options: ['-T'], input: 'tty; echo $((6*7)); exit 3\n' });
    assert.equal(shell.stdout, 'not a tty\n42\n');
    assert.equal(shell.code, 3);
  });

  test('pscp: download and upload over SFTP (the sftp subsystem, no fallback) and over legacy scp (-scp)', async () => {
    writeFileSync(join(home, 'small.bin'), randomBytes(100_000));
    writeFileSync(join(home, 'too-big.bin'), Buffer.alloc((WRITABLE_MB + 2) * 1024 * 1024, 0x5a));

    // What each protocol reports for a full disk: SFTP has no status code for it (sftp-server sends FAILURE).
    const noSpace: Record<string, RegExp> = { '-sftp': /error while writing: failure/, '-scp': /No space left on device/ };
    for (const protocol of ['-sftp', '-scp']) {
      const down = await pscp(gw, home, 'REMOTE:readme', `readme${protocol}`, { user: USER, options: [protocol, '-v'] });
      assert.equal(down.code, 0, `${protocol}: ${down.stderr}`);
      assert.equal(readFileSync(join(home, `readme${protocol}`), 'utf8'), readme(), `${protocol} download`);
      if (protocol === '-sftp') {
        // PuTTY falls back to exec'ing sftp-server itself when the subsystem is refused: it must not need to.
        assert.doesNotMatch(down.stderr, /Primary command failed; attempting fallback/, 'the sftp subsystem request was refused');
        assert.match(down.stderr, /Using SFTP/);
      } else {
        assert.match(down.stderr, /Using SCP1/);
      }

      const up = await pscp(gw, home, 'small.bin', `REMOTE:${HOME}/small.bin`, { user: USER, options: [protocol] });
      assert.equal(up.code, 0, `${protocol} upload: ${up.stderr}`);
      const denied = await pscp(gw, home, 'small.bin', 'REMOTE:/etc/small.bin', { user: USER, options: [protocol] });
      assert.equal(denied.code, 1, `${protocol}: an upload to /etc must fail`);
      assert.match(puttyStderr(denied.stderr), /permission denied/i, `${protocol}: ${denied.stderr}`);
      // Larger than the sandbox's writable layer: the bytes really go into the sandbox's tmpfs.
      const tooBig = await pscp(gw, home, 'too-big.bin', 'REMOTE:/tmp/too-big.bin', { user: USER, options: [protocol] });
      assert.equal(tooBig.code, 1, `${protocol}: ${WRITABLE_MB + 2} MB must not fit in ${WRITABLE_MB} MB`);
      assert.match(puttyStderr(tooBig.stderr), noSpace[protocol], `${protocol}: ${tooBig.stderr}`);
    }
  });

  // dbclient sends its first key exchange packet as a guess; ssh2 1.17 threw away even a right
  // guess and left dbclient waiting forever (fixed by patches/ssh2+1.17.0.patch).
  test(
    'dropbear dbclient (-y, DROPBEAR_PASSWORD): exec, the gateway\'s host key, exit code',
    async () => {
      // (dbclient -t needs a terminal on its own stdin, which CI has not: "Failed to set raw TTY mode".)
      const r = await dbclient(gw, home, USER, [], 'tty; whoami; cat readme; echo to-err >&2; exit 6', 15_000);
      assert.equal(r.timedOut, false, 'dbclient hung');
      assert.equal(r.stdout, `not a tty\nlevel0\n${readme()}`);
      assert.match(r.stderr, /^to-err$/m);
      const accepted = /\(ssh-ed25519 fingerprint (SHA256:\S+)\)/.exec(r.stderr)?.[1];
      assert.ok(accepted && hostKeyFingerprints(gw).includes(accepted), `dbclient accepted another key: ${r.stderr}`);
      assert.equal(r.code, 6);
    },
  );

  test('asyncssh: exec with env requests, and an interactive shell with a pty that shows the prompt', async () => {
    interface AsyncsshRun {
      exec: { stdout: string; stderr: string; status: number | null };
      shell: { untilPrompt: string; sawPrompt: boolean; afterFirst: string; sawFirstOutput: boolean; rest: string; status: number | null };
    }
    const { doc } = await pythonClient<AsyncsshRun>(gw, home, 'matrix_asyncssh', USER, {
      command: 'echo "$(whoami) LANG=$LANG FOO=${FOO-unset}"; tty; echo to-err >&2; exit 3',
      env: { LANG: 'C.UTF-8', FOO: 'bar' },
      term: 'xterm',
      cols: 90,
      rows: 25,
      prompt: PROMPT,
      // typed-ahead text is echoed at once: type the exit only once the first command has finished
      first: 'echo MARK$((6*7)); tty; stty size; echo END$((1+1))\n',
      firstOutput: 'END2',
      rest: 'exit 4\n',
    });
    assert.deepEqual(doc.exec, { stdout: 'level0 LANG=C.UTF-8 FOO=unset\nnot a tty\n', stderr: 'to-err\n', status: 3 });

    assert.ok(doc.shell.sawPrompt, `no prompt; the shell printed ${JSON.stringify(doc.shell.untilPrompt)}`);
    assert.equal(screenLines(doc.shell.untilPrompt)[0], WELCOME);
    assert.ok(doc.shell.sawFirstOutput, `no output of the typed command: ${JSON.stringify(doc.shell.afterFirst)}`);
    const lines = screenLines(doc.shell.afterFirst + doc.shell.rest);
    const marker = lines.indexOf('MARK42');
    assert.ok(marker > 0, JSON.stringify(lines));
    assert.match(lines[marker + 1], TTY);
    assert.deepEqual(lines.slice(marker + 2, marker + 4), ['25 90', 'END2']);
    assert.equal(doc.shell.status, 4);
  });

  test('ssh2 client (in-process): exec with env, a shell with a pty, exit codes', async () => {
    const client = await ssh2Login(gw, USER);
    try {
      const exec = await ssh2Exec(client, 'echo "$(whoami) L=$LANG X=$LC_X F=${FOO-unset}"; echo to-err >&2; exit 9', {
        env: { LANG: 'C.UTF-8', LC_X: 'y', FOO: 'bar' },
      });
      assert.deepEqual(exec, { stdout: 'level0 L=C.UTF-8 X=y F=unset\n', stderr: 'to-err\n', exit: [9] });

      const shell = await ssh2Shell(client, { term: 'vt100', cols: 100, rows: 30 }, PROMPT, 'tty; echo $TERM; stty size; exit 4\n');
      const lines = screenLines(shell.stdout);
      assert.equal(lines[0], WELCOME);
      const typed = lines.findIndex((l) => l.endsWith('$ tty; echo $TERM; stty size; exit 4'));
      assert.ok(typed > 0, JSON.stringify(shell.stdout));
      assert.match(lines[typed + 1], TTY);
      assert.deepEqual(lines.slice(typed + 2), ['vt100', '30 100', 'logout', '']);
      assert.deepEqual(shell.exit, [4]);
    } finally {
      await ssh2Logout(client);
    }
  });

  test('pwntools: ssh() with its connect-time probes, shell(), run(), system(), process(argv, env, cwd), upload/download of data, files and directories, remote(), listen()', async () => {
    /** Each part of matrix_pwntools.py: what it returned, or the exception it raised. */
    interface PwntoolsRun {
      connect: Record<string, unknown>;
      shell: { beforePrompt: string; echoed: string; after: string; rest: string; status: number };
      run: unknown;
      system: unknown;
      process: Record<string, unknown>;
      processStdin: unknown;
      files: unknown;
      fileAndDir: unknown;
      remote: unknown;
      listen: { port: number; received: string };
      warnings: string[];
    }
    const upload = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const uploadFile = randomBytes(20_000); // hex in WG_ARGS: an environment string holds at most 128 KiB
    const args = { marker: 'MARK', upload: upload.toString('hex'), uploadFile: uploadFile.toString('hex') };
    const { doc } = await pythonClient<PwntoolsRun>(gw, home, 'matrix_pwntools', USER, args, {
      PWNLIB_NOTERM: '1',
    });
    for (const [part, value] of Object.entries(doc)) {
      assert.equal((value as { error?: string }).error, undefined, `pwntools ${part}: ${JSON.stringify(value)}`);
    }

    // The probes found SFTP, pwd (asked over SFTP), a pid from process('false') (it is 0: the
    // probe's parent is outside the sandbox's pid namespace), ASLR from /proc, the platform.
    assert.deepEqual({ ...doc.connect, pid: typeof doc.connect.pid }, {
      connected: true, sftp: true, cwd: HOME, pid: 'number', aslr: true, os: 'linux', arch: 'amd64',
    });

    assert.equal(screenLines(doc.shell.beforePrompt)[0], WELCOME);
    assert.ok(doc.shell.beforePrompt.endsWith(PROMPT), JSON.stringify(doc.shell.beforePrompt));
    assert.ok(doc.shell.echoed.endsWith('MARK42'), JSON.stringify(doc.shell.echoed));
    assert.match(screenLines(doc.shell.after)[1], TTY, JSON.stringify(doc.shell.after));
    assert.equal(doc.shell.status, 3);

    // run() and process() ask for a pty in raw mode (stty raw): no CR is added to line ends.
    assert.deepEqual(doc.run, { output: 'out\nerr\n', status: 4 });
    assert.deepEqual(doc.system, { output: 'from stdin\ntyped-eof\n', status: 5 });
    assert.deepEqual({ ...doc.process, pid: typeof doc.process.pid }, {
      output: 'var=from-pwntools cwd=/tmp user=level0\n', status: 6, pid: 'number', uid: 12000,
    });
    assert.deepEqual(doc.processStdin, { lines: ['hello\n', 'WORLD\n'], status: 0 });

    // Over SFTP, and an exec channel of the same connection sees the upload: one sandbox per connection.
    assert.deepEqual(doc.files, {
      sftp: true, roundTrip: true, downloadedHex: upload.toString('hex'), readme: readme(), stat: 'level0 256\n', statStatus: 0,
    });
    // upload_file/download_file round-trip; upload_dir lands in the sandbox (its script keeps its
    // execute bit and runs there), download_dir brings back what was made inside in between.
    assert.deepEqual(doc.fileAndDir, {
      remote: '/tmp/matrix-payload.bin', fileRoundTrip: true, inside: 'alpha\nran-as-level0\n', insideStatus: 0,
      downloaded: { 'a.txt': 'alpha\n', 'sub/run.sh': '#!/bin/sh\necho ran-as-$(id -un)\n', 'sub/new.txt': 'made-inside\n' },
      runMode: '0o755',
    });
    // remote() reaches a service on the sandbox's own localhost; listen() listens inside it.
    assert.deepEqual(doc.remote, { banner: 'banner\n', answer: 'denwp' });
    assert.ok(doc.listen.port >= 1024, JSON.stringify(doc.listen));
    assert.equal(doc.listen.received, 'knock');
    // pwntools' only warning comes from its own ELF loader, on the client, about the 32-bit test
    // program it assembles for the ulimit ASLR probe (which it then uploads and runs in the sandbox).
    assert.deepEqual(doc.warnings.filter((w) => w !== 'Did not find any GOT entries'), []);
  });
});
