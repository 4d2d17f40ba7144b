// Game bases (game.yaml `base:`) with images made here from Debian's busybox-static: a legacy
// `docker save` tarball of two layers (the second deletes a file of the first with a whiteout and
// makes a directory opaque, and holds a setuid program), an OCI layout directory with gzip layers,
// an OCI layout in a tar as Docker 25+ writes it, and a plain root filesystem directory. A real
// login on each sees the image's files and not the host's /usr, whiteouts applied, setuid working,
// build steps run on the base. Hostile tarballs are refused or contained; bad bases are clear errors.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ssh } from './helpers/clients.js';
import { TestGateway } from './helpers/gateway.js';
import { assertNothingLeft } from './helpers/leftovers.js';
import { assertBuildLeftNothing, build, builtLayer, wargate, writeGame } from './helpers/test-games.js';
import { busyboxEntries, dockerSaveLegacy, ociArchive, ociLayout, writeTar, type TarEntry } from './helpers/test-images.js';

const OS_RELEASE = 'ID=wargate-test\nPRETTY_NAME="wargate test image"\n';
// It takes the elevated id as its real id too: busybox (like bash) drops a setuid caller's privileges.
const EUID_C = `#include <stdio.h>
#include <unistd.h>
int main(void) {
    printf("euid %d\\n", (int)geteuid());
    fflush(stdout);
    if (setreuid(geteuid(), geteuid()) != 0) return 126;
    execl("/bin/cat", "cat", "/etc/level1-secret", (char *)0);
    return 127;
}
`;
const LEVEL1_UID = 12201;

let dir: string;
/** The two layers of the test image, as plain and as gzip-compressed tars. */
let layers: { plain: string[]; gzip: string[] };

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'wg-bases-'));
  writeFileSync(join(dir, 'euid.c'), EUID_C);
  execFileSync('gcc', ['-static', '-O2', '-o', join(dir, 'euid'), join(dir, 'euid.c')]);
  const first: TarEntry[] = [
    ...busyboxEntries(OS_RELEASE),
    { name: 'etc/remove-me', type: 'file', data: 'from layer 1\n' },
    { name: 'opaque/', type: 'dir' },
    { name: 'opaque/old', type: 'file', data: 'from layer 1\n' },
    { name: 'opaque/sub/', type: 'dir' },
    { name: 'opaque/sub/deep', type: 'file', data: 'from layer 1\n' },
  ];
  const second: TarEntry[] = [
    { name: 'etc/', type: 'dir' },
    { name: 'etc/.wh.remove-me', type: 'file' },
    { name: 'opaque/', type: 'dir' },
    { name: 'opaque/.wh..wh..opq', type: 'file' },
    { name: 'opaque/new', type: 'file', data: 'from layer 2\n' },
    { name: 'usr/local/', type: 'dir' },
    { name: 'usr/local/bin/', type: 'dir' },
    { name: 'usr/local/bin/euid', type: 'file', source: join(dir, 'euid'), mode: 0o4755, uid: LEVEL1_UID, gid: LEVEL1_UID },
  ];
  layers = { plain: [], gzip: [] };
  for (const [i, entries] of [first, second].entries()) {
    layers.plain.push(writeTar(join(dir, `layer${i + 1}.tar`), entries));
    layers.gzip.push(writeTar(join(dir, `layer${i + 1}.tar.gz`), entries, { gzip: true }));
  }
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** A game of two levels on `base` (a game.yaml value), its level users prefixed by `prefix`. */
function imageGame(prefix: string, base: string): string {
  return `name: ${prefix}
hostname: ${prefix}-host
base: ${base}
levels:
  - user: ${prefix}0
    uid: 12200
    password: ${prefix}0
    shell: /bin/sh
  - user: ${prefix}1
    uid: ${LEVEL1_UID}
    password: ${prefix}-pw1
    shell: /bin/sh
files:
  - { path: /etc/level1-secret, content: "{{password:${prefix}1}}\\n", owner: ${prefix}1, mode: "0400" }
build:
  - run: |
      echo "made on $(grep ^ID= /etc/os-release)" > /etc/made-by-step
      if [ -e /usr/bin/gcc ]; then echo "the host's gcc is here"; else echo "no gcc on this base"; fi
`;
}

const CHECK = [
  'cat /etc/os-release',
  'for f in /usr/bin/python3 /usr/lib/x86_64-linux-gnu /etc/remove-me /opaque/old /opaque/sub; do if [ -e $f ]; then echo "present $f"; else echo "absent $f"; fi; done',
  'ls /opaque',
  'stat -c "%u %g %a" /usr/local/bin/euid',
  '/usr/local/bin/euid',
  'cat /etc/made-by-step',
  'id -u',
  'pwd',
].join('; ');

const expected = (prefix: string, setuid = true) =>
  [
    OS_RELEASE.trimEnd(),
    'absent /usr/bin/python3',
    'absent /usr/lib/x86_64-linux-gnu',
    'absent /etc/remove-me',
    'absent /opaque/old',
    'absent /opaque/sub',
    'new',
    ...(setuid ? [`${LEVEL1_UID} ${LEVEL1_UID} 4755`, `euid ${LEVEL1_UID}`, `${prefix}-pw1`] : []),
    'made on ID=wargate-test',
    '12200',
    `/home/${prefix}0`,
    '',
  ].join('\n');

test('image and directory bases: a login sees the image, not the host /usr; whiteouts, opaque directories and setuid hold; steps run on the base', { timeout: 300_000 }, async () => {
  const state = join(dir, 'state');
  const rootfs = join(dir, 'rootfs');
  mkdirSync(rootfs);
  // A directory base: the image's two layers unpacked by hand (GNU tar, whiteouts applied by hand).
  for (const layer of layers.plain) execFileSync('tar', ['-C', rootfs, '--numeric-owner', '-xpf', layer]);
  rmSync(join(rootfs, 'etc/remove-me'));
  rmSync(join(rootfs, 'etc/.wh.remove-me'));
  rmSync(join(rootfs, 'opaque'), { recursive: true });
  mkdirSync(join(rootfs, 'opaque'));
  writeFileSync(join(rootfs, 'opaque/new'), 'from layer 2\n');
  const games = {
    legacy: writeGame(join(dir, 'legacy'), imageGame('legacy', '{ image: image.tar }')),
    ocidir: writeGame(join(dir, 'ocidir'), imageGame('ocidir', `{ image: ${join(dir, 'oci-layout')} }`)),
    ocitar: writeGame(join(dir, 'ocitar'), imageGame('ocitar', '{ image: ../oci.tar }')),
    rootdir: writeGame(join(dir, 'rootdir'), imageGame('rootdir', `{ directory: ${rootfs} }`)),
  };
  dockerSaveLegacy(join(games.legacy, 'image.tar'), layers.plain);
  ociLayout(join(dir, 'oci-layout'), layers.gzip.map((file) => ({ file })));
  ociLayout(join(dir, 'oci-plain'), layers.plain.map((file) => ({ file })));
  ociArchive(join(dir, 'oci.tar'), join(dir, 'oci-plain'));

  const built: Record<string, string> = {};
  for (const [name, game] of Object.entries(games)) {
    const started = performance.now();
    const r = build(state, game);
    built[name] = builtLayer(r);
    if (name !== 'rootdir') assert.match(r.stdout, new RegExp(`^${name}: unpacking layer 2/2 \\S+$`, 'm'), r.stdout);
    assert.match(r.stdout, new RegExp(`^${name}: build\\.0 \\| no gcc on this base$`, 'm'), 'the step ran on the base, without the host /usr');
    console.log(`${name}: base and layer built in ${Math.round(performance.now() - started)} ms`);
  }
  assertBuildLeftNothing(state);
  const bases = readdirSync(join(state, 'layers')).filter((n) => /^base-(image|dir)-/.test(n));
  assert.equal(bases.length, 4, `one unpacked base per image and directory: ${bases}`);

  const listed = JSON.parse(wargate('games', '--state-dir', state, '--games', games.legacy, games.rootdir, '--json').stdout) as { base: { kind: string; path: string } }[];
  assert.deepEqual(listed.map((g) => g.base), [{ kind: 'image', path: join(games.legacy, 'image.tar') }, { kind: 'directory', path: rootfs }]);
  assert.match(wargate('games', '--state-dir', state, '--games', games.ocitar).stdout, new RegExp(`^  base: image ${join(dir, 'oci.tar')}$`, 'm'));

  const gw = await TestGateway.start({ stateDir: state, config: { games: Object.values(games) } });
  try {
    for (const name of Object.keys(games)) {
      const r = await ssh(gw, `${name}0`, ['--', CHECK], '', `${name}0`);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.equal(r.stdout, expected(name), name);
    }
    // A terminal session on a base without bash or util-linux: the helpers start the shell themselves.
    const tty = await ssh(gw, 'legacy0', ['-tt', '--', 'tty; ps -o pid,comm | head -3'], '', 'legacy0');
    assert.equal(tty.code, 0, tty.stderr);
    assert.match(tty.stdout, /^\/dev\/pts\/0\r\n/);
  } finally {
    await gw.stop();
    await assertNothingLeft(gw);
    gw.cleanup();
  }

  // The unpacked base is cached by the image's hash: a changed game reuses it.
  const base = readdirSync(join(state, 'layers')).filter((n) => n.startsWith('base-image-'));
  const inodes = base.map((n) => statSync(join(state, 'layers', n)).ino);
  writeFileSync(join(games.legacy, 'game.yaml'), readFileSync(join(games.legacy, 'game.yaml'), 'utf8').replace('legacy-host', 'legacy-host2'));
  const again = build(state, games.legacy);
  assert.notEqual(builtLayer(again), built.legacy);
  assert.doesNotMatch(again.stdout, /unpacking/, 'the image was not unpacked again');
  assert.deepEqual(readdirSync(join(state, 'layers')).filter((n) => n.startsWith('base-image-')).map((n) => statSync(join(state, 'layers', n)).ino), inodes);
});

/** Builds a one-level busybox game on the image `image` (a path); returns the CLI's result. */
function buildOn(name: string, image: string, extra = ''): ReturnType<typeof build> {
  const game = writeGame(join(dir, name), `name: ${name}\nhostname: h\nbase: { image: ${image} }\nlevels:\n  - { user: ${name}0, uid: 12200, password: x, shell: /bin/sh }\n${extra}`);
  return build(join(dir, `${name}-state`), game);
}

test('hostile layers: "..", absolute paths and writes through symbolic links are refused; whiteouts through links hide nothing outside', { timeout: 120_000 }, () => {
  const outside = join(dir, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'victim'), 'precious\n');
  const base = busyboxEntries(OS_RELEASE);
  const cases: [string, TarEntry[], RegExp][] = [
    ['dotdot', [{ name: '../../../escape-dotdot', type: 'file', data: 'x' }], /refused: path with "\.\." "\.\.\/\.\.\/\.\.\/escape-dotdot"/],
    ['absolute', [{ name: join(outside, 'escape-absolute'), type: 'file', data: 'x' }], /refused: absolute path/],
    ['through-symlink', [{ name: 'link', type: 'symlink', linkname: outside }, { name: 'link/escape-symlink', type: 'file', data: 'x' }], /refused: "link\/escape-symlink" goes through "link", a symbolic link or a file/],
    ['relative-symlink', [{ name: 'd/', type: 'dir' }, { name: 'd/up', type: 'symlink', linkname: '../../../../../../..' + outside }, { name: 'd/up/escape-relative', type: 'file', data: 'x' }], /refused: "d\/up\/escape-relative" goes through "d\/up"/],
    ['hardlink', [{ name: 'link', type: 'symlink', linkname: outside }, { name: 'hl', type: 'hardlink', linkname: 'link/victim' }], /refused: hard link "hl" to "link\/victim"/],
    ['hardlink-up', [{ name: 'hl', type: 'hardlink', linkname: '../../victim' }], /refused: path with "\.\."/],
  ];
  for (const [name, entries, message] of cases) {
    const layer = writeTar(join(dir, `${name}.tar`), [...base, ...entries]);
    const r = buildOn(name, dockerSaveLegacy(join(dir, `${name}-image.tar`), [layer]));
    assert.equal(r.status, 2, `${name}: ${r.stdout}`);
    assert.match(r.stderr, /^wargate: WG_ERR_LAYER_BUILD: /, name);
    assert.match(r.stderr, message, name);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
    assertBuildLeftNothing(join(dir, `${name}-state`));
    assert.deepEqual(readdirSync(join(dir, `${name}-state`, 'layers')).filter((n) => n.startsWith('base-image-')), [], `${name}: no base left`);
  }
  assert.deepEqual(readdirSync(outside), ['victim'], 'nothing was written outside');
  assert.ok(!existsSync(join(dir, '..', 'escape-dotdot')) && !existsSync('/escape-dotdot'));

  // Whiteouts below a symbolic link of a lower layer name nothing of the root filesystem: they delete nothing.
  const lower = writeTar(join(dir, 'wh1.tar'), [...base, { name: 'link', type: 'symlink', linkname: outside }]);
  const upper = writeTar(join(dir, 'wh2.tar'), [{ name: 'link/.wh.victim', type: 'file' }, { name: 'link/.wh..wh..opq', type: 'file' }, { name: 'link2', type: 'symlink', linkname: outside }]);
  const r = buildOn('whiteouts', dockerSaveLegacy(join(dir, 'wh-image.tar'), [lower, upper]));
  builtLayer(r);
  assert.equal(readFileSync(join(outside, 'victim'), 'utf8'), 'precious\n', 'the file the whiteouts pointed at through the link is intact');
});

test('bad bases: a missing path, an unknown format, a layer media type other than tar or tar+gzip, a shell the base lacks', { timeout: 120_000 }, () => {
  const missing = buildOn('missing', 'nosuch.tar');
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, new RegExp(`^wargate: WG_ERR_CONFIG_INVALID: ${join(dir, 'missing', 'game.yaml')}:3:16: base\\.image: ${join(dir, 'missing', 'nosuch.tar')}: no such file or directory\\n$`));

  const both = writeGame(join(dir, 'both'), 'name: both\nhostname: h\nbase: { directory: a, image: b }\nlevels:\n  - { user: both0, uid: 12200 }\n');
  const twice = build(join(dir, 'both-state'), both);
  assert.equal(twice.status, 2);
  assert.match(twice.stderr, new RegExp(`^wargate: WG_ERR_CONFIG_INVALID: ${join(both, 'game.yaml')}:3:7: base: exactly one of directory and image\\n$`));

  const notImage = buildOn('notimage', writeTar(join(dir, 'plain.tar'), [{ name: 'hello', type: 'file', data: 'x' }]));
  assert.equal(notImage.status, 2);
  assert.match(notImage.stderr, /WG_ERR_LAYER_BUILD: .*plain\.tar: not an image: expected a `docker save` tarball \(manifest\.json\) or an OCI image layout \(oci-layout and index\.json\)\n$/);

  const zstd = ociLayout(join(dir, 'oci-zstd'), [{ file: layers.plain[0], mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' }]);
  const r = buildOn('zstd', zstd);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /WG_ERR_LAYER_BUILD: .*oci-zstd: layer 1 \(sha256:[0-9a-f]{64}\) has media type application\/vnd\.oci\.image\.layer\.v1\.tar\+zstd; wargate unpacks tar and tar\+gzip layers only\n$/);

  const image = dockerSaveLegacy(join(dir, 'busybox.tar'), [layers.plain[0]]);
  const game = writeGame(join(dir, 'nobash'), `name: nobash\nhostname: h\nbase: { image: ${image} }\nlevels:\n  - user: nobash0\n    uid: 12200\n    password: x\n`);
  const nobash = build(join(dir, 'nobash-state'), game);
  assert.equal(nobash.status, 2);
  assert.match(nobash.stderr, new RegExp(`^wargate: WG_ERR_CONFIG_INVALID: ${join(game, 'game.yaml')}:5:5: levels\\.0\\.shell: /bin/bash is not an executable file of the game's layer or its base \\(image ${image}\\) \\(/bin/bash is the default: a level may name its \`shell\`\\)\\n$`));
  for (const state of ['missing', 'notimage', 'zstd', 'nobash']) if (existsSync(join(dir, `${state}-state`))) assertBuildLeftNothing(join(dir, `${state}-state`));
});
