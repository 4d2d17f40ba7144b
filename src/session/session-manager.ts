// The live sessions of this gateway. It is the only place that opens sessions, so shutdown and the
// reaper can trust it to know every sandbox that should exist; and so it is where admission is
// decided: a session counts from open() until its close() has completed.
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { Level } from '../games/catalog.js';
import type { SandboxBackend } from '../sandbox/types.js';
import type { SandboxLimits } from '../config/schema.js';
import { Admission, UNLIMITED, type AdmissionLimits, type Release } from './admission.js';
import { ConnectionSession, type ClientAddress, type LoopbackSsh, type SandboxServices, type SessionInfo } from './connection-session.js';

export class SessionManager {
  private readonly live = new Map<string, { session: ConnectionSession; release: Release }>();
  private readonly admission: Admission;

  constructor(
    private readonly backend: SandboxBackend,
    private readonly limits: SandboxLimits,
    private readonly logger: Logger,
    /** The config's `admission` (its defaults are in the schema); none given, none enforced. */
    admission: AdmissionLimits = UNLIMITED,
    /** The gateway's SSH port inside each sandbox; none given, none offered. */
    private readonly loopbackSsh?: LoopbackSsh,
    /** The games' localhost services, opened in each sandbox; none given, none offered. */
    private readonly services?: SandboxServices,
  ) {
    this.admission = new Admission(admission);
  }

  /**
   * Opens a session and starts its sandbox, or throws WG_ERR_TOO_MANY_SANDBOXES or
   * WG_ERR_TOO_MANY_FROM_ADDRESS having created nothing. The slot is taken in the same synchronous
   * step as the check, so logins arriving together cannot both pass the last free slot.
   */
  open(level: Level, client: ClientAddress): ConnectionSession {
    const release = this.admission.admit(client.address);
    let session: ConnectionSession;
    try {
      session = new ConnectionSession(level, client, this.backend, this.limits, this.logger, this.loopbackSsh, this.services);
    } catch (err) {
      release();
      throw err;
    }
    this.live.set(session.id, { session, release });
    session.log.info({ event: 'session.start' }, 'session started');
    return session;
  }

  /**
   * The live session of `level` whose join token is `token`, if there is one (a second connection
   * into the same sandbox). Tokens are compared in constant time.
   */
  findJoinable(level: Level, token: string): ConnectionSession | undefined {
    const wanted = Buffer.from(token);
    for (const { session } of this.live.values()) {
      const have = Buffer.from(session.joinToken);
      if (session.level === level && session.open && have.length === wanted.length && timingSafeEqual(have, wanted)) return session;
    }
    return undefined;
  }

  /** A connection leaves its session (`detach` from session.attach); the last one out closes it. */
  async leave(session: ConnectionSession, detach: () => number, reason: string): Promise<void> {
    if (detach() === 0) await this.close(session, reason);
  }

  async close(session: ConnectionSession, reason: string): Promise<void> {
    try {
      await session.close(reason);
    } finally {
      const entry = this.live.get(session.id);
      if (entry?.session === session) {
        this.live.delete(session.id);
        entry.release();
      }
    }
  }

  get size(): number {
    return this.live.size;
  }

  /** Admitted sessions of one client address (as admission counts them). */
  countFrom(address: string): number {
    return this.admission.count(address);
  }

  get(id: string): ConnectionSession | undefined {
    return this.live.get(id)?.session;
  }

  /** The live sessions themselves (the cron scheduler walks them at each tick). */
  *sessions(): IterableIterator<ConnectionSession> {
    for (const { session } of this.live.values()) yield session;
  }

  list(): SessionInfo[] {
    return [...this.live.values()].map(({ session }) => session.info());
  }

  async closeAll(reason: string): Promise<void> {
    await Promise.all([...this.live.values()].map(({ session }) => this.close(session, reason)));
  }
}
