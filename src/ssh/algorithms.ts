// The algorithm policy of the SSH server: what ssh2 may negotiate, and which user-key signatures
// are refused. It only lists names; ssh2 does the cryptography. It must never offer an algorithm
// ssh2's server cannot complete (diffie-hellman-group-exchange), nor one ssh-audit fails.
import type ssh2 from 'ssh2';

/**
 * - kex: curve25519 and the fixed large MODP groups with SHA-2. Not offered: SHA-1 groups; DH group
 *   exchange (ssh2's server offers it but aborts when a client picks it); the NIST ECDH curves
 *   (ssh-audit fails them as weak curves; every client we test has curve25519). ssh2 appends
 *   kex-strict-s-v00@openssh.com itself, the Terrapin countermeasure (CVE-2023-48795): with a client
 *   that offers kex-strict-c-v00, a packet before KEXINIT ends the handshake and sequence numbers
 *   restart at every NEWKEYS.
 * - host key: ed25519, and RSA only with SHA-2 signatures (rsa-sha2-512/256). ssh2 would add the
 *   SHA-1 "ssh-rsa" for any RSA key unless told not to: see patches/README.md.
 * - ciphers: AEAD (chacha20-poly1305, AES-GCM) and AES-CTR; never CBC.
 * - MACs (used with CTR only): SHA-2, encrypt-then-MAC first. The encrypt-and-MAC variants stay as
 *   the last choice: dropbear 2022.83 (Debian 12's dbclient) has no -etm MAC, and picking AES-CTR it
 *   needs them (ssh-audit warns about them: see README.md, "Security"). No SHA-1 MAC.
 * - compression: zlib@openssh.com, which starts only after authentication (plain zlib would
 *   decompress an unauthenticated client's data).
 */
export const ALGORITHMS = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'diffie-hellman-group16-sha512', 'diffie-hellman-group18-sha512', 'diffie-hellman-group14-sha256'],
  serverHostKey: ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256'],
  cipher: [
    'chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com',
    'aes256-ctr', 'aes192-ctr', 'aes128-ctr',
  ],
  hmac: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512'],
  compress: ['none', 'zlib@openssh.com'],
} as const;

export function sshAlgorithms(): ssh2.Algorithms {
  return ALGORITHMS as unknown as ssh2.Algorithms;
}

/**
 * Whether a user's public-key signature (or the offer of one) would be made with SHA-1: "ssh-rsa"
 * without rsa-sha2-256/512 (ssh2 names those "ssh-rsa" with a hash algorithm) and DSA. Refused as
 * OpenSSH 8.8 refuses them by default (chosen-prefix collisions on SHA-1, "SHA-1 is a Shambles").
 */
export function isSha1Signature(key: { algo: string }, hashAlgo: string | undefined): boolean {
  return key.algo === 'ssh-dss' || (key.algo === 'ssh-rsa' && hashAlgo === undefined);
}
