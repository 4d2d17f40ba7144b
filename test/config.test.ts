// Configuration errors name the file, the line and the field, and say what was expected.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseYaml } from '../src/config/load-yaml.js';
import { gameSchema, serverConfigSchema } from '../src/config/schema.js';

function problems(text: string, schema: typeof gameSchema | typeof serverConfigSchema = gameSchema) {
  try {
    parseYaml(text, 'game.yaml', schema);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    assert.equal(err.code, 'WG_ERR_CONFIG_INVALID');
    return err.problems;
  }
  assert.fail('the file was accepted');
}

const GOOD = `name: demo
hostname: demo-host
levels:
  - user: level0
    uid: 12000
    password: level0
`;

test('a valid game definition loads, with defaults filled in', () => {
  const game = parseYaml(GOOD, 'game.yaml', gameSchema);
  assert.equal(game.levels[0].shell, '/bin/bash');
  assert.deepEqual(game.levels[0].home, []);
});

test('a wrong type is reported at its line with the dotted field path', () => {
  const p = problems(GOOD.replace('uid: 12000', 'uid: twelve'));
  assert.deepEqual(p.map(({ line, field }) => ({ line, field })), [{ line: 5, field: 'levels.0.uid' }]);
  assert.match(p[0].message, /expected number/);
  assert.equal(p[0].file, 'game.yaml');
});

test('a missing field is reported at its parent, saying it is missing', () => {
  const p = problems(GOOD.replace('    uid: 12000\n', ''));
  assert.equal(p[0].field, 'levels.0.uid');
  assert.equal(p[0].line, 4);
  assert.match(p[0].message, /missing/);
});

test('an unknown field is named', () => {
  const p = problems(GOOD + 'colour: blue\n');
  assert.equal(p[0].line, 7);
  assert.equal(p[0].field, 'colour');
  assert.match(p[0].message, /unknown field "colour"/);
});

test('a file mode must be a quoted octal string', () => {
  const p = problems(GOOD + '    home:\n      - path: x\n        content: y\n        mode: 644\n');
  assert.equal(p[0].field, 'levels.0.home.0.mode');
  assert.equal(p[0].line, 10);
});

test('duplicate users and uids, and unknown owners, are refused', () => {
  const text = GOOD + '  - user: level0\n    uid: 12000\n    home:\n      - { path: f, content: x, owner: ghost }\n';
  const fields = problems(text).map((x) => x.field).sort();
  assert.deepEqual(fields, ['levels.1.home.0.owner', 'levels.1.uid', 'levels.1.user']);
});

test('paths may not climb out with ..', () => {
  const p = problems(GOOD + '    home:\n      - { path: ../../etc/shadow, content: x }\n');
  assert.equal(p[0].field, 'levels.0.home.0.path');
});

test('YAML syntax errors carry their position', () => {
  const p = problems('name: demo\nlevels: [\n');
  assert.match(p[0].message, /YAML syntax/);
  assert.ok(p[0].line >= 2);
});

test('server config: bad port and unknown keys are both reported', () => {
  const p = problems('listen: { port: 99999 }\ngames: [a]\nkeepalive: { interval: 5 }\n', serverConfigSchema);
  assert.deepEqual(p.map((x) => [x.line, x.field]).sort(), [[1, 'listen.port'], [3, 'keepalive.interval']]);
});
