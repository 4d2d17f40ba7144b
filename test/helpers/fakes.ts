// Fakes for unit tests of the session layer's own logic (no sandbox, no SSH).
import type { Level } from '../../src/games/catalog.js';
import type { Sandbox } from '../../src/sandbox/types.js';

/** A level of a game that has no layers: enough for a SessionManager with a fake backend. */
export const fakeLevel = {
  game: { definition: { name: 'fake', hostname: 'fake', limits: {}, levels: [], files: [] }, layers: [] },
  definition: { user: 'fake0', uid: 12000, shell: '/bin/sh', home: [] },
  index: 0,
  password: 'x',
  user: { name: 'fake0', uid: 12000, gid: 12000, groups: [], home: '/home/fake0', shell: '/bin/sh' },
} as unknown as Level;

/** A sandbox that runs nothing and never ends on its own; `overrides` replace its parts. */
export function fakeSandbox(id: string, overrides: Partial<Sandbox> = {}): Sandbox {
  return {
    id,
    pid: 0,
    ended: new Promise<void>(() => {}),
    spawn: () => Promise.reject(new Error('fake')),
    listen: () => Promise.reject(new Error('fake')),
    connect: () => Promise.reject(new Error('fake')),
    stats: () => ({ memoryBytes: 0, pids: 0 }),
    destroy: async () => {},
    ...overrides,
  };
}
