#!/usr/bin/env bash
# Compiles the small C helpers of src/sandbox (pty-relay, sandbox-init) into dist/, next to the
# compiled JavaScript. Linked statically: each sandbox keeps a few of them resident, and a static
# binary costs a fraction of a dynamic one in memory (no loader, no shared-library mappings).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p dist
build() { # NAME SOURCE...
  local name=$1; shift
  cc -static -O2 -Wall -Wextra -Werror -o "dist/$name.new" "$@"
  mv -f "dist/$name.new" "dist/$name"
}
build pty-relay src/sandbox/pty-relay.c
build sandbox-init src/sandbox/sandbox-init.c src/sandbox/sandbox-net.c
