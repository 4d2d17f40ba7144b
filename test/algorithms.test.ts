// The algorithm policy (issue 6, item 5), against a real gateway: ssh-audit reports no failure and
// exactly the warnings README.md's "Security" section explains; the server's KEXINIT, read off a
// raw socket, offers exactly src/ssh/algorithms.ts plus strict key exchange; strict key exchange is
// enforced (a packet before KEXINIT ends the handshake: the Terrapin countermeasure); the OpenSSH
// client cannot get SHA-1, CBC, DH group exchange, NIST ECDH or an ssh-rsa host key signature, and
// still logs in with what is offered, compression included; a SHA-1 user signature is refused
// while the same RSA key signing with SHA-2 logs in.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ALGORITHMS, isSha1Signature } from '../src/ssh/algorithms.js';
import { collect, PY_CLIENTS, PYTHON, ssh } from './helpers/clients.js';
import { REPO, type TestGateway } from './helpers/gateway.js';
import { sharedGateway } from './helpers/shared-gateway.js';

// A second game, with one level that logs in with an RSA key only.
const work = mkdtempSync(join(tmpdir(), 'wg-algorithms-'));
const rsaKey = join(work, 'id_rsa');
spawnSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '3072', '-N', '', '-C', 'algorithms-test', '-f', rsaKey], { stdio: 'ignore' });
const gameDir = join(work, 'rsagame');
mkdirSync(gameDir);
writeFileSync(
  join(gameDir, 'game.yaml'),
  ['name: rsagame', 'hostname: rsa-test', 'levels:', '  - user: rsa0', '    uid: 13000', `    authorizedKeys: [${JSON.stringify(readFileSync(`${rsaKey}.pub`, 'utf8').trim())}]`, ''].join('\n'),
);
after(() => rmSync(work, { recursive: true, force: true }));

let gw: TestGateway;
sharedGateway((g) => (gw = g), { config: { games: [join(REPO, 'games/demo'), gameDir] } });

// ---------------------------------------------------------------------------------------------
// A raw SSH transport, enough to read the server's KEXINIT and to send packets in the clear.

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const sshString = (s: string) => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);

/** An unencrypted binary packet (RFC 4253 6): length, padding length, payload, at least 4 bytes of padding. */
function packet(payload: Buffer): Buffer {
  let pad = 8 - ((5 + payload.length) % 8);
  if (pad < 4) pad += 8;
  return Buffer.concat([u32(1 + payload.length + pad), Buffer.from([pad]), payload, Buffer.alloc(pad)]);
}

const MSG_IGNORE = 2;
const MSG_KEXINIT = 20;
const LISTS = ['kex', 'serverHostKey', 'cipherCS', 'cipherSC', 'macCS', 'macSC', 'compressCS', 'compressSC', 'langCS', 'langSC'] as const;
type Kexinit = Record<(typeof LISTS)[number], string[]> & { firstKexFollows: boolean };

function clientKexinit(kex: string[]): Buffer {
  const lists = [kex.join(','), 'ssh-ed25519', 'aes128-ctr', 'aes128-ctr', 'hmac-sha2-256', 'hmac-sha2-256', 'none', 'none', '', ''];
  return Buffer.concat([Buffer.from([MSG_KEXINIT]), randomBytes(16), ...lists.map(sshString), Buffer.from([0]), u32(0)]);
}

class RawTransport {
  private buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  readonly closed: Promise<unknown>;

  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      this.wake?.();
    });
    socket.on('error', () => {});
    // Not events.once: it would reject on the ECONNRESET of a server that cuts the connection.
    this.closed = new Promise((resolve) => socket.once('close', resolve));
  }

  static async open(gw: TestGateway): Promise<RawTransport> {
    const socket = connect({ host: '127.0.0.1', port: gw.port });
    await once(socket, 'connect');
    const raw = new RawTransport(socket);
    socket.write('SSH-2.0-wargate-raw-test\r\n');
    return raw;
  }

  private async bytes(n: number): Promise<Buffer> {
    while (this.buffer.length < n) await new Promise<void>((resolve) => (this.wake = resolve));
    const out = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    return out;
  }

  async versionLine(): Promise<string> {
    let line = '';
    while (!line.endsWith('\r\n')) line += (await this.bytes(1)).toString('latin1');
    return line.trimEnd();
  }

  async payload(): Promise<Buffer> {
    const length = (await this.bytes(4)).readUInt32BE();
    const body = await this.bytes(length);
    return body.subarray(1, length - body[0]);
  }

  async serverKexinit(): Promise<Kexinit> {
    const payload = await this.payload();
    assert.equal(payload[0], MSG_KEXINIT);
    let at = 17;
    const result = {} as Kexinit;
    for (const name of LISTS) {
      const length = payload.readUInt32BE(at);
      const text = payload.subarray(at + 4, at + 4 + length).toString();
      result[name] = text === '' ? [] : text.split(',');
      at += 4 + length;
    }
    result.firstKexFollows = payload[at] !== 0;
    return result;
  }

  /** Whether the server closed the connection within `ms`. */
  async closesWithin(ms: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
  }
}

// ---------------------------------------------------------------------------------------------

describe('algorithm policy', () => {
  test('ssh-audit: no failure; the only warnings are the ones README.md explains', { timeout: 60_000 }, async () => {
    const run = await collect(spawn('ssh-audit', ['-n', '-p', String(gw.port), '127.0.0.1']));
    const lines = run.stdout.split('\n');
    assert.deepEqual(lines.filter((l) => l.includes('[fail]')), [], run.stdout);
    const warnings = lines.filter((l) => l.includes('[warn]')).map((l) => l.replace(/\s+/g, ' ').trim());
    assert.deepEqual(warnings, [
      // Strict key exchange itself: ssh-audit 2.5.0 (Debian 12) predates it (3.1.0 knows it).
      '(kex) kex-strict-s-v00@openssh.com -- [warn] unknown algorithm',
      // Kept for dropbear 2022.83's AES-CTR (it has no -etm MAC), after the -etm ones.
      '(mac) hmac-sha2-256 -- [warn] using encrypt-and-MAC mode',
      '(mac) hmac-sha2-512 -- [warn] using encrypt-and-MAC mode',
    ]);
    // ssh-audit 2.5.0's exit codes: 3 failure, 2 warning, 1 connection error, 0 good.
    assert.equal(run.code, 2, run.stderr);
  });

  test("the server's KEXINIT offers exactly the policy, plus strict key exchange; nothing SHA-1, CBC, group exchange, NIST ECDH or plain zlib", { timeout: 20_000 }, async () => {
    const raw = await RawTransport.open(gw);
    assert.equal(await raw.versionLine(), 'SSH-2.0-wargate');
    const offer = await raw.serverKexinit();
    raw.socket.destroy();
    assert.deepEqual(offer.kex, [...ALGORITHMS.kex, 'kex-strict-s-v00@openssh.com']);
    assert.deepEqual(offer.serverHostKey, ALGORITHMS.serverHostKey);
    assert.deepEqual(offer.cipherCS, ALGORITHMS.cipher);
    assert.deepEqual(offer.cipherSC, ALGORITHMS.cipher);
    assert.deepEqual(offer.macCS, ALGORITHMS.hmac);
    assert.deepEqual(offer.macSC, ALGORITHMS.hmac);
    assert.deepEqual(offer.compressCS, ['none', 'zlib@openssh.com']);
    assert.deepEqual(offer.compressSC, ['none', 'zlib@openssh.com']);
    assert.equal(offer.firstKexFollows, false);
    const all = LISTS.flatMap((l) => offer[l]);
    for (const banned of [/sha1/, /cbc/, /group-exchange/, /nistp/, /^zlib$/, /^ssh-rsa$/, /^ssh-dss$/, /md5/, /arcfour|3des|blowfish/]) {
      assert.deepEqual(all.filter((a) => banned.test(a)), [], String(banned));
    }
  });

  test('strict key exchange is enforced: a client that asks for it and sends a packet before its KEXINIT is disconnected (Terrapin)', { timeout: 20_000 }, async () => {
    const strictKex = ['curve25519-sha256', 'kex-strict-c-v00@openssh.com'];
    const ignore = packet(Buffer.concat([Buffer.from([MSG_IGNORE]), sshString('')]));
    const outcomes: Record<string, boolean> = {};
    for (const [name, packets] of Object.entries({
      'strict, IGNORE first': [ignore, packet(clientKexinit(strictKex))],
      'strict, KEXINIT first': [packet(clientKexinit(strictKex))],
      'not strict, IGNORE first': [ignore, packet(clientKexinit(['curve25519-sha256']))],
    })) {
      const raw = await RawTransport.open(gw);
      await raw.versionLine();
      await raw.serverKexinit();
      for (const p of packets) raw.socket.write(p);
      outcomes[name] = await raw.closesWithin(1500);
      raw.socket.destroy();
    }
    assert.deepEqual(outcomes, { 'strict, IGNORE first': true, 'strict, KEXINIT first': false, 'not strict, IGNORE first': false });
    const error = await gw.waitFor((e) => e.event === 'connection.error' && /KEXINIT not first packet in strict KEX mode/.test(String(e.detail)));
    assert.equal(error.reason, 'connection-error');
  });

  test('the OpenSSH client gets no SHA-1, CBC, group exchange, NIST ECDH or ssh-rsa host key; it logs in with the policy, strict and compressed', { timeout: 120_000 }, async () => {
    // ssh2 sees the mismatch in the client's KEXINIT and disconnects; the gateway logs why.
    const refused: Record<string, string[]> = {
      'no matching host key format': ['-o', 'HostKeyAlgorithms=ssh-rsa'],
      'no matching key exchange algorithm': ['-o', 'KexAlgorithms=diffie-hellman-group-exchange-sha256,diffie-hellman-group-exchange-sha1,diffie-hellman-group14-sha1,diffie-hellman-group1-sha1,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521'],
      'no matching C->S cipher': ['-o', 'Ciphers=aes128-cbc,aes192-cbc,aes256-cbc,3des-cbc'],
      'no matching C->S MAC': ['-o', 'Ciphers=aes128-ctr', '-o', 'MACs=hmac-sha1,hmac-sha1-etm@openssh.com,hmac-md5,umac-64@openssh.com'],
    };
    for (const [message, options] of Object.entries(refused)) {
      const before = gw.events('connection.error').length;
      const r = await ssh(gw, 'level0', [...options, '--', 'echo in']);
      assert.equal(r.code, 255, `${options.join(' ')}: ${r.stdout}`);
      assert.equal(r.stdout, '');
      const error = await gw.waitFor((e) => e.event === 'connection.error' && gw.events('connection.error').indexOf(e) >= before);
      assert.equal(error.detail, `Handshake failed: ${message}`, options.join(' '));
    }
    const rsaSha2 = await ssh(gw, 'level0', ['-o', 'HostKeyAlgorithms=rsa-sha2-512', '--', 'echo in']);
    assert.equal(rsaSha2.stdout, 'in\n', rsaSha2.stderr);

    const verbose = await ssh(gw, 'level0', ['-vvv', '-C', '-o', 'LogLevel=DEBUG3', '--', 'echo in']);
    assert.equal(verbose.stdout, 'in\n', verbose.stderr);
    assert.match(verbose.stderr, /will use strict KEX ordering/);
    assert.match(verbose.stderr, /kex: server->client cipher: \S+ MAC: \S+ compression: zlib@openssh\.com/);
    const sigAlgs = /server-sig-algs=<([^>]*)>/.exec(verbose.stderr)?.[1].split(',') ?? [];
    assert.ok(sigAlgs.includes('rsa-sha2-512') && sigAlgs.includes('ssh-ed25519'), sigAlgs.join(','));
    assert.deepEqual(sigAlgs.filter((a) => a === 'ssh-rsa' || a === 'ssh-dss'), [], 'no SHA-1 user signature is advertised');
  });

  test('a user key signature made with SHA-1 (ssh-rsa) is refused, the same RSA key signing with SHA-2 logs in', { timeout: 60_000 }, async () => {
    assert.equal(isSha1Signature({ algo: 'ssh-rsa' }, undefined), true);
    assert.equal(isSha1Signature({ algo: 'ssh-dss' }, undefined), true);
    assert.equal(isSha1Signature({ algo: 'ssh-rsa' }, 'sha512'), false);
    assert.equal(isSha1Signature({ algo: 'ssh-ed25519' }, undefined), false);

    const child = spawn(PYTHON, [join(PY_CLIENTS, 'algorithms_rsa_signature.py')], {
      env: { ...process.env, WG_PORT: String(gw.port), WG_USER: 'rsa0', WG_ARGS: JSON.stringify({ key: rsaKey, algorithms: ['ssh-rsa', 'rsa-sha2-256', 'rsa-sha2-512'] }) },
    });
    const r = await collect(child);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { serverSigAlgs: string[]; results: Record<string, string> };
    assert.deepEqual(doc.results, { 'ssh-rsa': 'refused', 'rsa-sha2-256': 'accepted', 'rsa-sha2-512': 'accepted' });
    assert.ok(!doc.serverSigAlgs.includes('ssh-rsa'));
  });
});
