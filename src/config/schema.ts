// The one source of truth for what a server config and a game definition may contain.
// Everything else reads the types inferred here; nothing re-validates by hand.
import ssh2 from 'ssh2';
import { z } from 'zod';

const unixName = z
  .string()
  .regex(/^[a-z_][a-z0-9_-]{0,30}$/, 'a lower-case unix name (letters, digits, "_" and "-", at most 31 characters)');

/** Octal file mode written as a string ("0640", "4750") so YAML does not read it as decimal. */
const fileMode = z
  .string()
  .regex(/^0?[0-7]{3,4}$/, 'an octal mode in quotes, like "0640" or "4750"')
  .transform((s) => parseInt(s, 8));

const absolutePath = z
  .string()
  .regex(/^\/[^\0]*$/, 'an absolute path')
  .refine((p) => !p.split('/').includes('..'), 'a path without ".."');

const relativePath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'a relative path without ".."');

const size = z
  .string()
  .regex(/^[1-9][0-9]*[kmg]$/i, 'a size like "64m" or "1g"');

/** What one sandbox may use. The server config sets defaults; a game may override any of them. */
const limitFields = {
  /** Memory of all its processes, its writable layer (tmpfs) and the kernel memory charged to it. */
  memory: size,
  /** Processes and threads at once (a fork bomb meets EAGAIN here). */
  pids: z.number().int().min(8).max(100_000),
  /** Share of CPU time against other sandboxes (cgroup v2 weight: 1-10000, 100 is even). */
  cpuWeight: z.number().int().min(1).max(10_000),
  /** Size cap of the writable layer (home, /tmp and every other write) and its inode count. */
  writableSize: size,
  writableInodes: z.number().int().min(64).max(10_000_000),
  /** A session with no input for this long ends (0: never). */
  idleTimeoutSeconds: z.number().int().min(0).max(7 * 86_400),
  /** A session ends after this long, whatever it does (0: never). */
  maxSessionSeconds: z.number().int().min(0).max(30 * 86_400),
  /** How long before either end the player is warned on their terminal. */
  warnSeconds: z.number().int().min(0).max(3600),
};

export const DEFAULT_LIMITS = {
  memory: '256m',
  pids: 256,
  cpuWeight: 100,
  writableSize: '64m',
  writableInodes: 16384,
  idleTimeoutSeconds: 1800,
  maxSessionSeconds: 14_400,
  warnSeconds: 60,
};

/** Limits before authentication, as OpenSSH's defaults where it has one (LoginGraceTime 30, MaxStartups 10:30:100). */
export const DEFAULT_PREAUTH = {
  loginGraceSeconds: 30,
  maxStartups: { start: 10, rate: 30, full: 100 },
  maxStartupsPerAddress: 10,
  penalty: { freeFailures: 5, firstDelaySeconds: 0.5, maxDelaySeconds: 15, halfLifeSeconds: 300 },
};

export const gameLimitsSchema = z.object(limitFields).partial().strict();

/** A file placed in the game layer: literal content, a file from the game folder, or a C source compiled at build. */
export const fileSchema = z
  .object({
    path: z.string().min(1),
    content: z.string().optional(),
    source: relativePath.optional(),
    compile: relativePath.optional(),
    owner: unixName.optional(),
    group: unixName.optional(),
    mode: fileMode.optional(),
    /** A directory rather than a file (mode defaults to "0755"), e.g. a world-writable spool: mode "1733". */
    directory: z.boolean().optional(),
  })
  .strict()
  .refine((f) => [f.content, f.source, f.compile].filter((x) => x !== undefined).length <= 1, {
    message: 'at most one of content, source and compile',
  })
  .refine((f) => !f.directory || [f.content, f.source, f.compile].every((x) => x === undefined), {
    message: 'a directory without content, source or compile',
  });

/** The shortest interval between two runs of a cron job: each run costs a process start per live sandbox. */
export const MIN_CRON_SECONDS = 10;

/**
 * A periodic job (src/session/cron.ts): every `every` seconds it runs in each live sandbox of the
 * game, as `level`, with /bin/sh -c, no terminal, a minimal environment and its output discarded.
 */
export const cronJobSchema = z
  .object({
    every: z.number().int().min(MIN_CRON_SECONDS, `at least ${MIN_CRON_SECONDS} seconds`).max(86_400),
    /** The level user it runs as (its own login shell is not used). */
    level: unixName,
    command: z.string().min(1).max(4096),
    /** A run still going after this long is killed with its process group; default: `every`. */
    timeout: z.number().int().min(1).max(86_400).optional(),
  })
  .strict();

/**
 * A bare git repository in the game layer, reached from inside a sandbox over the gateway's own
 * SSH port (`git clone ssh://LEVEL@localhost:2220/PATH`). Pushes land in that login's sandbox only.
 */
export const repositorySchema = z
  .object({
    path: absolutePath,
    /** The level user who owns it (and so may push to it). */
    owner: unixName,
    /** A directory of the game folder whose files are the first commit ({{password:LEVEL}} filled in). */
    from: relativePath.optional(),
    /** A script of the game folder installed as the pre-receive hook: exiting non-zero refuses the push. */
    preReceive: relativePath.optional(),
  })
  .strict();

/**
 * What a game's sandboxes are made on (src/games/base-source.ts). Omitted: the host's own system,
 * its /usr bound read-only. `directory`: a root filesystem tree. `image`: a tarball written by
 * `docker save`, or an OCI image layout (a directory, or a tar of one), whose layers are unpacked.
 * Paths are relative to the game folder, or absolute. The base brings its own /usr: nothing of
 * the host's is bound in.
 */
export const baseSchema = z
  .object({
    directory: z.string().min(1).optional(),
    image: z.string().min(1).optional(),
  })
  .strict()
  .refine((b) => (b.directory === undefined) !== (b.image === undefined), { message: 'exactly one of directory and image' });

/** A build step's time limit when it names none. */
export const DEFAULT_BUILD_STEP_SECONDS = 600;

/**
 * A build step (src/games/build-steps.ts): after the homes, files and repositories are placed, `run`
 * runs with /bin/sh -e -c as root inside a build sandbox whose root is the layer being built over
 * the game's base, the game folder read-only at /build, no network, at most `timeout` seconds.
 * {{password:LEVEL}} and {{private-key:LEVEL}} are filled in. What it writes is part of the layer.
 */
export const buildStepSchema = z
  .object({
    run: z.string().min(1).max(100_000),
    timeout: z.number().int().min(1).max(86_400).optional(),
  })
  .strict();

/** Ports one service entry may span ("31000-31010"): each is a listener in every sandbox of the game. */
export const MAX_SERVICE_PORTS = 64;

/** The ports of a service's `port` ("A-B" or a number), validated by the schema. */
export function servicePorts(port: number | string): number[] {
  if (typeof port === 'number') return [port];
  const [first, last] = port.split('-').map(Number);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

/**
 * A localhost service (src/services/): from inside every sandbox of the game, 127.0.0.1:PORT reaches
 * it. per-connection: each connection runs `command` in that player's own sandbox as `level`, with
 * the connection as its stdin and stdout (inetd-style). daemon: one `command` per game, started with
 * the gateway in a sandbox of its own and restarted with backoff; it binds 127.0.0.1:PORT itself and
 * the gateway relays each player's connection to it. tls: the gateway terminates TLS (a self-signed
 * certificate per game, kept in the state dir): the command sees plaintext.
 */
export const serviceSchema = z
  .object({
    port: z.union([
      z.number().int().min(1, 'a port from 1 to 65535').max(65535, 'a port from 1 to 65535'),
      z
        .string()
        .regex(/^[0-9]{1,5}-[0-9]{1,5}$/, 'a port (30000) or a range of ports ("31000-31010")')
        .refine((r) => {
          if (!/^[0-9]+-[0-9]+$/.test(r)) return true; // said above
          const [first, last] = r.split('-').map(Number);
          return first >= 1 && last <= 65535 && first <= last && last - first < MAX_SERVICE_PORTS;
        }, `a range "A-B" with 1 <= A <= B <= 65535 and at most ${MAX_SERVICE_PORTS} ports`),
    ]),
    /** The level user the command runs as. */
    level: unixName,
    /** Run with /bin/sh -c, without a terminal; SERVICE_PORT holds the port connected to. */
    command: z.string().min(1).max(4096),
    mode: z.enum(['per-connection', 'daemon']),
    tls: z.boolean().optional(),
    /**
     * The levels whose sandboxes offer it (default: every level of the game). Each port is a
     * listening socket in every sandbox that offers it, a few kB of kernel memory each: a port only
     * one level plays need not cost every idle sandbox of the game.
     */
    levels: z.array(unixName).min(1).optional(),
  })
  .strict();

/**
 * Limits of one connection's sandbox on a per-connection challenge port, close to what CTF jails
 * (nsjail's listen mode, kCTF) give a connection: seconds of CPU, megabytes of memory, a handful of
 * processes, and a wall-clock end.
 */
export const DEFAULT_CHALLENGE_LIMITS = {
  /** The connection and its sandbox end this long after the connect, whatever the handler does. */
  wallSeconds: 300,
  /** CPU seconds of each process (RLIMIT_CPU): SIGXCPU, then SIGKILL a second later. */
  cpuSeconds: 10,
  memory: '64m',
  pids: 16,
  cpuWeight: 100,
  writableSize: '16m',
  writableInodes: 4096,
};

export const DEFAULT_CHALLENGE_CAPS = { maxConnections: 100, maxPerAddress: 8 };

const portNumber = z.number().int().min(1, 'a port from 1 to 65535').max(65535, 'a port from 1 to 65535');

/**
 * A network-facing challenge (src/challenges/): a public TCP port of the gateway that players reach
 * from anywhere (`nc host 5842`). per-connection: each connection gets a fresh sandbox of the game's
 * layer with `command` as `level`, the connection as its stdin and stdout, gone when either ends (as
 * nsjail's listen mode). daemon: one `command` for the game, in a sandbox of its own whose network
 * is its loopback alone, supervised and restarted with backoff; it binds 127.0.0.1:PORT itself and
 * the gateway relays each connection to it.
 */
export const challengeSchema = z
  .object({
    port: portNumber,
    /** The address to listen on; default: the server's `challenges.host`. */
    address: z.string().min(1).optional(),
    mode: z.enum(['per-connection', 'daemon']),
    /** The level user the command runs as, with /bin/sh -c; CHALLENGE_PORT holds the port. */
    level: unixName,
    command: z.string().min(1).max(4096),
    /** Where the handler's stderr goes: to the player with its stdout, or nowhere. */
    stderr: z.enum(['connection', 'discard']).default('discard'),
    /** One connection's sandbox (per-connection), or the daemon's (memory, pids, cpuWeight, writable*). */
    limits: z
      .object({
        wallSeconds: z.number().int().min(1).max(86_400),
        cpuSeconds: z.number().int().min(1).max(86_400),
        memory: size,
        pids: z.number().int().min(4).max(100_000),
        cpuWeight: z.number().int().min(1).max(10_000),
        writableSize: size,
        writableInodes: z.number().int().min(64).max(10_000_000),
      })
      .partial()
      .strict()
      .default({})
      .transform((given) => ({ ...DEFAULT_CHALLENGE_LIMITS, ...given })),
    /** Connections at once on this port, in all and from one address (an IPv6 /64); beyond, a one-line refusal. */
    maxConnections: z.number().int().min(1).max(100_000).default(DEFAULT_CHALLENGE_CAPS.maxConnections),
    maxPerAddress: z.number().int().min(1).max(100_000).default(DEFAULT_CHALLENGE_CAPS.maxPerAddress),
  })
  .strict();

/** One authorized_keys line: "ssh-ed25519 AAAA... comment". */
const publicKeyLine = z.string().refine((line) => !(ssh2.utils.parseKey(line) instanceof Error), 'an SSH public key ("ssh-ed25519 AAAA...")');

export const levelSchema = z
  .object({
    user: unixName,
    uid: z.number().int().min(1000).max(60000),
    /** Fixed password (level 0 usually); omitted: generated once and kept in the state dir. */
    password: z.string().min(1).max(128).optional(),
    shell: absolutePath.default('/bin/bash'),
    /** Shown to the player at login, after the banner. */
    goal: z.string().optional(),
    /** Files in the level's home (paths relative to it); owner defaults to the level, mode to 0640. */
    home: z.array(fileSchema).default([]),
    /**
     * Also accept this level's own SSH key (ed25519, generated once and kept in the state dir);
     * {{private-key:LEVEL}} in a file's content places its private half, usually in an earlier level.
     */
    sshKey: z.boolean().default(false),
    /** Public keys (authorized_keys lines) that may log in as this level. */
    authorizedKeys: z.array(publicKeyLine).default([]),
    /** `wargate check`: a Python script of the game folder that plays this level and prints the next level's password last. */
    solver: relativePath.optional(),
  })
  .strict();

export const gameSchema = z
  .object({
    name: unixName,
    hostname: z
      .string()
      .regex(/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/, 'a host name (letters, digits, "." and "-")'),
    /** Directory of per-level password files inside the sandbox; default /etc/<name>_pass. */
    passwordDir: absolutePath.optional(),
    banner: z.string().optional(),
    levels: z.array(levelSchema).min(1),
    /** Further files of the game layer, at absolute paths. */
    files: z.array(fileSchema).default([]),
    repositories: z.array(repositorySchema).default([]),
    /** Shell steps run in a build sandbox after files, homes and repositories are placed (see buildStepSchema). */
    build: z.array(buildStepSchema).default([]),
    /** Periodic jobs run inside every live sandbox of the game. */
    cron: z.array(cronJobSchema).default([]),
    /** Services on localhost inside every sandbox of the game (see serviceSchema). */
    services: z.array(serviceSchema).default([]),
    /** Public TCP ports served from sandboxes of the game (see challengeSchema). */
    challenges: z.array(challengeSchema).default([]),
    /** Overrides of the server's sandbox limits for this game. */
    limits: gameLimitsSchema.default({}),
    /** The system under the game layer (see baseSchema); omitted: the host's. */
    base: baseSchema.optional(),
  })
  .strict()
  .superRefine((game, ctx) => {
    const seenUsers = new Map<string, number>();
    const seenUids = new Map<number, number>();
    game.levels.forEach((level, i) => {
      if (seenUsers.has(level.user)) {
        ctx.addIssue({ code: 'custom', path: ['levels', i, 'user'], message: `user "${level.user}" is already level ${seenUsers.get(level.user)}` });
      }
      if (seenUids.has(level.uid)) {
        ctx.addIssue({ code: 'custom', path: ['levels', i, 'uid'], message: `uid ${level.uid} is already used by level ${seenUids.get(level.uid)}` });
      }
      seenUsers.set(level.user, i);
      seenUids.set(level.uid, i);
    });
    const known = new Set([...seenUsers.keys(), 'root']);
    const checkOwners = (files: { owner?: string; group?: string }[], at: (string | number)[]) =>
      files.forEach((f, j) => {
        for (const key of ['owner', 'group'] as const) {
          const who = f[key];
          if (who !== undefined && !known.has(who)) {
            ctx.addIssue({ code: 'custom', path: [...at, j, key], message: `"${who}" is not a level user of this game (nor root)` });
          }
        }
      });
    game.levels.forEach((level, i) => checkOwners(level.home, ['levels', i, 'home']));
    checkOwners(game.files, ['files']);
    checkOwners(game.repositories, ['repositories']);
    game.cron.forEach((job, j) => {
      if (!seenUsers.has(job.level)) {
        ctx.addIssue({ code: 'custom', path: ['cron', j, 'level'], message: `"${job.level}" is not a level user of this game` });
      }
    });
    const portOwner = new Map<number, number>();
    game.services.forEach((service, j) => {
      if (!seenUsers.has(service.level)) {
        ctx.addIssue({ code: 'custom', path: ['services', j, 'level'], message: `"${service.level}" is not a level user of this game` });
      }
      service.levels?.forEach((user, k) => {
        if (!seenUsers.has(user)) ctx.addIssue({ code: 'custom', path: ['services', j, 'levels', k], message: `"${user}" is not a level user of this game` });
      });
      for (const port of servicePorts(service.port)) {
        const other = portOwner.get(port);
        if (other !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['services', j, 'port'], message: `port ${port} is already served by services.${other}` });
          break;
        }
        portOwner.set(port, j);
      }
    });
    const challengePorts = new Map<string, number>();
    game.challenges.forEach((challenge, j) => {
      if (!seenUsers.has(challenge.level)) {
        ctx.addIssue({ code: 'custom', path: ['challenges', j, 'level'], message: `"${challenge.level}" is not a level user of this game` });
      }
      const key = `${challenge.address ?? ''}:${challenge.port}`;
      const other = challengePorts.get(key);
      if (other !== undefined) ctx.addIssue({ code: 'custom', path: ['challenges', j, 'port'], message: `port ${challenge.port} is already served by challenges.${other}` });
      challengePorts.set(key, j);
    });
    game.files.forEach((f, j) => {
      if (!f.path.startsWith('/') || f.path.split('/').includes('..')) {
        ctx.addIssue({ code: 'custom', path: ['files', j, 'path'], message: 'expected an absolute path without ".."' });
      }
    });
    game.levels.forEach((level, i) =>
      level.home.forEach((f, j) => {
        if (f.path.startsWith('/') || f.path.split('/').includes('..')) {
          ctx.addIssue({ code: 'custom', path: ['levels', i, 'home', j, 'path'], message: 'expected a path relative to the home, without ".."' });
        }
      }),
    );
  });

export const serverConfigSchema = z
  .object({
    listen: z
      .object({
        host: z.string().default('0.0.0.0'),
        port: z.number().int().min(0).max(65535).default(2220),
      })
      .strict()
      .default({ host: '0.0.0.0', port: 2220 }),
    stateDir: absolutePath.default('/var/lib/wargate'),
    /** Game folders (each holding game.yaml), relative to the config file. */
    games: z.array(z.string().min(1)).min(1),
    keepalive: z
      .object({
        intervalSeconds: z.number().positive().max(3600).default(10),
        countMax: z.number().int().min(1).max(100).default(3),
      })
      .strict()
      .default({ intervalSeconds: 10, countMax: 3 }),
    /** Session channels (shell, exec, sftp) open at once on one connection, as OpenSSH's MaxSessions; beyond, the open is refused. */
    maxSessions: z.number().int().min(1).max(1000).default(10),
    /** Default limits of every sandbox (see limitFields); games may override them. */
    sandbox: z
      .object(limitFields)
      .partial()
      .strict()
      .default({})
      .transform((given) => ({ ...DEFAULT_LIMITS, ...given })),
    /** Admission: beyond these, a login is refused with a one-line message and nothing is created. */
    admission: z
      .object({
        maxSandboxes: z.number().int().min(1).max(100_000).default(1000),
        maxPerAddress: z.number().int().min(1).max(100_000).default(20),
      })
      .strict()
      .default({ maxSandboxes: 1000, maxPerAddress: 20 }),
    /** Before authentication (src/ssh/preauth-gate.ts, src/ssh/auth-penalties.ts); defaults in DEFAULT_PREAUTH. */
    preauth: z
      .object({
        /** From TCP accept to successful authentication; beyond, the socket is cut (OpenSSH's LoginGraceTime). */
        loginGraceSeconds: z.number().positive().max(600).default(DEFAULT_PREAUTH.loginGraceSeconds),
        /**
         * Unauthenticated connections at once, as OpenSSH's MaxStartups start:rate:full: from `start`
         * on, a new one is dropped with probability `rate` %, growing linearly to 100 % at `full`.
         */
        maxStartups: z
          .object({
            start: z.number().int().min(1).max(100_000),
            rate: z.number().int().min(0).max(100),
            full: z.number().int().min(1).max(100_000),
          })
          .strict()
          .refine((m) => m.start <= m.full, { message: 'start must not exceed full' })
          .default(DEFAULT_PREAUTH.maxStartups),
        /** Unauthenticated connections at once from one address (an IPv6 /64); beyond, dropped. */
        maxStartupsPerAddress: z.number().int().min(1).max(100_000).default(DEFAULT_PREAUTH.maxStartupsPerAddress),
        /** Per address after failed logins: the answer to each further guess waits, right or wrong. */
        penalty: z
          .object({
            /** Failures on record before answers wait. */
            freeFailures: z.number().int().min(0).max(1000).default(DEFAULT_PREAUTH.penalty.freeFailures),
            /** The first wait; it doubles with each further failure... */
            firstDelaySeconds: z.number().positive().max(60).default(DEFAULT_PREAUTH.penalty.firstDelaySeconds),
            /** ...up to this. */
            maxDelaySeconds: z.number().positive().max(600).default(DEFAULT_PREAUTH.penalty.maxDelaySeconds),
            /** Failures on record halve in this time. */
            halfLifeSeconds: z.number().positive().max(86_400).default(DEFAULT_PREAUTH.penalty.halfLifeSeconds),
          })
          .strict()
          .default(DEFAULT_PREAUTH.penalty),
      })
      .strict()
      .default(DEFAULT_PREAUTH),
    /** The games' public challenge ports (see challengeSchema). */
    challenges: z
      .object({
        /** Where challenge ports listen unless a challenge names its own address. */
        host: z.string().min(1).default('0.0.0.0'),
        /** Added to every challenge's port (several gateways on one host, tests). */
        portOffset: z.number().int().min(0).max(65_534).default(0),
      })
      .strict()
      .default({ host: '0.0.0.0', portOffset: 0 }),
    /** The reaper removes what no live session owns, at start and then this often. */
    reaper: z
      .object({ intervalSeconds: z.number().positive().max(3600).default(5) })
      .strict()
      .default({ intervalSeconds: 5 }),
    /** The local admin API (wargate sessions, wargate kill): a unix socket only root may use. */
    admin: z
      .object({ socket: absolutePath.optional() })
      .strict()
      .default({}),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info') })
      .strict()
      .default({ level: 'info' }),
  })
  .strict();

export type CronJob = z.infer<typeof cronJobSchema>;
export type BuildStep = z.infer<typeof buildStepSchema>;
export type BaseSpec = z.infer<typeof baseSchema>;
export type ServiceSpec = z.infer<typeof serviceSchema>;
export type ChallengeSpec = z.infer<typeof challengeSchema>;
export type RepositorySpec = z.infer<typeof repositorySchema>;
export type FileSpec = z.infer<typeof fileSchema>;
export type LevelDefinition = z.infer<typeof levelSchema>;
export type GameDefinition = z.infer<typeof gameSchema>;
export type ServerConfig = z.infer<typeof serverConfigSchema>;
export type SandboxLimits = typeof DEFAULT_LIMITS;

const UNITS: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** "64m" -> bytes (sizes are validated by the schema). */
export function parseSize(value: string): number {
  return parseInt(value, 10) * UNITS[value.slice(-1).toLowerCase()];
}
