#!/bin/sh
# Compiles the small C helpers of src/sandbox (pty-relay, sandbox-init) into dist/, next to the
# compiled JavaScript. Linked statically: each sandbox keeps a few of them resident, and a static
# binary costs a fraction of a dynamic one in memory (no loader, no shared-library mappings).
set -eu
cd "$(dirname "$0")/.."
mkdir -p dist
for src in src/sandbox/*.c; do
  name=$(basename "$src" .c)
  cc -static -O2 -Wall -Wextra -Werror -o "dist/$name.new" "$src"
  mv -f "dist/$name.new" "dist/$name"
done
