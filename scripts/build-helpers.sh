#!/usr/bin/env bash
# Compiles the small C helpers of src/sandbox (sandbox-init, sandbox-spawn, sandbox-build) into dist/, next
# to the compiled JavaScript. Every sandbox keeps two processes of sandbox-init resident, so they are linked statically
# against musl: no loader, no shared-library mappings, and about 12 kB of private memory each where
# static glibc costs some 45 (glibc's start-up writes to much of its own data). The seccomp policy is
# compiled to BPF here, with libseccomp (src/sandbox/seccomp-policy.c), so no helper needs it at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
gen=dist/.build
mkdir -p "$gen/include"
# musl's headers hold no kernel UAPI headers (linux/seccomp.h, linux/filter.h): the host's, as they are.
ln -sfn /usr/include/linux "$gen/include/linux"
ln -sfn /usr/include/asm-generic "$gen/include/asm-generic"
ln -sfn "/usr/include/$(cc -print-multiarch)/asm" "$gen/include/asm"

cc -O2 -Wall -Wextra -Werror -o "$gen/seccomp-policy" src/sandbox/seccomp-policy.c -lseccomp
"$gen/seccomp-policy" > "$gen/seccomp-filter.h.new"
mv -f "$gen/seccomp-filter.h.new" "$gen/seccomp-filter.h"

build() { # NAME SOURCE...
  local name=$1; shift
  musl-gcc -static -O2 -Wall -Wextra -Werror -I "$gen" -isystem "$gen/include" -o "dist/$name.new" "$@"
  mv -f "dist/$name.new" "dist/$name"
}
common=src/sandbox/helper-common.c
enter="src/sandbox/sandbox-enter.c $common"
build sandbox-spawn src/sandbox/sandbox-spawn.c src/sandbox/sandbox-launch.c $enter
build sandbox-init src/sandbox/sandbox-init.c src/sandbox/sandbox-net.c src/sandbox/sandbox-root.c $common
build sandbox-build src/sandbox/sandbox-build.c src/sandbox/sandbox-root.c $enter
