// A client process for bench/soak.ts that goes silent: it logs in one interactive shell per address
// of WG_ADDRESSES (comma-separated loopback source addresses, concurrently), waits for every prompt,
// prints one JSON line {"ready": true, "ok": [addresses], "failed": [{address, error}]}, then holds
// the connections. The benchmark SIGSTOPs this process, so it stops answering the gateway's
// keepalives, and SIGKILLs it once the gateway has ended those sessions.
// Environment: WG_PORT, WG_USER, WG_PASSWORD, WG_ADDRESSES.
import { loginShell, type ShellLogin } from './ssh-client.js';

const port = Number(process.env.WG_PORT);
const user = process.env.WG_USER ?? 'level0';
const password = process.env.WG_PASSWORD ?? 'level0';
const addresses = (process.env.WG_ADDRESSES ?? '').split(',').filter(Boolean);

const held: ShellLogin[] = [];
const ok: string[] = [];
const failed: { address: string; error: string }[] = [];
await Promise.all(
  addresses.map((localAddress) =>
    loginShell({ port, user, password, localAddress }).then(
      (login) => {
        held.push(login);
        ok.push(localAddress);
      },
      (err: Error) => failed.push({ address: localAddress, error: err.message }),
    ),
  ),
);
process.stdout.write(JSON.stringify({ ready: true, ok, failed }) + '\n');
// Held open until the benchmark kills this process.
setInterval(() => held.length, 1 << 30);
