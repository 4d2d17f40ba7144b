// Fakes for unit tests of the session layer's own logic (no sandbox, no SSH).
import type { Level } from '../../src/games/catalog.js';

/** A level of a game that has no layers: enough for a SessionManager with a fake backend. */
export const fakeLevel = {
  game: { definition: { name: 'fake', hostname: 'fake', limits: {}, levels: [], files: [] }, layers: [] },
  definition: { user: 'fake0', uid: 12000, shell: '/bin/sh', home: [] },
  index: 0,
  password: 'x',
  user: { name: 'fake0', uid: 12000, gid: 12000, groups: [], home: '/home/fake0', shell: '/bin/sh' },
} as unknown as Level;
