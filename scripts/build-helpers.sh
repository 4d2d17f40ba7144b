#!/usr/bin/env bash
# Compiles the small C helpers of src/sandbox (pty-relay, sandbox-exec, sandbox-init, sandbox-build) into dist/, next to the
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
common=src/sandbox/helper-common.c
enter="src/sandbox/sandbox-enter.c $common -lseccomp"
build pty-relay src/sandbox/pty-relay.c src/sandbox/sandbox-launch.c $enter
build sandbox-exec src/sandbox/sandbox-exec.c src/sandbox/sandbox-launch.c $enter
build sandbox-init src/sandbox/sandbox-init.c src/sandbox/sandbox-net.c src/sandbox/sandbox-root.c $common
build sandbox-build src/sandbox/sandbox-build.c src/sandbox/sandbox-root.c $enter
