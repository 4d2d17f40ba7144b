// One gateway for all the tests of a file: started before them; after them stopped, proven to have
// left nothing behind, and its state dir removed.
import { after, before } from 'node:test';
import { TestGateway, type GatewayOptions } from './gateway.js';
import { assertNothingLeft } from './leftovers.js';

/** `use` receives the gateway once it listens (usage: `let gw; sharedGateway((g) => (gw = g));`). */
export function sharedGateway(use: (gw: TestGateway) => void, options?: GatewayOptions): void {
  let gw: TestGateway | undefined;
  before(async () => use((gw = await TestGateway.start(options))));
  after(async () => {
    if (!gw) return;
    await gw.stop();
    try {
      await assertNothingLeft(gw);
    } finally {
      gw.cleanup();
    }
  });
}
