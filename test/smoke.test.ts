// The shortest end-to-end path: a login with the OpenSSH client runs a command in a sandbox, and the
// sandbox is gone afterwards.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ssh } from './helpers/clients.js';
import { sharedGateway } from './helpers/shared-gateway.js';
import { TestGateway } from './helpers/gateway.js';
import { assertNothingLeft } from './helpers/leftovers.js';

let gw: TestGateway;
sharedGateway((g) => (gw = g));

test('exec runs as the level user in the game hostname', async () => {
  const r = await ssh(gw, 'level0', ['--', 'id -un; hostname; exit 3']);
  assert.equal(r.stdout, 'level0\nwargate-demo\n');
  assert.equal(r.code, 3);
  await assertNothingLeft(gw);
});
