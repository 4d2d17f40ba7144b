// Structured JSON logs (pino) on stdout. Passwords and keys never reach a log line.
import { pino, type Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    redact: { paths: ['password', '*.password', 'key', '*.key', 'passwords'], censor: '[redacted]' },
  });
}
