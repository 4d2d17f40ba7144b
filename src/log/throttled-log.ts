// Log lines that a flood could multiply (a refused connection, a dropped one): at most `perSecond`
// lines a second are written, the rest are counted and summed up in one line per kind a second
// later, so an attacker cannot fill the disk with the gateway's log or slow it down writing it.
import type { Logger } from 'pino';

export class ThrottledLog {
  private lines = 0;
  private readonly held = new Map<string, { fields: Record<string, unknown>; count: number }>();
  private window: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly message: { line: string; summary: string },
    private readonly perSecond = 10,
  ) {}

  /** Writes `fields` at warn level, or counts it under `kind` (its summary line carries `fields` without the per-line ones). */
  warn(kind: string, fields: Record<string, unknown>, summaryFields: Record<string, unknown> = fields): void {
    if (!this.window) {
      this.window = setTimeout(() => this.flush(), 1000);
      this.window.unref();
    }
    if (this.lines < this.perSecond) {
      this.lines++;
      this.logger.warn(fields, this.message.line);
      return;
    }
    const entry = this.held.get(kind);
    if (entry) {
      entry.count++;
      entry.fields = summaryFields;
    } else {
      this.held.set(kind, { fields: summaryFields, count: 1 });
    }
  }

  /** Drops what is held back (the gateway stops). */
  close(): void {
    clearTimeout(this.window);
    this.window = undefined;
    this.held.clear();
  }

  private flush(): void {
    this.window = undefined;
    this.lines = 0;
    for (const { fields, count } of this.held.values()) this.logger.warn({ ...fields, suppressed: count }, this.message.summary);
    this.held.clear();
  }
}
