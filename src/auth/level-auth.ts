// Password checks for level users. The comparison takes the same time whatever the guess, and an
// unknown user costs the same as a wrong password, so timing tells nothing about either.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { GameCatalog, Level } from '../games/catalog.js';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
const NO_USER = digest('\0wargate: no such user\0');

export class LevelAuthenticator {
  constructor(private readonly catalog: GameCatalog) {}

  /** The level if `password` is right for `user`, else undefined. */
  checkPassword(user: string, password: string): Level | undefined {
    const level = this.catalog.level(user);
    const ok = timingSafeEqual(digest(password), level ? digest(level.password) : NO_USER);
    return ok && level ? level : undefined;
  }
}
