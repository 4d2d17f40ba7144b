// Level passwords: fixed ones come from the game definition; the others are generated once, at the
// first build, and kept in <stateDir>/games/<game>/passwords.json (mode 0600), never in git.
import { randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { GameDefinition } from '../config/schema.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const LENGTH = 32;

export function generatePassword(): string {
  let out = '';
  for (let i = 0; i < LENGTH; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

/** Returns user -> password for every level, generating and saving missing ones. */
export function ensurePasswords(game: GameDefinition, file: string): Map<string, string> {
  const saved: Record<string, string> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  let changed = false;
  const passwords = new Map<string, string>();
  for (const level of game.levels) {
    let pw = level.password ?? saved[level.user];
    if (pw === undefined) {
      pw = generatePassword();
      saved[level.user] = pw;
      changed = true;
    }
    passwords.set(level.user, pw);
  }
  if (changed) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, JSON.stringify(saved, null, 2) + '\n', { mode: 0o600 });
  }
  return passwords;
}
