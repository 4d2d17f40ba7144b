// The gateway's end of every TCP connection made inside a sandbox on its behalf. Sandbox holders
// (sandbox-net.c) relay each connection they accept or connect to this unix socket, opening with
// one header line whose first word is a token the gateway handed out; the rest of the stream is the
// connection's bytes. The socket is root's only (0600 in a 0700 directory), and a connection whose
// token nobody expects is dropped.
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { WargateError } from '../errors/catalog.js';

/** Longest header line a holder writes (token, address, port). */
const MAX_HEADER = 256;
const HEADER_TIMEOUT_MS = 10_000;
/** sockaddr_un's sun_path holds 108 bytes, the terminating NUL included. */
const MAX_SOCKET_PATH = 107;

/** Called with the connection (positioned after the header) and the header's words after the token. */
export type RelayHandler = (socket: Socket, words: string[]) => void;

export class RelayServer {
  readonly path: string;
  private readonly server: Server;
  private readonly handlers = new Map<string, RelayHandler>();
  readonly ready: Promise<void>;

  constructor(stateDir: string) {
    const dir = join(stateDir, 'run');
    this.path = join(dir, 'relay.sock');
    if (Buffer.byteLength(this.path) > MAX_SOCKET_PATH) {
      throw new WargateError('WG_ERR_STATE_DIR', `state dir too long for a unix socket path: ${this.path} (at most ${MAX_SOCKET_PATH} bytes)`);
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    rmSync(this.path, { force: true });
    this.server = createServer((socket) => this.accept(socket));
    this.ready = new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ path: this.path, readableAll: false, writableAll: false }, () => resolve());
    });
  }

  /** A fresh unguessable token whose connections go to `handler` until forget(token). */
  expect(handler: RelayHandler): string {
    const token = randomBytes(16).toString('hex');
    this.handlers.set(token, handler);
    return token;
  }

  forget(token: string): void {
    this.handlers.delete(token);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    socket.setTimeout(HEADER_TIMEOUT_MS, () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const newline = head.indexOf(10);
      if (newline < 0) {
        if (head.length > MAX_HEADER) socket.destroy();
        return;
      }
      socket.off('data', onData);
      socket.pause();
      socket.setTimeout(0);
      const rest = head.subarray(newline + 1);
      if (rest.length > 0) socket.unshift(rest);
      const [token, ...words] = head.subarray(0, newline).toString('latin1').split(' ');
      const handler = this.handlers.get(token);
      if (!handler) return void socket.destroy();
      handler(socket, words);
    };
    socket.on('data', onData);
  }
}
