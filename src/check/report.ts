// How `wargate check` reports: TAP version 13 for test harnesses and monitoring, or one JSON document.
// Pure formatting; nothing here runs anything.
import type { LevelResult } from './check.js';

export function tapReport(results: LevelResult[]): string {
  const lines = ['TAP version 13', `1..${results.length}`];
  results.forEach((r, i) => {
    const name = `${r.game}/${r.level} (${r.seconds.toFixed(1)} s)`;
    if (r.status === 'skip') {
      lines.push(`ok ${i + 1} - ${r.game}/${r.level} # SKIP ${r.reason}`);
    } else if (r.status === 'pass') {
      lines.push(`ok ${i + 1} - ${name}`);
    } else {
      lines.push(`not ok ${i + 1} - ${name}`, '  ---', `  message: ${JSON.stringify(r.reason)}`);
      if (r.stderr) lines.push('  stderr: |', ...r.stderr.split('\n').slice(-15).map((l) => `    ${l}`));
      lines.push('  ...');
    }
  });
  const count = (s: LevelResult['status']) => results.filter((r) => r.status === s).length;
  lines.push(`# pass ${count('pass')}`, `# fail ${count('fail')}`, `# skip ${count('skip')}`);
  return lines.join('\n') + '\n';
}

export function jsonReport(results: LevelResult[]): string {
  const count = (s: LevelResult['status']) => results.filter((r) => r.status === s).length;
  return JSON.stringify({ ok: count('fail') === 0, passed: count('pass'), failed: count('fail'), skipped: count('skip'), levels: results }, null, 2) + '\n';
}
