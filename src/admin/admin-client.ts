// The CLI's side of the admin socket: sends one request, reads one answer line. Every way of not
// getting an answer becomes an AdminClientError with a one-line message for the operator.
import { connect } from 'node:net';
import type { AdminRequest, AdminResponse } from './protocol.js';
import { socketPathProblem } from './socket-path.js';

/** Longest answer read (a list of many thousand sessions fits). */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export class AdminClientError extends Error {
  override name = 'AdminClientError';
}

/** Sends `request` to the gateway listening on `socketPath` and resolves with its answer. */
export function adminRequest(socketPath: string, request: AdminRequest, timeoutMs = 15_000): Promise<AdminResponse> {
  const problem = socketPathProblem(socketPath);
  if (problem) return Promise.reject(new AdminClientError(problem));
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (err: Error | undefined, response?: AdminResponse) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (err) reject(err);
      else resolve(response!);
    };
    socket.setTimeout(timeoutMs, () => settle(new AdminClientError(`the gateway on ${socketPath} did not answer within ${timeoutMs / 1000} s`)));
    socket.on('connect', () => socket.write(JSON.stringify(request) + '\n'));
    socket.on('error', (err: NodeJS.ErrnoException) => settle(new AdminClientError(describeError(socketPath, err))));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES) settle(new AdminClientError(`the answer from ${socketPath} is longer than ${MAX_RESPONSE_BYTES} bytes`));
      if (!chunk.includes(0x0a)) return;
      const text = Buffer.concat(chunks).toString('utf8');
      settle(...parseResponse(socketPath, text.slice(0, text.indexOf('\n'))));
    });
    socket.on('end', () => settle(new AdminClientError(`the gateway on ${socketPath} closed the connection without answering`)));
  });
}

function parseResponse(socketPath: string, line: string): [Error | undefined, AdminResponse?] {
  try {
    const doc = JSON.parse(line) as AdminResponse;
    if (typeof doc === 'object' && doc !== null && typeof doc.ok === 'boolean') return [undefined, doc];
  } catch {
    // reported below
  }
  return [new AdminClientError(`unreadable answer from ${socketPath}`)];
}

function describeError(socketPath: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
    case 'ENOTSOCK':
      return `no gateway is listening on ${socketPath}`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied on ${socketPath} (the admin socket is for root only)`;
    case 'ECONNRESET':
    case 'EPIPE':
      return `the gateway on ${socketPath} closed the connection without answering`;
    default:
      return `cannot reach the gateway on ${socketPath}: ${err.message}`;
  }
}
