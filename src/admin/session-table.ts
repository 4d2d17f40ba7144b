// `wargate sessions` for people: one aligned row per session. Times are the CLI's local time;
// IDLE is the time since the player's last input; a challenge connection's LEVEL names its port.
// Machines read --json instead.
import type { SessionInfo } from '../session/connection-session.js';

const COLUMNS = ['ID', 'GAME', 'LEVEL', 'CLIENT', 'STARTED', 'IDLE', 'ATTACHED', 'MEMORY', 'PIDS'];

export function sessionTable(sessions: SessionInfo[], now = new Date()): string {
  if (sessions.length === 0) return 'no live sessions\n';
  const rows = sessions.map((s) => [
    s.id,
    s.game,
    s.challengePort === undefined ? s.level : `${s.level} (port ${s.challengePort})`,
    clientColumn(s.client),
    localTime(new Date(s.startedAt)),
    duration(now.getTime() - new Date(s.lastActivity).getTime()),
    s.attached ? 'yes' : 'no',
    bytes(s.memoryBytes),
    String(s.pids),
  ]);
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  return [COLUMNS, ...rows].map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd() + '\n').join('');
}

/** 192.0.2.7:51000, [2001:db8::1]:51000; a challenge's daemon, which has no client: "daemon". */
function clientColumn({ address, port }: SessionInfo['client']): string {
  if (port === 0) return address;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function localTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** 42s, 5m03s, 2h07m, 3d04h. */
function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const p = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${p(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${p(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${p(Math.floor(s / 3600) % 24)}h`;
}

/** 812K, 3.4M, 1.2G (binary units, as the config's sizes). */
function bytes(n: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value}B` : `${value < 10 ? value.toFixed(1) : Math.round(value)}${units[unit]}`;
}
