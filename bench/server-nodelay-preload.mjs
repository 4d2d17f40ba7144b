// Diagnostic only, not part of wargate: preloaded into the gateway with
//   NODE_OPTIONS="--import /work/main/bench/server-nodelay-preload.mjs" node dist/bench/login-latency.js
// it turns off Nagle (TCP_NODELAY) on every socket a net.Server accepts, to show how much of the
// login latency is Nagle/delayed-ACK stalls (ssh2's server never calls setNoDelay on its own).
import net from 'node:net';

const emit = net.Server.prototype.emit;
net.Server.prototype.emit = function (event, socket, ...rest) {
  if (event === 'connection' && socket && typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
  return emit.call(this, event, socket, ...rest);
};
