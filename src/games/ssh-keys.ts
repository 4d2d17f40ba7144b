// Level SSH keys. A level with `sshKey: true` also accepts its own ed25519 key, generated once at the
// first build and kept in <stateDir>/games/<game>/keys.json (mode 0600), never in git; a game places
// the private half in an earlier level with {{private-key:LEVEL}}. Public keys an operator lists in
// `authorizedKeys` are accepted as well.
import ssh2, { type ParsedKey } from 'ssh2';
import type { GameDefinition, LevelDefinition } from '../config/schema.js';
import { ensureSaved } from './saved-secrets.js';

export interface KeyPair {
  /** OpenSSH private key format. */
  private: string;
  /** authorized_keys format. */
  public: string;
}

/** Returns user -> key pair for every level with `sshKey`, generating and saving missing ones. */
export function ensureLevelKeys(game: GameDefinition, file: string): Map<string, KeyPair> {
  const users = game.levels.filter((l) => l.sshKey).map((l) => l.user);
  return ensureSaved(file, users, (user) => {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: `${user}@${game.hostname}` });
    return { private: pair.private, public: pair.public };
  });
}

/** The public keys a level accepts: its own generated one and those of `authorizedKeys`. */
export function acceptedKeys(level: LevelDefinition, keys: Map<string, KeyPair>): ParsedKey[] {
  const lines = [...level.authorizedKeys, ...(keys.has(level.user) ? [keys.get(level.user)!.public] : [])];
  return lines.map((line) => ssh2.utils.parseKey(line)).filter((k): k is ParsedKey => !(k instanceof Error));
}
