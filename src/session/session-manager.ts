// The live sessions of this gateway. It is the only place that opens sessions, so shutdown and the
// reaper can trust it to know every sandbox that should exist.
import type { Logger } from 'pino';
import type { Level } from '../games/catalog.js';
import type { SandboxBackend } from '../sandbox/types.js';
import type { SandboxLimits } from '../config/schema.js';
import { ConnectionSession, type ClientAddress, type SessionInfo } from './connection-session.js';

export class SessionManager {
  private readonly live = new Map<string, ConnectionSession>();

  constructor(
    private readonly backend: SandboxBackend,
    private readonly limits: SandboxLimits,
    private readonly logger: Logger,
  ) {}

  open(level: Level, client: ClientAddress): ConnectionSession {
    const session = new ConnectionSession(level, client, this.backend, this.limits, this.logger);
    this.live.set(session.id, session);
    session.log.info({ event: 'session.start' }, 'session started');
    return session;
  }

  async close(session: ConnectionSession, reason: string): Promise<void> {
    session.attached = false;
    await session.close(reason);
    this.live.delete(session.id);
  }

  get size(): number {
    return this.live.size;
  }

  get(id: string): ConnectionSession | undefined {
    return this.live.get(id);
  }

  list(): SessionInfo[] {
    return [...this.live.values()].map((s) => s.info());
  }

  async closeAll(reason: string): Promise<void> {
    await Promise.all([...this.live.values()].map((s) => this.close(s, reason)));
  }
}
