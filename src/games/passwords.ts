// Level passwords: fixed ones come from the game definition; the others are generated once, at the
// first build, and kept in <stateDir>/games/<game>/passwords.json (mode 0600), never in git.
import { randomInt } from 'node:crypto';
import type { GameDefinition } from '../config/schema.js';
import { ensureSaved } from './saved-secrets.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const LENGTH = 32;

export function generatePassword(): string {
  let out = '';
  for (let i = 0; i < LENGTH; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

/** Returns user -> password for every level, generating and saving missing ones. */
export function ensurePasswords(game: GameDefinition, file: string): Map<string, string> {
  const fixed = new Map(game.levels.map((l) => [l.user, l.password]));
  return ensureSaved(file, game.levels.map((l) => l.user), generatePassword, (user) => fixed.get(user));
}
