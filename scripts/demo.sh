#!/usr/bin/env bash
# Sets up what is missing, then serves the bundled demo game: ssh level0@HOST -p 2220 (password level0).
# Extra arguments go to `wargate demo` (e.g. --port 2222 --state-dir /tmp/wargate).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec bin/wargate demo "$@"
