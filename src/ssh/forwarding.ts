// TCP port forwarding, done inside the player's sandbox, never on the host: `ssh -L`/`-W` and
// pwntools' remote() connect from the sandbox's own network namespace ("localhost" is the sandbox),
// `ssh -R` and pwntools' listen() listen there. The sandbox's namespace has only its loopback, so
// the host's network and the host's own loopback services cannot be reached this way at all.
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AcceptConnection, Connection, RejectConnection, ServerChannel, TcpipBindInfo, TcpipRequestInfo } from 'ssh2';
import { errorCode } from '../errors/catalog.js';
import type { ConnectionSession } from '../session/connection-session.js';
import type { SandboxListener } from '../sandbox/types.js';

/** Remote forwards (`ssh -R`) one connection may hold at once, counting those still being opened. */
const MAX_REMOTE_FORWARDS = 16;
/**
 * Direct-tcpip channels (`ssh -L`/`-W`, pwntools' remote()) one connection may hold open at once,
 * counting those still connecting: each holds a socket in the sandbox and a channel in the gateway,
 * and ssh2 has no cap.
 */
const MAX_DIRECT_TCPIP = 64;

/** The numeric address a client's host name stands for inside the sandbox, if it names one. */
export function addressInside(host: string, hostname: string): string | undefined {
  if (isIP(host)) return host;
  if (host === 'localhost' || host === hostname) return '127.0.0.1';
  if (host === 'ip6-localhost') return '::1';
  return undefined;
}

/** Where `ssh -R` binds: OpenSSH's "" and "*" mean every address; "localhost" the loopback. */
function bindAddress(requested: string, hostname: string): string | undefined {
  if (requested === '' || requested === '*') return '0.0.0.0';
  return addressInside(requested, hostname);
}

/** Bytes both ways between a channel and a socket; each side's end of input is passed on as EOF. */
function splice(channel: ServerChannel, socket: Duplex, session: ConnectionSession): void {
  channel.on('data', () => session.touch());
  channel.pipe(socket).pipe(channel);
  const teardown = () => {
    socket.destroy();
    channel.destroy();
  };
  socket.on('error', teardown).on('close', () => channel.end());
  channel.on('error', teardown).on('close', () => socket.destroy());
}

/** direct-tcpip channels of one connection: each a connection from inside the sandbox, opened before the channel is confirmed (as sshd does). */
export class LocalForwards {
  /** Channels open or still connecting, against MAX_DIRECT_TCPIP. */
  private open = 0;

  constructor(private readonly session: ConnectionSession) {}

  handle(accept: AcceptConnection<ServerChannel>, reject: RejectConnection, info: TcpipRequestInfo): void {
    const { session } = this;
    const address = addressInside(info.destIP, session.hostname);
    const log = session.log.child({ event: 'forward.local', to: `${info.destIP}:${info.destPort}` });
    if (!address) {
      log.info({ result: 'refused' }, 'forwarding refused: the host is not the sandbox');
      return reject();
    }
    if (this.open >= MAX_DIRECT_TCPIP) {
      log.info({ result: 'refused', reason: 'max-direct-tcpip', max: MAX_DIRECT_TCPIP }, 'forwarding refused: too many forwarded connections');
      return reject();
    }
    this.open++;
    const release = () => this.open--;
    session.touch();
    session.connect(address, info.destPort).then(
      (socket) => {
        const channel = accept();
        // ssh2 emits 'close' when the client closes the channel and when the connection ends.
        channel.once('close', release);
        splice(channel, socket, session);
      },
      (err) => {
        release();
        log.info({ result: 'failed', code: errorCode(err), message: (err as Error).message }, 'forwarded connection failed');
        reject();
      },
    );
  }
}

/** tcpip-forward and cancel-tcpip-forward of one connection; its listeners close with it. */
export class RemoteForwards {
  /** By "address:port" as the client bound it, the port being the one chosen inside when it asked for 0. */
  private readonly listeners = new Map<string, SandboxListener>();
  /** Requests still waiting for their listener: they count against MAX_REMOTE_FORWARDS too. */
  private opening = 0;
  private closed = false;

  constructor(
    private readonly client: Connection,
    private readonly session: ConnectionSession,
  ) {}

  /** Handles a global request if it is one of ours; false leaves it to the caller. */
  handle(name: string, info: TcpipBindInfo, accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined): boolean {
    if (name === 'tcpip-forward') void this.open(info, accept, reject);
    else if (name === 'cancel-tcpip-forward') this.cancel(info, accept, reject);
    else return false;
    return true;
  }

  closeAll(): void {
    this.closed = true;
    for (const listener of this.listeners.values()) listener.close();
    this.listeners.clear();
  }

  private async open(info: TcpipBindInfo, accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined): Promise<void> {
    const { bindAddr, bindPort } = info;
    const log = this.session.log.child({ event: 'forward.remote', bind: `${bindAddr}:${bindPort}` });
    const address = bindAddress(bindAddr, this.session.hostname);
    // Like sshd for a user who is not root: no privileged ports.
    const full = this.listeners.size + this.opening >= MAX_REMOTE_FORWARDS;
    if (!address || !Number.isInteger(bindPort) || (bindPort > 0 && bindPort < 1024) || bindPort > 65535 || full) {
      log.info({ result: 'refused', ...(full && { reason: 'max-remote-forwards', max: MAX_REMOTE_FORWARDS }) }, 'remote forwarding refused');
      return reject?.();
    }
    this.opening++;
    try {
      const listener = await this.session.listen(address, bindPort, (socket, peer) => {
        this.session.touch();
        this.client.forwardOut(bindAddr, listener.port, peer.address, peer.port, (err, channel) => {
          if (err) return void socket.destroy();
          splice(channel, socket, this.session);
        });
      });
      // The connection ended while the listener opened: nothing would close it (a joined sandbox lives on).
      if (this.closed) return void listener.close();
      // Keyed by the port chosen: requests for port 0 must not replace each other (and escape the cap).
      this.listeners.set(`${bindAddr}:${listener.port}`, listener);
      log.info({ result: 'listening', port: listener.port }, 'remote forwarding listening inside the sandbox');
      accept?.(listener.port);
    } catch (err) {
      log.info({ result: 'failed', code: errorCode(err), message: (err as Error).message }, 'remote forwarding failed');
      reject?.();
    } finally {
      this.opening--;
    }
  }

  private cancel(info: TcpipBindInfo, accept: (() => void) | undefined, reject: (() => void) | undefined): void {
    const key = `${info.bindAddr}:${info.bindPort}`;
    const listener = this.listeners.get(key);
    if (!listener) return reject?.();
    listener.close();
    this.listeners.delete(key);
    accept?.();
  }
}
