// The layers of an image laid out in a directory: an OCI image layout (oci-layout, index.json ->
// manifest -> layer blobs; what Docker 25+ `docker save` writes too) or the legacy `docker save`
// layout (manifest.json -> <id>/layer.tar). It reads JSON and names files; it unpacks nothing.
import { existsSync, lstatSync, readFileSync, realpathSync } from 'node:fs';
import { arch } from 'node:os';
import { join, relative } from 'node:path';
import { WargateError } from '../errors/catalog.js';

export interface ImageLayer {
  /** The layer's tar (or gzip-compressed tar) file, inside the image directory. */
  file: string;
  /** How the image names it (a digest or a path), for messages. */
  name: string;
  /** The blob's digest ("sha256:..."), checked before the layer is unpacked; none in the legacy layout. */
  digest?: string;
}

const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];
const MANIFEST_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'];
/** Layer media types wargate unpacks: plain and gzip-compressed tar (node-tar tells them apart by their bytes). */
const LAYER_TYPES = [
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
];
/** OCI platform architectures by Node's names. */
const PLATFORM_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

interface Descriptor {
  mediaType?: string;
  digest?: string;
  platform?: { os?: string; architecture?: string };
  annotations?: Record<string, string>;
}

/** The layers of the image in `dir`, bottom first. `label` names the image in errors. */
export function imageLayers(dir: string, label: string): ImageLayer[] {
  const fail = (why: string): never => {
    throw new WargateError('WG_ERR_LAYER_BUILD', `${label}: ${why}`);
  };
  if (existsSync(join(dir, 'oci-layout')) && existsSync(join(dir, 'index.json'))) return ociLayers(dir, fail);
  if (existsSync(join(dir, 'manifest.json'))) return dockerSaveLayers(dir, fail);
  return fail('not an image: expected a `docker save` tarball (manifest.json) or an OCI image layout (oci-layout and index.json)');
}

function ociLayers(dir: string, fail: (why: string) => never): ImageLayer[] {
  const layout = readJson(join(dir, 'oci-layout'), 'oci-layout', fail) as { imageLayoutVersion?: unknown };
  if (typeof layout.imageLayoutVersion !== 'string') fail('oci-layout has no imageLayoutVersion');
  let descriptor = pickManifest((readJson(join(dir, 'index.json'), 'index.json', fail) as { manifests?: Descriptor[] }).manifests, 'index.json', fail);
  // An index may name another index (a multi-platform image): follow it to one manifest.
  for (let depth = 0; INDEX_TYPES.includes(descriptor.mediaType ?? ''); depth++) {
    if (depth > 4) fail('image indexes nested too deeply');
    const nested = readJson(blobPath(dir, descriptor.digest, fail), `index ${descriptor.digest}`, fail) as { manifests?: Descriptor[] };
    descriptor = pickManifest(nested.manifests, `index ${descriptor.digest}`, fail);
  }
  if (!MANIFEST_TYPES.includes(descriptor.mediaType ?? '')) fail(`index.json names a ${descriptor.mediaType ?? 'typeless'} document, not an image manifest`);
  const manifest = readJson(blobPath(dir, descriptor.digest, fail), `manifest ${descriptor.digest}`, fail) as { layers?: Descriptor[] };
  if (!Array.isArray(manifest.layers)) fail(`manifest ${descriptor.digest} lists no layers`);
  return manifest.layers!.map((layer, i) => {
    if (!LAYER_TYPES.includes(layer.mediaType ?? '')) {
      fail(`layer ${i + 1} (${layer.digest}) has media type ${layer.mediaType ?? '(none)'}; wargate unpacks tar and tar+gzip layers only`);
    }
    return { file: blobPath(dir, layer.digest, fail), name: String(layer.digest), digest: layer.digest };
  });
}

/** The one image manifest among an index's, for this machine's platform when there are several. */
function pickManifest(manifests: Descriptor[] | undefined, where: string, fail: (why: string) => never): Descriptor {
  if (!Array.isArray(manifests) || manifests.length === 0) fail(`${where} lists no manifests`);
  // BuildKit adds attestation manifests (platform unknown/unknown): they are not images.
  const images = manifests!.filter((m) => m.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest');
  if (images.length === 1) return images[0];
  const platform = PLATFORM_ARCH[arch()] ?? arch();
  const mine = images.filter((m) => m.platform?.os === 'linux' && m.platform.architecture === platform);
  if (mine.length === 1) return mine[0];
  return fail(`${where} lists ${images.length} images and ${mine.length} for linux/${platform}; save exactly one`);
}

/** blobs/ALGORITHM/HEX for a digest; a digest that is not one (a path in disguise) is refused. */
function blobPath(dir: string, digest: string | undefined, fail: (why: string) => never): string {
  const m = /^(sha256|sha512):([a-f0-9]{64}|[a-f0-9]{128})$/.exec(digest ?? '');
  if (!m) fail(`malformed digest ${JSON.stringify(digest)}`);
  return inside(dir, join('blobs', m![1], m![2]), fail);
}

function dockerSaveLayers(dir: string, fail: (why: string) => never): ImageLayer[] {
  const manifest = readJson(join(dir, 'manifest.json'), 'manifest.json', fail) as { Layers?: unknown }[];
  if (!Array.isArray(manifest) || manifest.length !== 1) fail(`manifest.json lists ${Array.isArray(manifest) ? manifest.length : 'no'} images; save exactly one`);
  const layers = manifest[0].Layers;
  if (!Array.isArray(layers) || !layers.every((l) => typeof l === 'string')) fail('manifest.json: Layers is not a list of paths');
  return (layers as string[]).map((layer) => ({ file: inside(dir, layer, fail), name: layer }));
}

/**
 * `rel` inside `dir` as a regular file: no absolute path or ".." (the manifest is the image's, not
 * ours), and symbolic links (Docker 25+ writes some) resolving inside the image directory only.
 */
function inside(dir: string, rel: string, fail: (why: string) => never): string {
  if (rel.startsWith('/') || rel.split('/').includes('..')) fail(`refusing a path outside the image: ${JSON.stringify(rel)}`);
  let real: string;
  try {
    real = realpathSync(join(dir, rel));
  } catch {
    return fail(`${rel} is missing from the image`);
  }
  const root = realpathSync(dir);
  if (relative(root, real).startsWith('..') || !lstatSync(real).isFile()) fail(`${rel} is not a file inside the image`);
  return real;
}

function readJson(file: string, name: string, fail: (why: string) => never): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    return fail(`${name}: ${(err as Error).message}`);
  }
}
