// Session channels end to end, with three real clients: the OpenSSH client, paramiko (the scripts in
// test/clients/channels_*.py) and the ssh2 npm client (for what the others do not expose: exit-signal
// and signal requests). Shells and commands, with and without a pty: the terminal, resizes, Ctrl-C,
// job control, full-screen programs, exit status and exit-signal, stdout/stderr kept apart, end of
// input, env requests, signal requests, and several channels of one connection in one sandbox.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import ssh2, { type ClientChannel, type ExecOptions } from 'ssh2';
import { collect, paramiko, ssh, sshCommand, type Result } from './helpers/clients.js';
import { sharedGateway } from './helpers/shared-gateway.js';
import { TestGateway } from './helpers/gateway.js';
import { assertNothingLeft } from './helpers/leftovers.js';

const USER = 'level0';
const HOME = '/home/level0';
const PROMPT = 'level0@wargate-demo:~\\$ ';
const TTY = /^\/dev\/pts\/\d+$/;

let gw: TestGateway;
sharedGateway((g) => (gw = g));

// ---------------------------------------------------------------------------------------------
// Helpers

/** The OpenSSH client with extra environment variables (TERM, LANG, ...) of its own. */
async function sshWithEnv(args: string[], env: Record<string, string>, input = ''): Promise<Result> {
  const cmd = sshCommand(gw, USER, args);
  const child = spawn('ssh', cmd.argv, { env: { ...cmd.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  return collect(child, input);
}

interface ExecRun {
  stdout: string;
  stderr: string;
  /** paramiko's exit_status: -1 when the server sent no exit-status. */
  status: number | null;
  timedOut: boolean;
  envReplies: Record<string, boolean>;
}
const pyExec = (args: Record<string, unknown>) => paramiko<ExecRun>(gw, 'channels_exec', USER, args);

interface Step {
  resize?: [number, number];
  /**
   * Seconds to wait before sending: a job started after a marker is in the foreground only a moment
   * after the marker is printed, and a key typed before that reaches the shell, not the job.
   */
  pause?: number;
  send?: string;
  /** A Python regular expression awaited in the output that follows. */
  expect: string;
  timeout?: number;
}
interface PtyRun {
  steps: { output: string; matched: boolean; seconds: number }[];
  rest: string;
  status: number | null;
  timedOut: boolean;
}

let markerCount = 0;
/**
 * Types `cmd` between two marker echoes whose text only the shell's output contains (the echoed
 * command line shows `$((N+1000))`, the output the number), and waits for the second marker.
 * `before` runs ahead of the first marker (to keep `$?` of the previous command, say).
 */
function marked(cmd: string, before = ''): Step {
  const n = ++markerCount;
  const sep = cmd.endsWith('&') ? ' ' : '; ';
  return { send: `${before}echo BEGIN$((${n}+1000)); ${cmd}${sep}echo END$((${n}+1000))\r`, expect: `END${n + 1000}\r\n` };
}

/** Types a marker echo, then `cmd` (a command that does not end by itself), and waits for the marker. */
function markerThen(cmd: string): Step {
  const n = ++markerCount;
  return { send: `echo START$((${n}+1000)); ${cmd}\r`, expect: `START${n + 1000}\r\n` };
}

/** The lines a terminal would show: split at CRLF, a bare CR returns to column 0, escapes removed. */
function screenLines(output: string): string[] {
  return output
    .split('\r\n')
    .map((l) => l.slice(l.lastIndexOf('\r') + 1))
    .map((l) => l.replace(/\x1b\[[0-9;?>=]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[=>]/g, ''));
}

/** What the command of a `marked` step printed: the screen lines between its two markers. */
function printed(output: string): string[] {
  const lines = screenLines(output);
  const begin = lines.findIndex((l) => /^BEGIN\d+$/.test(l));
  const end = lines.findIndex((l) => l === `END${begin >= 0 ? lines[begin].slice(5) : ''}`);
  assert.ok(begin >= 0 && end > begin, `no marked command output in ${JSON.stringify(output)}`);
  return lines.slice(begin + 1, end);
}

const LOGIN: Step = { expect: PROMPT, timeout: 15 };
const EXIT: Step = { send: 'exit\r', expect: 'logout\r\n' };

/** A paramiko pty session (shell, or exec of `command`) driven step by step; every step must match. */
async function ptySession(steps: Step[], opts: { term?: string; cols?: number; rows?: number; command?: string } = {}) {
  const args = { term: opts.term ?? 'xterm', cols: opts.cols ?? 80, rows: opts.rows ?? 24, command: opts.command, steps };
  const run = await paramiko<PtyRun>(gw, 'channels_pty_script', USER, args);
  const failed = run.steps.findIndex((s) => !s.matched);
  assert.equal(
    failed,
    -1,
    `step ${failed} ${JSON.stringify(steps[failed])} never saw its pattern; it got ${JSON.stringify(run.steps[failed]?.output)}`,
  );
  assert.equal(run.steps.length, steps.length);
  return run;
}

async function ssh2Connect(): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve);
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port: gw.port, username: USER, password: gw.password(USER), readyTimeout: 20_000 });
  });
  client.on('error', () => {});
  return client;
}

async function ssh2End(client: ssh2.Client): Promise<void> {
  const closed = new Promise<void>((resolve) => (client as unknown as NodeJS.EventEmitter).once('close', () => resolve()));
  client.end();
  await closed;
}

interface Ssh2Exit {
  stdout: string;
  stderr: string;
  /** The arguments of the channel's 'exit' event: [code] or [null, 'SIGNAME', coreDumped, description]. */
  exit: unknown[] | undefined;
}

/** exec over ssh2; `onStdout` sees the stdout so far each time more arrives (to send signals). */
function ssh2Exec(
  client: ssh2.Client,
  command: string,
  options: ExecOptions = {},
  onStdout?: (stream: ClientChannel, stdout: string) => void,
): Promise<Ssh2Exit> {
  return new Promise((resolve, reject) => {
    client.exec(command, options, (err, stream) => {
      if (err) return reject(err);
      const result: Ssh2Exit = { stdout: '', stderr: '', exit: undefined };
      stream.on('data', (d: Buffer) => {
        result.stdout += d.toString('utf8');
        onStdout?.(stream, result.stdout);
      });
      stream.stderr.on('data', (d: Buffer) => (result.stderr += d.toString('utf8')));
      stream.on('exit', (...args: unknown[]) => (result.exit = args));
      stream.on('close', () => resolve(result));
    });
  });
}

// ---------------------------------------------------------------------------------------------

describe('shell with a pty (paramiko invoke_shell after pty-req)', () => {
  test('tty names a pty, stty size is the requested size, TERM is the requested terminal, cwd is home', async () => {
    const tty = marked('tty');
    const size = marked('stty size');
    const term = marked('echo $TERM; pwd');
    const run = await ptySession([LOGIN, tty, size, term, EXIT], { term: 'xterm', cols: 100, rows: 30 });
    assert.equal(printed(run.steps[1].output).length, 1);
    assert.match(printed(run.steps[1].output)[0], TTY);
    assert.deepEqual(printed(run.steps[2].output), ['30 100']);
    assert.deepEqual(printed(run.steps[3].output), ['xterm', HOME]);
    assert.equal(run.status, 0, 'exit from the login shell gives exit status 0');
  });

  test('the welcome text (banner and goal) comes before the first prompt', async () => {
    const run = await ptySession([LOGIN, EXIT]);
    const lines = screenLines(run.steps[0].output);
    assert.equal(lines[0], 'Welcome to the wargate demo game!');
    assert.ok(lines.includes('Level 0 -> 1: the password for level1 is in a file called readme in your home directory.'), lines.join('\n'));
    assert.equal(lines.at(-1), 'level0@wargate-demo:~$ ');
  });

  test('a window-change changes what stty size and tput print afterwards', async () => {
    const before = marked('stty size');
    const resized = { ...marked('stty size; tput cols; tput lines'), resize: [132, 40] as [number, number] };
    const smaller = { ...marked('stty size; tput cols'), resize: [60, 20] as [number, number] };
    const run = await ptySession([LOGIN, before, resized, smaller, EXIT], { cols: 80, rows: 24 });
    assert.deepEqual(printed(run.steps[1].output), ['24 80']);
    assert.deepEqual(printed(run.steps[2].output), ['40 132', '132', '40']);
    assert.deepEqual(printed(run.steps[3].output), ['20 60', '60']);
  });

  test('Ctrl-C interrupts a foreground sleep 100 and the shell lives on ($? is 130)', async () => {
    const run = await ptySession([
      LOGIN,
      markerThen('sleep 100'),
      { pause: 0.3, send: '\x03', expect: '\\^C', timeout: 10 },
      marked('echo rc=$rc', 'rc=$?; '),
      EXIT,
    ]);
    assert.ok(run.steps[2].seconds < 10, `Ctrl-C took ${run.steps[2].seconds} s`);
    assert.deepEqual(printed(run.steps[3].output), ['rc=130']);
    assert.equal(run.status, 0);
  });

  test('job control: a background job is listed, Ctrl-Z stops the foreground job, fg resumes it', async () => {
    const run = await ptySession([
      LOGIN,
      marked('sleep 100 &'),
      marked('jobs'),
      markerThen('sleep 200'),
      { pause: 0.3, send: '\x1a', expect: 'Stopped +sleep 200\r\n' },
      marked('jobs'),
      { send: 'fg %2\r', expect: 'sleep 200\r\n' },
      { pause: 0.3, send: '\x03', expect: '\\^C' },
      marked('echo rc=$rc; kill %1; wait %1; echo waited=$?', 'rc=$?; '),
      marked('jobs; echo jobs-done'),
      EXIT,
    ]);
    assert.match(printed(run.steps[1].output).join('\n'), /^\[1\] \d+$/);
    assert.deepEqual(printed(run.steps[2].output), ['[1]+  Running                 sleep 100 &']);
    assert.equal(screenLines(run.steps[4].output).find((l) => l.includes('Stopped')), '[2]+  Stopped                 sleep 200');
    assert.deepEqual(printed(run.steps[5].output), [
      '[1]-  Running                 sleep 100 &',
      '[2]+  Stopped                 sleep 200',
    ]);
    const afterKill = printed(run.steps[8].output);
    assert.equal(afterKill[0], 'rc=130');
    assert.equal(afterKill.at(-1), 'waited=143', 'kill %1 ended the background sleep with SIGTERM');
    assert.deepEqual(printed(run.steps[9].output).filter((l) => !l.includes('Terminated')), ['jobs-done']);
  });

  test('less (full screen, alternate screen) shows one screenful of the pty size and quits with q', async () => {
    const run = await ptySession(
      [
        LOGIN,
        { send: "printf 'row%s\\n' $(seq 1 100) | less\r", expect: 'row23\r\n:' },
        { send: 'q', expect: '\x1b\\[\\?1049l' },
        marked('echo after-less'),
        EXIT,
      ],
      { term: 'xterm', cols: 80, rows: 24 },
    );
    const screen = run.steps[1].output;
    assert.ok(screen.includes('\x1b[?1049h'), 'less switched to the alternate screen (xterm smcup)');
    const rows = screenLines(screen).filter((l) => /^row\d+$/.test(l));
    assert.deepEqual(rows, Array.from({ length: 23 }, (_, i) => `row${i + 1}`), 'rows-1 lines, then the prompt line');
    assert.deepEqual(printed(run.steps[3].output), ['after-less']);
  });

  test('vi edits and writes a file, then the shell reads it back', async () => {
    const run = await ptySession(
      [
        LOGIN,
        { send: 'vi -u NONE /tmp/vi-test\r', expect: '\\[New( File)?\\]' },
        { send: 'ihello from vi\x1b:wq\r', expect: '\x1b\\[\\?1049l' },
        marked('cat /tmp/vi-test'),
        EXIT,
      ],
      { term: 'xterm', cols: 80, rows: 24 },
    );
    assert.ok(run.steps[1].output.includes('\x1b[24;1H"/tmp/vi-test" [New'), 'vi drew its status line on row 24 of 24');
    assert.deepEqual(printed(run.steps[3].output), ['hello from vi']);
  });
});

describe('shell with a pty (OpenSSH ssh -tt)', () => {
  test('tty names a pty, TERM comes from the client, the exit status of the shell is passed on', async () => {
    const r = await sshWithEnv(['-tt'], { TERM: 'vt100' }, 'tty; echo $TERM; echo END$((7+1000)); exit 4\n');
    const lines = screenLines(r.stdout);
    const end = lines.indexOf('END1007');
    assert.ok(end >= 2, r.stdout);
    assert.match(lines[end - 2], TTY);
    assert.equal(lines[end - 1], 'vt100');
    assert.equal(r.code, 4);
  });
});

describe('shell without a pty', () => {
  test('paramiko: commands come on stdin, tty says "not a tty", the login shell is -bash in home, exit 3', async () => {
    const r = await paramiko<ExecRun>(gw, 'channels_shell_nopty', USER, { input: 'tty; echo $0; pwd; echo $((6*7)); exit 3\n' });
    assert.deepEqual(r, { stdout: `not a tty\n-bash\n${HOME}\n42\n`, stderr: '', status: 3, timedOut: false });
  });

  test('paramiko: end of input ends the shell with the status of its last command', async () => {
    const r = await paramiko<ExecRun>(gw, 'channels_shell_nopty', USER, { input: 'echo one\necho two >&2\n(exit 0)\n' });
    assert.deepEqual(r, { stdout: 'one\n', stderr: 'two\n', status: 0, timedOut: false });
  });

  test('OpenSSH ssh -T: commands on stdin, "not a tty", exit status passed on, no welcome text', async () => {
    const r = await ssh(gw, USER, ['-T'], 'tty; echo $((6*7)); exit 4\n');
    assert.equal(r.stdout, 'not a tty\n42\n');
    assert.equal(r.stderr, '');
    assert.equal(r.code, 4);
  });
});

describe('exec without a pty', () => {
  test('OpenSSH: exit 7 gives exit status 7', async () => {
    const r = await ssh(gw, USER, ['--', 'exit 7']);
    assert.deepEqual({ code: r.code, stdout: r.stdout, stderr: r.stderr }, { code: 7, stdout: '', stderr: '' });
  });

  test('OpenSSH: stdout and stderr are kept apart', async () => {
    const r = await ssh(gw, USER, ['--', 'echo to-out; echo to-err >&2; echo more-out; echo more-err >&2']);
    assert.equal(r.stdout, 'to-out\nmore-out\n');
    assert.equal(r.stderr, 'to-err\nmore-err\n');
    assert.equal(r.code, 0);
  });

  test('OpenSSH: end of input reaches the process (cat ends, wc -c counts every byte of 100000)', async () => {
    const cat = await ssh(gw, USER, ['--', 'cat; echo cat-ended'], 'line one\nline two\n');
    assert.equal(cat.stdout, 'line one\nline two\ncat-ended\n');
    const wc = await ssh(gw, USER, ['--', 'wc -c'], 'x'.repeat(100_000));
    assert.equal(wc.stdout, '100000\n');
    assert.equal(wc.code, 0);
  });

  test('OpenSSH: a command killed by a signal makes the client exit 255 with no output', async () => {
    const r = await ssh(gw, USER, ['--', 'kill -KILL $$']);
    assert.deepEqual({ code: r.code, stdout: r.stdout }, { code: 255, stdout: '' });
  });

  test('paramiko: exit status, stdout and stderr apart', async () => {
    const r = await pyExec({ command: 'echo out; echo err >&2; exit 7' });
    assert.deepEqual(r, { stdout: 'out\n', stderr: 'err\n', status: 7, timedOut: false, envReplies: {} });
  });

  test('paramiko: 300000 bytes then EOF reach wc -c', async () => {
    const r = await pyExec({ command: 'wc -c', stdinBytes: 300_000 });
    assert.deepEqual(r, { stdout: '300000\n', stderr: '', status: 0, timedOut: false, envReplies: {} });
  });

  test('paramiko: a command killed by a signal has no exit-status (paramiko reports -1)', async () => {
    const r = await pyExec({ command: 'echo before; kill -KILL $$' });
    assert.deepEqual(r, { stdout: 'before\n', stderr: '', status: -1, timedOut: false, envReplies: {} });
  });

  test('ssh2: a command killed by SIGKILL reports exit-signal KILL (no core dump)', async () => {
    const client = await ssh2Connect();
    try {
      const r = await ssh2Exec(client, 'echo before; kill -KILL $$');
      assert.equal(r.stdout, 'before\n');
      assert.deepEqual(r.exit?.slice(0, 3), [null, 'SIGKILL', false]);
      const term = await ssh2Exec(client, 'kill -TERM $$');
      assert.deepEqual(term.exit?.slice(0, 3), [null, 'SIGTERM', false]);
    } finally {
      await ssh2End(client);
    }
  });
});

describe('exec with a pty', () => {
  test('OpenSSH ssh -tt host cmd: tty names a pty, TERM from the client, exit status passed on', async () => {
    const r = await sshWithEnv(['-tt', '--', 'tty; echo $TERM; exit 5'], { TERM: 'vt100' });
    const lines = r.stdout.split('\r\n');
    assert.equal(lines.length, 3, JSON.stringify(r.stdout));
    assert.match(lines[0], TTY);
    assert.deepEqual(lines.slice(1), ['vt100', ''], 'output ends in CRLF (onlcr of the pty)');
    assert.equal(r.code, 5);
  });

  test('paramiko get_pty + exec: tty, stty size, exit status passed on; stderr merged into the terminal', async () => {
    const r = await pyExec({ command: 'tty; stty size; echo err >&2; exit 5', pty: { term: 'vt220', cols: 90, rows: 33 } });
    const lines = r.stdout.split('\r\n');
    assert.match(lines[0], TTY);
    assert.deepEqual(lines.slice(1), ['33 90', 'err', '']);
    assert.equal(r.stderr, '');
    assert.equal(r.status, 5);
  });

  test('paramiko get_pty + exec: the pty session is driven interactively (read answers a prompt)', async () => {
    const run = await ptySession(
      [
        { expect: 'name\\? ' },
        { send: 'wargate\r', expect: 'hello wargate\r\n' },
      ],
      { command: 'printf "name? "; read n; echo "hello $n"; exit 6' },
    );
    assert.equal(run.status, 6);
  });

  test('ssh2: a pty command killed by SIGKILL reports exit-signal KILL, as sshd does', async () => {
    // sshd (session.c) reports exit-signal whenever the session's child died of a signal, pty or not.
    const client = await ssh2Connect();
    try {
      const r = await ssh2Exec(client, 'echo before; kill -KILL $$', { pty: { term: 'xterm', cols: 80, rows: 24 } });
      assert.equal(r.stdout, 'before\r\n');
      assert.deepEqual(r.exit?.slice(0, 2), [null, 'SIGKILL'], `exit event was ${JSON.stringify(r.exit)}`);
    } finally {
      await ssh2End(client);
    }
  });
});

describe('env requests and the login environment', () => {
  test('paramiko: LANG, LC_*, TERM are accepted (want-reply success); FOO and LD_PRELOAD are refused', async () => {
    const r = await pyExec({
      command: 'printf "%s\\n" "LANG=$LANG" "LC_ALL=${LC_ALL-unset}" "LC_FOO=$LC_FOO" "TERM=$TERM" "FOO=${FOO-unset}" "LD_PRELOAD=${LD_PRELOAD-unset}"',
      env: { LANG: 'C.UTF-8', LC_FOO: 'bar', TERM: 'vt220', FOO: 'bar', LD_PRELOAD: '/tmp/evil.so' },
      envReply: [['LANG', 'C'], ['LC_ALL', 'C'], ['TERM', 'vt220'], ['FOO', 'bar'], ['LD_PRELOAD', '/tmp/evil.so'], ['PATH', '/tmp']],
    });
    assert.deepEqual(r.envReplies, { LANG: true, LC_ALL: true, TERM: true, FOO: false, LD_PRELOAD: false, PATH: false });
    assert.equal(r.stdout, 'LANG=C.UTF-8\nLC_ALL=unset\nLC_FOO=bar\nTERM=vt220\nFOO=unset\nLD_PRELOAD=unset\n');
    assert.equal(r.status, 0);
  });

  test('OpenSSH: SendEnv=LANG and SetEnv=LC_FOO reach the process; SetEnv FOO and LD_PRELOAD do not', async () => {
    const r = await sshWithEnv(
      [
        '-o', 'SendEnv=LANG', '-o', 'SetEnv=LC_FOO=bar FOO=bar LD_PRELOAD=/tmp/evil.so',
        '--', 'printf "%s\\n" "LANG=$LANG" "LC_FOO=$LC_FOO" "FOO=${FOO-unset}" "LD_PRELOAD=${LD_PRELOAD-unset}"',
      ],
      { LANG: 'C.UTF-8' },
    );
    assert.equal(r.stdout, 'LANG=C.UTF-8\nLC_FOO=bar\nFOO=unset\nLD_PRELOAD=unset\n');
    assert.equal(r.code, 0);
  });

  test('ssh2: env option of exec: LANG, LC_X, TERM arrive; FOO does not', async () => {
    const client = await ssh2Connect();
    try {
      const r = await ssh2Exec(client, 'echo "L=$LANG X=$LC_X T=$TERM F=${FOO-unset}"', {
        env: { LANG: 'C.UTF-8', LC_X: 'y', TERM: 'vt220', FOO: 'bar' },
      });
      assert.equal(r.stdout, 'L=C.UTF-8 X=y T=vt220 F=unset\n');
    } finally {
      await ssh2End(client);
    }
  });

  test('exec: HOME, USER, LOGNAME, SHELL, PATH, TERM are set, cwd is home, no WG_* variable leaks', async () => {
    const r = await ssh(gw, USER, ['--', 'pwd; env']);
    const [cwd, ...envLines] = r.stdout.trimEnd().split('\n');
    assert.equal(cwd, HOME);
    const env = Object.fromEntries(envLines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    assert.deepEqual(
      { HOME: env.HOME, USER: env.USER, LOGNAME: env.LOGNAME, SHELL: env.SHELL, PATH: env.PATH, TERM: env.TERM, PWD: env.PWD },
      { HOME, USER, LOGNAME: USER, SHELL: '/bin/bash', PATH: '/usr/local/bin:/usr/bin:/bin:/usr/games', TERM: 'dumb', PWD: HOME },
    );
    assert.deepEqual(Object.keys(env).filter((k) => k.startsWith('WG_')), []);
  });
});

describe('signal requests (ssh2 client)', () => {
  test('signal TERM reaches a command that traps it (no pty)', async () => {
    const client = await ssh2Connect();
    try {
      let sent = false;
      const r = await ssh2Exec(
        client,
        'trap "echo got-term; exit 0" TERM; echo ready; while :; do sleep 0.1; done',
        {},
        (stream, out) => {
          if (!sent && out.includes('ready\n')) {
            sent = true;
            stream.signal('TERM');
          }
        },
      );
      assert.equal(r.stdout, 'ready\ngot-term\n');
      assert.deepEqual(r.exit, [0]);
    } finally {
      await ssh2End(client);
    }
  });

  test('signal INT reaches a command on a pty that traps it', async () => {
    const client = await ssh2Connect();
    try {
      let sent = false;
      const r = await ssh2Exec(
        client,
        'trap "echo got-int; exit 3" INT; echo ready; while :; do sleep 0.1; done',
        { pty: { term: 'xterm', cols: 80, rows: 24 } },
        (stream, out) => {
          if (!sent && out.includes('ready\r\n')) {
            sent = true;
            stream.signal('INT');
          }
        },
      );
      assert.equal(r.stdout, 'ready\r\ngot-int\r\n');
      assert.deepEqual(r.exit, [3]);
    } finally {
      await ssh2End(client);
    }
  });

  test('signal KILL ends a sleeping command with exit-signal KILL', async () => {
    const client = await ssh2Connect();
    try {
      let sent = false;
      const r = await ssh2Exec(client, 'echo ready; sleep 100', {}, (stream, out) => {
        if (!sent && out.includes('ready\n')) {
          sent = true;
          stream.signal('KILL');
        }
      });
      assert.equal(r.stdout, 'ready\n');
      assert.deepEqual(r.exit?.slice(0, 2), [null, 'SIGKILL']);
    } finally {
      await ssh2End(client);
    }
  });
});

describe('several channels of one connection', () => {
  test('paramiko: channels of one connection share /tmp, processes and namespaces; another connection does not', async () => {
    interface Chan {
      stdout: string;
      stderr: string;
      status: number | null;
      timedOut?: boolean;
      ready?: boolean;
    }
    const r = await paramiko<{ a: Chan; b: Chan; other: Chan; kill: Chan }>(gw, 'channels_same_sandbox', USER);
    const ns = (out: string) => Object.fromEntries(out.split('\n').filter((l) => /^(pid|mnt|net|uts|ipc)=/.test(l)).map((l) => l.split('=')));
    assert.ok(r.a.ready, `channel A never got ready: ${JSON.stringify(r.a)}`);
    const nsA = ns(r.a.stdout);
    assert.deepEqual(Object.keys(nsA), ['pid', 'mnt', 'net', 'uts', 'ipc']);

    const bLines = r.b.stdout.split('\n');
    const pid = /^pidfile=(\d+)$/.exec(bLines[0])?.[1];
    assert.ok(pid, `channel B could not read channel A's file: ${JSON.stringify(r.b)}`);
    assert.deepEqual(bLines.slice(1, 3), ['a-visible', 'a-cmd=sleep 60'], "channel B sees channel A's process");
    assert.deepEqual(ns(r.b.stdout), nsA, 'same namespaces in both channels');
    assert.equal(r.b.status, 0);

    assert.equal(r.other.stdout.split('\n')[0], 'pidfile-absent', "another connection does not see the first one's /tmp");
    const nsOther = ns(r.other.stdout);
    for (const kind of Object.keys(nsA)) assert.notEqual(nsOther[kind], nsA[kind], `${kind} namespace differs between connections`);

    assert.equal(r.kill.status, 0);
    assert.equal(r.a.status, -1, 'channel A ended by the SIGTERM from another channel (exit-signal, no exit-status)');
  });

  test('ssh2: a file written by one exec channel is read by a concurrent one of the same connection', async () => {
    const client = await ssh2Connect();
    try {
      const [writer, reader] = await Promise.all([
        ssh2Exec(client, 'echo shared-$((20+22)) > /tmp/shared; sleep 0.5; echo written'),
        ssh2Exec(client, 'while [ ! -s /tmp/shared ]; do sleep 0.05; done; cat /tmp/shared'),
      ]);
      assert.equal(writer.stdout, 'written\n');
      assert.equal(reader.stdout, 'shared-42\n');
    } finally {
      await ssh2End(client);
    }
  });
});

test('every sandbox this file started is gone once its connection closed', async () => {
  const deadline = Date.now() + 5000;
  while (gw.events('session.end').length < gw.events('sandbox.start').length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(gw.events('session.end').length, gw.events('sandbox.start').length);
  await assertNothingLeft(gw, 2000);
});
