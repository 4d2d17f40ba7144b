// Image files made by tests (there is no Docker engine, and no network beyond npm and apt): layer
// tars written entry by entry (test/clients/make_tar.py, hostile entries included), a root
// filesystem from Debian's busybox-static, and the three containers wargate reads: a legacy
// `docker save` tarball, an OCI image layout directory, and an OCI layout in a tar as Docker 25+
// `docker save` writes it (with its manifest.json beside index.json).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PY_CLIENTS, PYTHON } from './clients.js';

export interface TarEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink';
  data?: string;
  /** A host file whose bytes the entry holds. */
  source?: string;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

export const BUSYBOX = '/bin/busybox';

/** Writes `entries`, as given, into the tar `out` (gzip-compressed if asked). */
export function writeTar(out: string, entries: TarEntry[], { gzip = false } = {}): string {
  const spec = join(mkdtempSync(join(tmpdir(), 'wg-tar-spec-')), 'spec.json');
  try {
    writeFileSync(spec, JSON.stringify({ out, gzip, entries }));
    execFileSync(PYTHON, [join(PY_CLIENTS, 'make_tar.py'), spec]);
  } finally {
    rmSync(join(spec, '..'), { recursive: true, force: true });
  }
  return out;
}

/**
 * A root filesystem of busybox: /bin/busybox and a link per applet in /bin (relative links),
 * /usr/bin/timeout and /usr/bin/env (absolute links, as images have), and an /etc/os-release.
 */
export function busyboxEntries(osRelease: string): TarEntry[] {
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  return [
    ...['bin', 'etc', 'usr', 'usr/bin', 'root', 'home', 'var'].map((name): TarEntry => ({ name: `${name}/`, type: 'dir', mode: name === 'root' ? 0o700 : 0o755 })),
    { name: 'bin/busybox', type: 'file', source: BUSYBOX, mode: 0o755 },
    ...applets.map((a): TarEntry => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' })),
    { name: 'usr/bin/timeout', type: 'symlink', linkname: '/bin/busybox' },
    { name: 'usr/bin/env', type: 'symlink', linkname: '/bin/busybox' },
    { name: 'etc/os-release', type: 'file', data: osRelease },
  ];
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** A legacy `docker save` tarball (manifest.json, <id>/layer.tar) of the layer tars, bottom first. */
export function dockerSaveLegacy(out: string, layers: string[]): string {
  const ids = layers.map(sha256);
  const config = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: ids.map((id) => `sha256:${id}`) } };
  const configText = JSON.stringify(config);
  const configId = createHash('sha256').update(configText).digest('hex');
  const entries: TarEntry[] = [];
  layers.forEach((layer, i) => {
    entries.push(
      { name: `${ids[i]}/`, type: 'dir' },
      { name: `${ids[i]}/VERSION`, type: 'file', data: '1.0' },
      { name: `${ids[i]}/json`, type: 'file', data: JSON.stringify({ id: ids[i], ...(i > 0 ? { parent: ids[i - 1] } : {}) }) },
      { name: `${ids[i]}/layer.tar`, type: 'file', source: layer },
    );
  });
  entries.push(
    { name: `${configId}.json`, type: 'file', data: configText },
    { name: 'manifest.json', type: 'file', data: JSON.stringify([{ Config: `${configId}.json`, RepoTags: ['wargate-test:latest'], Layers: ids.map((id) => `${id}/layer.tar`) }]) },
    { name: 'repositories', type: 'file', data: JSON.stringify({ 'wargate-test': { latest: ids.at(-1) } }) },
  );
  return writeTar(out, entries);
}

export interface OciLayer {
  file: string;
  mediaType?: string;
}

/** An OCI image layout directory holding the layers (bottom first), one manifest, one config. */
export function ociLayout(dir: string, layers: OciLayer[]): string {
  const blobs = join(dir, 'blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (bytes: Buffer): { digest: string; size: number } => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(join(blobs, hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  const layerDescriptors = layers.map((l) => {
    const bytes = readFileSync(l.file);
    const gzipped = bytes[0] === 0x1f && bytes[1] === 0x8b;
    return { mediaType: l.mediaType ?? `application/vnd.oci.image.layer.v1.tar${gzipped ? '+gzip' : ''}`, ...put(bytes) };
  });
  const config = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })));
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: layerDescriptors,
      }),
    ),
  );
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
    }),
  );
  // As Docker 25+ `docker save` writes beside the OCI layout, for older readers.
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify([{ Config: `blobs/sha256/${config.digest.slice(7)}`, RepoTags: ['wargate-test:latest'], Layers: layerDescriptors.map((d) => `blobs/sha256/${d.digest.slice(7)}`) }]),
  );
  return dir;
}

/** A tar of an OCI layout directory (what Docker 25+ `docker save` writes). */
export function ociArchive(out: string, layoutDir: string): string {
  execFileSync('tar', ['-C', layoutDir, '-cf', out, '.']);
  return out;
}

export function sizeOf(file: string): number {
  return statSync(file).size;
}
