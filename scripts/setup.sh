#!/usr/bin/env bash
# Installs what wargate needs on Debian 12, idempotently: apt packages (only those missing),
# npm dependencies (only when the lock file changed), and the TypeScript build.
# Usage: scripts/setup.sh [--with-test-clients]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (wargate creates namespaces and mounts; apt needs root too)" >&2
  exit 1
fi

# Runtime: util-linux (setsid), the C helpers (musl-gcc, kernel headers, libseccomp to compile the
# seccomp policy), the games' setuid programs (gcc, libc6-dev), ssh2's optional native crypto (make, g++), and what the
# sandboxes run from the host's read-only /usr: shells, python3, sftp-server (SFTP and scp), scp
# (legacy scp -O), ssh (nested logins), git (git over SSH), and the tools the demo's levels are
# played with: nc (netcat-openbsd), openssl s_client, xxd, gzip, bzip2, tar, file, vi (below).
packages=(util-linux bsdutils mount iproute2 procps bash dash gcc libc6-dev musl-tools linux-libc-dev make g++ python3
  libseccomp-dev openssh-sftp-server openssh-client git netcat-openbsd openssl xxd gzip bzip2 tar file)
# The demo's level6 pager opens /usr/bin/vi, which Debian 12 does not install by default: vim-tiny
# registers it as the `vi` alternative (/etc/alternatives, copied into the sandboxes' /etc). A host
# where vi already resolves (vim, nvi) keeps its own.
[ -e /usr/bin/vi ] || packages+=(vim-tiny)
if [ "${1:-}" = "--with-test-clients" ]; then
  # busybox-static: the root filesystem of the test images (test/game-bases.test.ts); socat: the
  # floor beside which bench/challenge.ts measures a per-connection challenge port.
  packages+=(python3-paramiko python3-pwntools python3-asyncssh putty-tools dropbear-bin ssh-audit busybox-static socat)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v node >/dev/null || ! node -e 'process.exit(Number(process.versions.node.split(".")[0] < 20))'; then
  echo "setup: Node.js 20 or later is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm ci only when package-lock.json changed since the last install.
stamp=node_modules/.wargate-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

npm run --silent build
