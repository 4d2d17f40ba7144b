// How the pre-authentication limits (preauth-gate.ts) and the failure penalties (auth-penalties.ts)
// name a client's source: its IPv4 address, or the /64 of its IPv6 address, since one host is
// routinely given a whole /64 and could otherwise take a fresh address for every connection.
import { isIPv6 } from 'node:net';

/** "192.0.2.7" and "::ffff:192.0.2.7" -> "192.0.2.7"; "2001:db8:1:2:a::1" -> "2001:db8:1:2::/64". */
export function sourceKey(address: string): string {
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!isIPv6(address)) return address;
  const bare = address.split('%')[0].toLowerCase();
  const [head, tail] = bare.split('::');
  const groups = (s: string | undefined) => (s ? s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const left = groups(head);
  const right = groups(tail);
  const all = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${all.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}
