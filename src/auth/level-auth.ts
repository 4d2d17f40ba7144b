// Password and public-key checks for level users. The password comparison takes the same time
// whatever the guess, and an unknown user costs the same as a wrong password, so timing tells
// nothing about either.
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

  /**
   * The level if `key` is one it accepts. Without a signature this only answers whether the key
   * would do (the client's query); with one, the signature over `blob` must verify too.
   */
  checkKey(user: string, key: { data: Buffer }, proof?: { blob: Buffer; signature: Buffer; hashAlgo?: string }): Level | undefined {
    const level = this.catalog.level(user);
    const match = level?.publicKeys.find((k) => k.getPublicSSH().equals(key.data));
    if (!level || !match) return undefined;
    if (proof && match.verify(proof.blob, proof.signature, proof.hashAlgo) !== true) return undefined;
    return level;
  }
}
