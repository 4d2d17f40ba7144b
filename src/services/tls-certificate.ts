// The self-signed certificate a game's TLS services present (the gateway terminates TLS for them):
// generated once per game and kept in the state dir, so players see the same one across restarts.
// node:crypto makes keys but not X.509 certificates, hence the `selfsigned` package. The private
// key never leaves the state dir (0600) and is never logged.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { generate } from 'selfsigned';

export interface ServiceCertificate {
  key: string;
  cert: string;
}

/** <stateDir>/games/<game>/service-tls.json, made at the first start of a game with a TLS service. */
export async function loadOrCreateCertificate(stateDir: string, game: string, hostname: string): Promise<ServiceCertificate> {
  const dir = join(stateDir, 'games', game);
  const file = join(dir, 'service-tls.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as ServiceCertificate;
  const notBeforeDate = new Date(Date.now() - 86_400_000);
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate: new Date(notBeforeDate.getTime() + 10 * 365 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 2, value: hostname }, { type: 7, ip: '127.0.0.1' }] },
    ],
  });
  const certificate = { key: pems.private, cert: pems.cert };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(`${file}.tmp`, JSON.stringify(certificate), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
  return certificate;
}

export const secureContextOf = (c: ServiceCertificate): SecureContext => createSecureContext({ key: c.key, cert: c.cert });
