// The error catalog in code and its table in docs/errors.md must say the same thing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERRORS } from '../src/errors/catalog.js';
import { REPO } from './helpers/gateway.js';

test('docs/errors.md lists exactly the catalog, with the same texts', () => {
  const rows = readFileSync(join(REPO, 'docs/errors.md'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('| WG_ERR_'))
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
  const documented = Object.fromEntries(rows.map(([code, player, operator]) => [code, { player, operator }]));
  assert.deepEqual(documented, ERRORS);
});
